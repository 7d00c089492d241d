package eval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// ErrVectors is wrapped by every error reading external vectors or looking
// a text up in them.
var ErrVectors = errors.New("eval: bad vectors")

// MaxVectorDim bounds the width of external vectors.
const MaxVectorDim = 1 << 16

var _ Features = (*VectorFeatures)(nil)

// VectorFeatures scores vectors computed outside thresher (fastText's
// print-sentence-vectors, say) with the same probes and label draws as the
// other feature sets. It holds one vector per distinct text of a task's
// three splits, read from files aligned line by line with the splits;
// Transform looks each text up. Rows are L2-normalised, as the encoder's
// are (a zero vector stays zero).
type VectorFeatures struct {
	name string
	dim  int
	vecs map[string][]float32
}

// VectorFile is the file of a split's vectors in a vectors folder:
// DIR/TASK/SPLIT.vec, or DIR/SPLIT.vec when DIR has no folder named after
// the task.
func VectorFile(dir, task, split string) string {
	if fi, err := os.Stat(filepath.Join(dir, task)); err == nil && fi.IsDir() {
		return filepath.Join(dir, task, split+".vec")
	}
	return filepath.Join(dir, split+".vec")
}

// NewVectorFeatures reads the vectors of t's train, dev and test splits
// from dir (see VectorFile): line i of SPLIT.vec is the vector of text i
// of the split. Every file must have exactly one line per text and every
// vector the same width; the same text must not have two different
// vectors. Errors name the file and wrap ErrVectors (or the os error of a
// missing file).
func NewVectorFeatures(name string, t *Task, dir string) (*VectorFeatures, error) {
	f := &VectorFeatures{name: name, vecs: make(map[string][]float32)}
	for _, s := range []string{"train", "dev", "test"} {
		path := VectorFile(dir, t.Name, s)
		split := t.Split(s)
		if err := f.addFile(path, split.Texts); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *VectorFeatures) addFile(path string, texts []string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("eval: vectors: %w", err)
	}
	defer fh.Close()
	rows, dim, err := ReadVectors(fh)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) != len(texts) {
		return fmt.Errorf("%s: %w: %d vectors for %d texts", path, ErrVectors, len(rows), len(texts))
	}
	if len(rows) == 0 {
		return nil
	}
	if f.dim == 0 {
		f.dim = dim
	} else if dim != f.dim {
		return fmt.Errorf("%s: %w: width %d, other splits have %d", path, ErrVectors, dim, f.dim)
	}
	for i, v := range rows {
		normalizeRow(v)
		if old, ok := f.vecs[texts[i]]; ok {
			if !sameVector(old, v) {
				return fmt.Errorf("%s:%d: %w: a text seen before has another vector", path, i+1, ErrVectors)
			}
			continue
		}
		f.vecs[texts[i]] = v
	}
	return nil
}

// Name returns the feature set's name.
func (f *VectorFeatures) Name() string { return f.name }

// Dim is the width of the vectors.
func (f *VectorFeatures) Dim() int { return f.dim }

// Transform returns the vectors of texts; a text that is in none of the
// splits read is an error wrapping ErrVectors.
func (f *VectorFeatures) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	d := f.dim
	m := &Matrix{Rows: len(texts), Cols: d, Dense: make([]float32, len(texts)*d)}
	for i, t := range texts {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v, ok := f.vecs[t]
		if !ok {
			return nil, fmt.Errorf("%w: %s: text %d (%.40q) has no vector", ErrVectors, f.name, i, t)
		}
		copy(m.Dense[i*d:(i+1)*d], v)
	}
	if progress != nil && len(texts) > 0 {
		progress(len(texts))
	}
	return m, nil
}

// ReadVectors reads one vector a line: numbers separated by spaces or
// tabs (leading and trailing blanks ignored), every line the same width,
// as fastText's print-sentence-vectors writes them. A blank line is an
// error (every text has a vector); a final newline is optional. It returns
// the rows and their width (0 when there are none). Errors give the line
// number and wrap ErrVectors.
func ReadVectors(r io.Reader) ([][]float32, int, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var rows [][]float32
	dim := 0
	var flat []float32 // backing of the rows read, grown in blocks
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather the rest of it.
			long := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
				if len(long) > 64*MaxVectorDim {
					return nil, 0, fmt.Errorf("line %d: %w: longer than %d bytes", line, ErrVectors, 64*MaxVectorDim)
				}
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("line %d: %w", line, err)
		}
		if len(b) == 0 && err == io.EOF {
			return rows, dim, nil
		}
		fields := bytes.Fields(b)
		if len(fields) == 0 {
			return nil, 0, fmt.Errorf("line %d: %w: blank line", line, ErrVectors)
		}
		if dim == 0 {
			if len(fields) > MaxVectorDim {
				return nil, 0, fmt.Errorf("line %d: %w: width %d is over %d", line, ErrVectors, len(fields), MaxVectorDim)
			}
			dim = len(fields)
		} else if len(fields) != dim {
			return nil, 0, fmt.Errorf("line %d: %w: width %d, earlier lines have %d", line, ErrVectors, len(fields), dim)
		}
		if len(flat) < dim {
			flat = make([]float32, dim*max(1, 4096/dim+1))
		}
		row := flat[:dim:dim]
		flat = flat[dim:]
		for j, fld := range fields {
			v, perr := strconv.ParseFloat(string(fld), 32)
			if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("line %d: %w: field %d %.20q is not a finite number", line, ErrVectors, j+1, fld)
			}
			row[j] = float32(v)
		}
		rows = append(rows, row)
		if err == io.EOF {
			return rows, dim, nil
		}
	}
}

// normalizeRow scales v to unit length (a zero vector stays zero).
func normalizeRow(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(ss))
	for i := range v {
		v[i] *= inv
	}
}

func sameVector(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
