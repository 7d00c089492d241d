package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/train"
)

func TestReadVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want [][]float32
		err  string // substring of the error; "" means none
	}{
		{"empty", "", nil, ""},
		{"fasttext style", "0.5 -1 2 \n1e-3 0 3.25 \n", [][]float32{{0.5, -1, 2}, {1e-3, 0, 3.25}}, ""},
		{"tabs, CRLF, no final newline", "1\t2\r\n  3 4", [][]float32{{1, 2}, {3, 4}}, ""},
		{"blank line", "1 2\n\n3 4\n", nil, "line 2: eval: bad vectors: blank line"},
		{"blank only", " \n", nil, "line 1: eval: bad vectors: blank line"},
		{"ragged", "1 2\n3 4 5\n", nil, "line 2: eval: bad vectors: width 3, earlier lines have 2"},
		{"not a number", "1 x\n", nil, `line 1: eval: bad vectors: field 2 "x" is not a finite number`},
		{"nan", "nan 1\n", nil, "is not a finite number"},
		{"inf", "1 -Inf\n", nil, "is not a finite number"},
		{"overflows float32", "1 1e39\n", nil, "is not a finite number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dim, err := ReadVectors(strings.NewReader(tc.in))
			if tc.err != "" {
				if !errors.Is(err, ErrVectors) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d rows, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if dim != len(tc.want[i]) || fmt.Sprint(got[i]) != fmt.Sprint(tc.want[i]) {
					t.Fatalf("row %d: %v (dim %d), want %v", i, got[i], dim, tc.want[i])
				}
			}
		})
	}
}

func TestReadVectorsLongLine(t *testing.T) {
	// Lines longer than the reader's buffer (64 KiB) are read whole.
	const dim = 20000
	var b strings.Builder
	for range 2 {
		for j := range dim {
			fmt.Fprintf(&b, "%d.125 ", j)
		}
		b.WriteByte('\n')
	}
	rows, d, err := ReadVectors(strings.NewReader(b.String()))
	if err != nil || d != dim || len(rows) != 2 || rows[1][dim-1] != dim-1+0.125 {
		t.Fatalf("dim %d, %d rows, err %v", d, len(rows), err)
	}
	wide := strings.Repeat("1 ", MaxVectorDim+1)
	if _, _, err := ReadVectors(strings.NewReader(wide)); !errors.Is(err, ErrVectors) {
		t.Fatalf("a %d-wide vector: %v", MaxVectorDim+1, err)
	}
}

func FuzzReadVectors(f *testing.F) {
	f.Add([]byte("0.5 -1 2 \n1e-3 0 3.25 \n"))
	f.Add([]byte("1\t2\r\n  3 4"))
	f.Add([]byte("1 2\n\n"))
	f.Add([]byte("1e39 NaN +Inf 0x1p-2 1_0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, dim, err := ReadVectors(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrVectors) {
				t.Fatalf("error %v does not wrap ErrVectors", err)
			}
			return
		}
		// Accepted input re-encodes into text that reads back the same.
		var b strings.Builder
		for _, r := range rows {
			if len(r) != dim || dim < 1 {
				t.Fatalf("row of width %d, dim %d", len(r), dim)
			}
			for _, v := range r {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("accepted %v", v)
				}
				b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32) + " ")
			}
			b.WriteByte('\n')
		}
		again, dim2, err := ReadVectors(strings.NewReader(b.String()))
		if err != nil || len(again) != len(rows) || (len(rows) > 0 && dim2 != dim) {
			t.Fatalf("%q -> %q -> %d rows, dim %d, %v", data, b.String(), len(again), dim2, err)
		}
		for i := range rows {
			for j := range rows[i] {
				if again[i][j] != rows[i][j] {
					t.Fatalf("row %d col %d: %v, then %v", i, j, rows[i][j], again[i][j])
				}
			}
		}
	})
}

