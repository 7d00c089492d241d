package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// taskSpec describes the bundled labeled task: a per-class subsample of one
// of the real tasks, each split subsampled on its own, so the real task's
// leak-free splits stay leak-free.
type taskSpec struct {
	name    string
	what    string
	licence string
	// quota is the most examples per class taken from each split.
	quota map[string]int
}

// taskSplits are the split names, in the order they are written and listed.
var taskSplits = []string{"train", "dev", "test"}

var defaultTask = taskSpec{
	name:    "wordnet_lexname",
	what:    "WordNet 3.0 noun glosses, each labelled with its lexicographer file\n(noun.animal, noun.artifact, ...)",
	licence: "WordNet licence (permissive; notice below)",
	quota:   map[string]int{"train": 40, "dev": 12, "test": 40},
}

// taskStats counts what the task subsample holds.
type taskStats struct {
	classes int
	// counts[split][label] and totals[split].
	counts map[string]map[string]int
	totals map[string]int
}

// selectionKey orders the examples of one class in one split: the FNV-1a
// hash of the split and the example's id, so the subsample is a fixed,
// spread-out choice that does not depend on file order.
func selectionKey(split, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(split))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum64()
}

// taskLine is one example line as read: the raw bytes and what selection
// needs.
type taskLine struct {
	raw   []byte
	id    string
	label string
	key   uint64
}

// generateTask reads the real task from srcDir/<name>, keeps up to the
// quota of every class of every split (by selectionKey), byte for byte and
// in file order, and writes <split>.jsonl.gz and meta.json into
// outDir/<name>.
func generateTask(srcDir, outDir string, spec taskSpec) (taskStats, error) {
	st := taskStats{counts: map[string]map[string]int{}, totals: map[string]int{}}
	dst := filepath.Join(outDir, spec.name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return st, err
	}
	classes := map[string]bool{}
	for _, split := range taskSplits {
		path := filepath.Join(srcDir, spec.name, split+".jsonl.gz")
		lines, err := readTaskLines(path, split)
		if err != nil {
			return st, err
		}
		byLabel := map[string][]int{}
		for i, l := range lines {
			byLabel[l.label] = append(byLabel[l.label], i)
		}
		keep := make([]bool, len(lines))
		counts := map[string]int{}
		for label, idx := range byLabel {
			sort.Slice(idx, func(a, b int) bool {
				ka, kb := lines[idx[a]].key, lines[idx[b]].key
				return ka < kb || ka == kb && idx[a] < idx[b]
			})
			for _, i := range idx[:min(len(idx), spec.quota[split])] {
				keep[i] = true
			}
			counts[label] = min(len(idx), spec.quota[split])
			classes[label] = true
		}
		var raw bytes.Buffer
		for i, l := range lines {
			if keep[i] {
				raw.Write(l.raw)
				raw.WriteByte('\n')
				st.totals[split]++
			}
		}
		st.counts[split] = counts
		gz, err := gzipBytes(raw.Bytes())
		if err != nil {
			return st, err
		}
		if err := writeFile(filepath.Join(dst, split+".jsonl.gz"), gz); err != nil {
			return st, err
		}
	}
	st.classes = len(classes)
	return st, writeFile(filepath.Join(dst, "meta.json"), taskMeta(st))
}

// readTaskLines reads a gzipped JSON Lines split.
func readTaskLines(path, split string) ([]taskLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []taskLine
	br := bufio.NewReaderSize(zr, 1<<20)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(line)) > 0 {
			var v struct {
				ID    json.RawMessage `json:"id"`
				Label string          `json:"label"`
			}
			if jerr := json.Unmarshal(line, &v); jerr != nil || v.Label == "" {
				return nil, fmt.Errorf("%s:%d: not an example with a string label (%v)", path, n, jerr)
			}
			id := strings.Trim(string(v.ID), `"`)
			out = append(out, taskLine{raw: append([]byte(nil), line...), id: id, label: v.Label, key: selectionKey(split, id)})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
}

func gzipBytes(b []byte) ([]byte, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// taskMeta writes meta.json as the real tasks have it: per split the
// number of examples and the count of each label, most frequent first,
// indented by one space.
func taskMeta(st taskStats) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for si, split := range taskSplits {
		counts := st.counts[split]
		labels := make([]string, 0, len(counts))
		for l := range counts {
			labels = append(labels, l)
		}
		sort.Slice(labels, func(i, j int) bool {
			ci, cj := counts[labels[i]], counts[labels[j]]
			return ci > cj || ci == cj && labels[i] < labels[j]
		})
		fmt.Fprintf(&b, " %s: {\n  \"n\": %d,\n  \"labels\": {\n", jsonString(split), st.totals[split])
		for i, l := range labels {
			comma := ","
			if i == len(labels)-1 {
				comma = ""
			}
			fmt.Fprintf(&b, "   %s: %d%s\n", jsonString(l), counts[l], comma)
		}
		b.WriteString("  }\n }")
		if si < len(taskSplits)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// minClass is the smallest count of any class in a split, and that class.
func (st taskStats) minClass(split string) (string, int) {
	best, n := "", -1
	for l, c := range st.counts[split] {
		if n < 0 || c < n || c == n && l < best {
			best, n = l, c
		}
	}
	return best, n
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
