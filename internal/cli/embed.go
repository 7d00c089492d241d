package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/train"
)

func runEmbed(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "embed", "--checkpoint PATH --in FILE [--out FILE|-]")
	ckptPath := fs.String("checkpoint", "", "a checkpoint `file` (.ckpt), or a lake folder (the checkpoint its checkpoints/CURRENT names)")
	in := fs.String("in", "", "input `file`: JSON Lines with a \"text\" field (\"id\" and \"label\" are kept), or plain text lines; .gz read transparently")
	out := fs.String("out", "-", "output JSON Lines `file` ({\"id\", \"label\", \"embedding\"} in input order; - for stdout)")
	batch := fs.Int("batch", 256, "texts embedded at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	if *ckptPath == "" {
		problems = append(problems, "--checkpoint is required")
	}
	if *in == "" {
		problems = append(problems, "--in is required")
	}
	if *batch < 1 {
		problems = append(problems, "--batch must be positive")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}
	ck, err := openCheckpoint(ctx, e, *ckptPath)
	if err != nil {
		return &UsageError{Err: err}
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", *ckptPath, err)
	}
	r, closeIn, err := openInput(*in)
	if err != nil {
		return &UsageError{Err: err}
	}
	defer closeIn()
	var w io.Writer = e.stdout
	var outFile *os.File
	if *out != "-" {
		if outFile, err = os.Create(*out); err != nil {
			return &UsageError{Err: err}
		}
		defer outFile.Close()
		w = outFile
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := embedStream(ctx, e, enc, r, bw, *batch)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "embed: %d texts, dim %d, checkpoint step %d\n", n, enc.Dim(), ck.Meta.Step)
	return nil
}

func joinProblems(ps []string) string {
	s := ps[0]
	for _, p := range ps[1:] {
		s += "; " + p
	}
	return s
}

// openCheckpoint reads a checkpoint file, or the checkpoint a lake's
// CURRENT names (falling back as the trainer does).
func openCheckpoint(ctx context.Context, e *env, path string) (*train.Checkpoint, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return train.ReadCheckpointFile(path)
	}
	if _, err := os.Stat(filepath.Join(path, filepath.FromSlash(train.CheckpointPrefix))); err != nil {
		return nil, fmt.Errorf("%s is a folder without %s: not a lake with checkpoints", path, train.CheckpointPrefix)
	}
	store, err := lake.OpenDir(path)
	if err != nil {
		return nil, err
	}
	ck, _, err := train.NewCheckpointStore(store, 1, e.log).Load(ctx)
	return ck, err
}

// openInput opens a file, decompressing gzip (by its magic bytes).
func openInput(path string) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return gz, func() { gz.Close(); f.Close() }, nil
	}
	return br, func() { f.Close() }, nil
}

// embedLine is one output line.
type embedLine struct {
	ID        json.RawMessage `json:"id"`
	Label     json.RawMessage `json:"label,omitempty"`
	Embedding []float32       `json:"embedding"`
}

// embedStream embeds every input line, batch texts at a time, writing one
// output line per input line in order; it returns how many.
func embedStream(ctx context.Context, e *env, enc *train.Encoder, r io.Reader, w io.Writer, batch int) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var (
		lines   []embedLine
		texts   []string
		n, line int
		began   = time.Now()
		last    = began
	)
	flush := func() error {
		if len(texts) == 0 {
			return nil
		}
		vecs := enc.Embed(texts)
		for i := range lines {
			lines[i].Embedding = vecs[i]
			data, err := json.Marshal(&lines[i])
			if err != nil {
				return fmt.Errorf("line %d: %w", n+i+1, err)
			}
			if _, err := w.Write(append(data, '\n')); err != nil {
				return err
			}
		}
		n += len(lines)
		lines, texts = lines[:0], texts[:0]
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stderr, "embed: %d texts (%.0f texts/s)\n", n, float64(n)/time.Since(began).Seconds())
		}
		return ctx.Err()
	}
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		l, text, err := parseEmbedInput(raw, line)
		if err != nil {
			return n, err
		}
		lines = append(lines, l)
		texts = append(texts, text)
		if len(texts) >= batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("input line %d: %w", line+1, err)
	}
	return n, flush()
}

// parseEmbedInput reads one input line: a JSON object with "text" (and
// optional "id", "label"), or plain text, whose id is its line number.
func parseEmbedInput(raw []byte, line int) (embedLine, string, error) {
	if raw[0] != '{' {
		return embedLine{ID: json.RawMessage(strconv.Itoa(line))}, string(raw), nil
	}
	var v struct {
		ID    json.RawMessage `json:"id"`
		Label json.RawMessage `json:"label"`
		Text  *string         `json:"text"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return embedLine{}, "", fmt.Errorf("input line %d: %w", line, err)
	}
	if v.Text == nil {
		return embedLine{}, "", fmt.Errorf("input line %d: %w", line, errNoText)
	}
	l := embedLine{ID: v.ID, Label: v.Label}
	if len(l.ID) == 0 {
		l.ID = json.RawMessage(strconv.Itoa(line))
	}
	return l, *v.Text, nil
}

var errNoText = errors.New(`no "text" field`)