// vectorTask writes a task of classes classes with n examples per class in
// each split, and its vectors: the text "s c i" (split s, class c, example
// i) gets the one-hot vector of class c plus noise on the next column, so
// the vectors separate the classes perfectly. It returns the task folder
// and the vectors folder (DIR/TASK/SPLIT.vec).
func vectorTask(t *testing.T, classes, n int) (string, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "toy")
	vdir := filepath.Join(root, "vec")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(filepath.Join(vdir, "toy"), 0o755)
	for _, s := range []string{"train", "dev", "test"} {
		var lines, vecs []string
		for c := range classes {
			for i := range n {
				lines = append(lines, fmt.Sprintf(`{"text": "%s %d %d", "label": "c%d"}`, s, c, i, c))
				v := make([]string, classes)
				for j := range v {
					v[j] = "0"
				}
				v[c] = "2"
				v[(c+1)%classes] = strconv.FormatFloat(0.1*float64(i%4), 'g', -1, 64)
				vecs = append(vecs, strings.Join(v, " "))
			}
		}
		writeSplit(t, filepath.Join(dir, s+".jsonl"), lines)
		writeSplit(t, filepath.Join(vdir, "toy", s+".vec"), vecs)
	}
	return dir, vdir
}

func TestVectorFeatures(t *testing.T) {
	dir, vdir := vectorTask(t, 3, 5)
	task, err := LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewVectorFeatures("fasttext", task, vdir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "fasttext" || f.Dim() != 3 {
		t.Fatalf("name %q dim %d", f.Name(), f.Dim())
	}
	var done int
	m, err := f.Transform(context.Background(), []string{"test 2 1", "dev 0 0"}, func(n int) { done += n })
	if err != nil {
		t.Fatal(err)
	}
	// "test 2 1": (0.1, 0, 2) normalised; "dev 0 0": (2, 0, 0) normalised.
	n := float32(math.Sqrt(0.01 + 4))
	want := []float32{0.1 / n, 0, 2 / n, 1, 0, 0}
	for i, v := range want {
		if math.Abs(float64(m.Dense[i]-v)) > 1e-6 {
			t.Fatalf("rows %v, want %v", m.Dense, want)
		}
	}
	if m.Rows != 2 || m.Cols != 3 || done != 2 {
		t.Fatalf("%dx%d, progress %d", m.Rows, m.Cols, done)
	}
	if _, err := f.Transform(context.Background(), []string{"unknown"}, nil); !errors.Is(err, ErrVectors) {
		t.Fatalf("unknown text: %v", err)
	}

	// The vectors folder may hold the splits directly.
	flat := t.TempDir()
	for _, s := range []string{"train", "dev", "test"} {
		data, _ := os.ReadFile(filepath.Join(vdir, "toy", s+".vec"))
		os.WriteFile(filepath.Join(flat, s+".vec"), data, 0o644)
	}
	if _, err := NewVectorFeatures("v", task, flat); err != nil {
		t.Fatalf("flat folder: %v", err)
	}

	bad := func(name, split, content, wantErr string) {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			for _, s := range []string{"train", "dev", "test"} {
				data, _ := os.ReadFile(filepath.Join(vdir, "toy", s+".vec"))
				if s == split {
					data = []byte(content)
				}
				if s != split || content != "" {
					os.WriteFile(filepath.Join(d, s+".vec"), data, 0o644)
				}
			}
			_, err := NewVectorFeatures("v", task, d)
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("error %v, want one containing %q", err, wantErr)
			}
		})
	}
	bad("missing file", "dev", "", "no such file")
	bad("too few lines", "dev", "1 0 0\n", "dev.vec: eval: bad vectors: 1 vectors for 15 texts")
	bad("other width", "test", strings.Repeat("1 0\n", 15), "test.vec: eval: bad vectors: width 2, other splits have 3")
	bad("bad number", "train", "1 0 x\n", "train.vec: line 1: eval: bad vectors")
}

func TestVectorFeaturesConflict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dup")
	os.MkdirAll(dir, 0o755)
	for _, s := range []string{"train", "dev", "test"} {
		writeSplit(t, filepath.Join(dir, s+".jsonl"), []string{`{"text": "same", "label": "a"}`, `{"text": "other", "label": "b"}`})
	}
	task, err := LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	vdir := t.TempDir()
	for _, s := range []string{"train", "dev", "test"} {
		os.WriteFile(filepath.Join(vdir, s+".vec"), []byte("1 0\n0 1\n"), 0o644)
	}
	if _, err := NewVectorFeatures("v", task, vdir); err != nil {
		t.Fatalf("a text repeated with the same vector: %v", err)
	}
	os.WriteFile(filepath.Join(vdir, "test.vec"), []byte("0 1\n0 1\n"), 0o644)
	if _, err := NewVectorFeatures("v", task, vdir); !errors.Is(err, ErrVectors) || !strings.Contains(err.Error(), "test.vec:1") {
		t.Fatalf("a text with two vectors: %v", err)
	}
}

