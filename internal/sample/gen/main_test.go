package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestGenerateReproducesSample regenerates the sample from the real stream
// and the task from the real task, and checks they equal the committed
// ones, record for record, and the notes and meta.json byte for byte.
func TestGenerateReproducesSample(t *testing.T) {
	if raceEnabled {
		// One goroutine, nothing to race; the detector makes reading half
		// the stream take 20 s instead of 2.
		t.Skip("skipped under -race; run without -race")
	}
	const (
		corpus = "../../../../shared/data/corpus/stream.jsonl.gz"
		tasks  = "../../../../shared/data/tasks"
	)
	for _, p := range []string{corpus, tasks} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("real data missing on CI: %v", err)
			}
			t.Skipf("real data missing (%v)", err)
		}
	}
	dir := t.TempDir()
	if _, _, err := generateAll(corpus, tasks, dir, defaultSources, defaultTask); err != nil {
		t.Fatal(err)
	}
	names := []string{"sample.jsonl.gz", "DATA_LICENSES.md", "task/wordnet_lexname/meta.json"}
	for _, split := range taskSplits {
		names = append(names, "task/wordnet_lexname/"+split+".jsonl.gz")
	}
	for _, name := range names {
		got, want := read(t, filepath.Join(dir, name)), read(t, filepath.Join("..", name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the committed one: run go generate in internal/sample", name)
		}
	}
}

// read returns a file's content, decompressed when gzipped (gzip's bytes may
// differ between Go versions; the records may not).
func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(path) != ".gz" {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWithQuotas(t *testing.T) {
	s, err := withQuotas(defaultSources, "wordnet=10, dict-devil=0")
	if err != nil {
		t.Fatal(err)
	}
	if s[0].quota != 10 || s[len(s)-1].quota != 0 || defaultSources[0].quota == 10 {
		t.Errorf("quotas not applied to a copy: %+v", s)
	}
	for _, bad := range []string{"debian=5", "wordnet", "wordnet=-1"} {
		if _, err := withQuotas(defaultSources, bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
