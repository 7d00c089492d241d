package eval

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// ErrTask is wrapped by every error reading a labeled task.
var ErrTask = errors.New("eval: bad task")

// Split names, in the order LoadTask reads them.
var splitNames = [3]string{"train", "dev", "test"}

// Example is one labeled line of a task file.
type Example struct {
	ID    string // the "id" field as written: a JSON string's value or a number's text
	Text  string
	Label string
	Group string
}

// Split is one split of a task: texts and their class indexes into
// Task.Classes, in file order.
type Split struct {
	IDs    []string
	Texts  []string
	Labels []int
}

// Len is the number of examples.
func (s *Split) Len() int { return len(s.Texts) }

// Task is a labeled task: the train, dev and test splits of DIR.
type Task struct {
	Name    string   // the folder's base name
	Classes []string // every label of the three splits, sorted
	Train   Split
	Dev     Split
	Test    Split
}

// Split returns the split called name (train, dev or test), or nil.
func (t *Task) Split(name string) *Split {
	switch name {
	case "train":
		return &t.Train
	case "dev":
		return &t.Dev
	case "test":
		return &t.Test
	}
	return nil
}

// MajorityRate is the test accuracy of always answering the train split's
// most frequent class (ties: the first in Classes).
func (t *Task) MajorityRate() float64 {
	if t.Test.Len() == 0 {
		return 0
	}
	counts := make([]int, len(t.Classes))
	for _, y := range t.Train.Labels {
		counts[y]++
	}
	best := 0
	for c, n := range counts {
		if n > counts[best] {
			best = c
		}
	}
	hit := 0
	for _, y := range t.Test.Labels {
		if y == best {
			hit++
		}
	}
	return float64(hit) / float64(t.Test.Len())
}

// LoadTask reads DIR/{train,dev,test}.jsonl.gz (DIR/NAME.jsonl when the
// .gz file is absent). Every error names the file and, for a bad line, its
// line number, and wraps ErrTask (or the os error of a missing file).
func LoadTask(dir string) (*Task, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTask, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a folder", ErrTask, dir)
	}
	t := &Task{Name: filepath.Base(filepath.Clean(dir))}
	var raw [3][]Example
	for i, name := range splitNames {
		path := filepath.Join(dir, name+".jsonl.gz")
		if _, err := os.Stat(path); err != nil {
			plain := filepath.Join(dir, name+".jsonl")
			if _, err2 := os.Stat(plain); err2 != nil {
				return nil, fmt.Errorf("%w: %s: no %s.jsonl.gz or %s.jsonl", ErrTask, dir, name, name)
			}
			path = plain
		}
		if raw[i], err = readSplit(path); err != nil {
			return nil, err
		}
		if len(raw[i]) == 0 {
			return nil, fmt.Errorf("%w: %s: no examples", ErrTask, path)
		}
	}
	seen := map[string]bool{}
	for _, exs := range raw {
		for _, ex := range exs {
			if !seen[ex.Label] {
				seen[ex.Label] = true
				t.Classes = append(t.Classes, ex.Label)
			}
		}
	}
	sort.Strings(t.Classes)
	index := make(map[string]int, len(t.Classes))
	for i, c := range t.Classes {
		index[c] = i
	}
	for i, name := range splitNames {
		s := t.Split(name)
		for _, ex := range raw[i] {
			s.IDs = append(s.IDs, ex.ID)
			s.Texts = append(s.Texts, ex.Text)
			s.Labels = append(s.Labels, index[ex.Label])
		}
	}
	return t, nil
}

func readSplit(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTask, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrTask, path, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []Example
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ex, err := decodeLine(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %w", ErrTask, path, line, err)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s after line %d: %w", ErrTask, path, line, err)
	}
	return out, nil
}

// decodeLine decodes one task line: a JSON object with a string "text", a
// non-empty string (or number) "label", and optional "id" (string or
// number) and "group"; other fields are ignored.
func decodeLine(b []byte) (Example, error) {
	var v struct {
		ID    json.RawMessage `json:"id"`
		Text  *string         `json:"text"`
		Label json.RawMessage `json:"label"`
		Group string          `json:"group"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Example{}, err
	}
	if v.Text == nil {
		return Example{}, errors.New(`no "text" string`)
	}
	label, err := scalar(v.Label)
	if err != nil || label == "" {
		return Example{}, errors.New(`"label" is not a non-empty string or a number`)
	}
	id, err := scalar(v.ID)
	if err != nil {
		return Example{}, errors.New(`"id" is not a string or a number`)
	}
	return Example{ID: id, Text: *v.Text, Label: label, Group: v.Group}, nil
}

// scalar returns a JSON string's value or a number's text ("" for absent
// or null).
func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", err
		}
		if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", errors.New("not a string or a number")
}