// TestVectorFeaturesEvaluate scores external vectors with the protocol:
// vectors that separate the classes give accuracy 1 under their own name,
// beside tf-idf on the same draws.
func TestVectorFeaturesEvaluate(t *testing.T) {
	dir, vdir := vectorTask(t, 4, 12)
	task, err := LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewVectorFeatures("fasttext", task, vdir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{LabelsPerClass: []LabelsPerClass{4}, Draws: 2, Workers: 2}
	cfg.SetDefaults()
	res, err := Evaluate(context.Background(), task, []Features{f, NewTFIDF(task.Train.Texts)}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range res {
		if r.Features == "fasttext" {
			seen++
			if r.AccuracyMean != 1 || r.Draws != 2 {
				t.Errorf("%+v: want accuracy 1 over 2 draws", r)
			}
		}
	}
	if seen == 0 {
		t.Fatalf("no fasttext rows in %+v", res)
	}
}

// TestLayerFeatures checks that each layer's rows are the encoder's
// EmbedLayer rows, for the trained and the random encoder.
func TestLayerFeatures(t *testing.T) {
	cfg := train.Config{Buckets: 256, EmbedDim: 6, HiddenDim: 10, OutDim: 4, Seed: 3, Workers: 1}
	cfg.SetDefaults()
	l, err := train.NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := l.Encoder()
	texts := make([]string, 1100) // more than two chunks
	for i := range texts {
		texts[i] = fmt.Sprintf("text number %d of the layer test", i)
	}
	for _, layer := range train.Layers {
		f, err := NewLayerFeatures("encoder", enc, layer, 2)
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.Transform(context.Background(), texts, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := enc.EmbedLayer(texts, layer)
		for i, row := range want {
			for j, v := range row {
				if m.Dense[i*m.Cols+j] != v {
					t.Fatalf("%s: row %d col %d: %v, want %v", layer, i, j, m.Dense[i*m.Cols+j], v)
				}
			}
		}
		r, err := NewRandomLayerFeatures(cfg, 9, layer, 1)
		if err != nil || r.Name() != FeaturesRandom {
			t.Fatalf("random %s: %v", layer, err)
		}
	}
	if _, err := NewLayerFeatures("encoder", enc, "nope", 1); !errors.Is(err, train.ErrConfig) {
		t.Fatalf("unknown layer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, _ := NewLayerFeatures("encoder", enc, train.LayerHidden, 2)
	if _, err := f.Transform(ctx, texts, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestEvaluateClassifiers: Config.Classifiers picks the probes; a linear
// probe alone scores exactly as it does beside kNN.
func TestEvaluateClassifiers(t *testing.T) {
	dir, vdir := vectorTask(t, 4, 12)
	task, err := LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewVectorFeatures("fasttext", task, vdir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(classifiers ...string) []Result {
		cfg := Config{LabelsPerClass: []LabelsPerClass{4}, Draws: 2, Workers: 2, Classifiers: classifiers}
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		res, err := Evaluate(context.Background(), task, []Features{f, NewTFIDF(task.Train.Texts)}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	both, linear := run(), run(ClassifierLinear)
	if len(both) != 4 || len(linear) != 2 {
		t.Fatalf("%d results with both probes, %d with the linear one; want 4 and 2", len(both), len(linear))
	}
	for _, r := range linear {
		if r.Classifier != ClassifierLinear {
			t.Fatalf("a %s result with the linear probe alone", r.Classifier)
		}
		var same bool
		for _, b := range both {
			same = same || (b.Features == r.Features && b.Classifier == r.Classifier && b.AccuracyMean == r.AccuracyMean && b.MacroF1Mean == r.MacroF1Mean)
		}
		if !same {
			t.Errorf("%+v differs from the run with both probes: %+v", r, both)
		}
	}
	if knn := run(ClassifierKNN); len(knn) != 2 || knn[0].Classifier != ClassifierKNN {
		t.Errorf("kNN alone: %+v", knn)
	}
	for _, bad := range [][]string{{"svm"}, {ClassifierLinear, ClassifierLinear}} {
		cfg := Config{Classifiers: bad}
		cfg.SetDefaults()
		if err := cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "classifiers") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
