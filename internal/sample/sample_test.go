package sample_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/sample"
)

var permitted = map[string]bool{
	"wordnet": true, "bible-WEB": true, "bible-KJV": true, "fortunes": true, "austen": true,
	"moby_dick": true, "sotu": true, "dict-devil": true, "dict-jargon": true,
}

func TestSample(t *testing.T) {
	rc, err := sample.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	counts := map[string]int{}
	texts := map[string]bool{}
	n, dups := 0, 0
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		var rec struct{ ID, Source, Domain, Lang, Text string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if !permitted[rec.Source] {
			t.Fatalf("line %d: source %q is not a permitted one", n, rec.Source)
		}
		if rec.ID == "" || rec.Text == "" || rec.Domain == "" || rec.Lang == "" {
			t.Fatalf("line %d: missing field: %+v", n, rec)
		}
		counts[rec.Source]++
		if texts[rec.Text] {
			dups++
		}
		texts[rec.Text] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != sample.Records {
		t.Fatalf("sample has %d records, Records says %d", n, sample.Records)
	}
	if len(counts) != len(permitted) {
		t.Errorf("sources %v: want all %d permitted ones", counts, len(permitted))
	}
	if dups == 0 {
		t.Error("no natural exact duplicates in the sample")
	}
	if size := len(sample.Gzipped()); size > 3<<20 {
		t.Errorf("sample is %d bytes gzipped, over 3 MiB", size)
	}

	// DATA_LICENSES.md states the same counts.
	row := regexp.MustCompile(`(?m)^\| ([a-zA-Z_-]+) \| [^|]+ \| (\d+) \| [^|]+ \|$`)
	listed := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(sample.Licenses, -1) {
		listed[m[1]], _ = strconv.Atoi(m[2])
	}
	if fmt.Sprint(listed) != fmt.Sprint(counts) {
		t.Errorf("DATA_LICENSES.md lists %v, the sample holds %v", listed, counts)
	}
	if !strings.Contains(sample.Licenses, fmt.Sprintf("**%d**", sample.Records)) {
		t.Error("DATA_LICENSES.md does not state the total")
	}
	if !strings.Contains(sample.Licenses, "WordNet 3.0 Copyright 2006 by Princeton University") {
		t.Error("DATA_LICENSES.md lacks WordNet's notice")
	}
}

func TestSampleOpenTwice(t *testing.T) {
	for i := 0; i < 2; i++ {
		rc, err := sample.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			t.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

// TestTask writes the bundled task out, reads it as eval does, and checks
// it against its meta.json and DATA_LICENSES.md: every class in every
// split, within the quotas, and none of its texts in the bundled sample.
func TestTask(t *testing.T) {
	dir, err := sample.WriteTask(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != sample.TaskName {
		t.Errorf("WriteTask wrote %s, want a folder named %s", dir, sample.TaskName)
	}
	task, err := eval.LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Classes) != 25 {
		t.Errorf("%d classes, want 25: %v", len(task.Classes), task.Classes)
	}
	metaBytes, err := fs.ReadFile(sample.Task(), "meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]struct {
		N      int            `json:"n"`
		Labels map[string]int `json:"labels"`
	}
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	quota := map[string]int{"train": 40, "dev": 12, "test": 40}
	for _, split := range []string{"train", "dev", "test"} {
		s := task.Split(split)
		counts := map[string]int{}
		for _, y := range s.Labels {
			counts[task.Classes[y]]++
		}
		if m := meta[split]; m.N != s.Len() || fmt.Sprint(m.Labels) != fmt.Sprint(counts) {
			t.Errorf("%s: meta.json says %d %v, the file holds %d %v", split, m.N, m.Labels, s.Len(), counts)
		}
		full := 0
		for c, n := range counts {
			if n > quota[split] {
				t.Errorf("%s: class %s has %d examples, over the quota %d", split, c, n, quota[split])
			}
			if n == quota[split] {
				full++
			}
		}
		if len(counts) != len(task.Classes) || full < len(task.Classes)-1 {
			t.Errorf("%s: %d classes, %d at the quota: %v", split, len(counts), full, counts)
		}
		if !strings.Contains(sample.Licenses, fmt.Sprintf("| %s | %d | %d | %d |", split, s.Len(), len(counts), quota[split])) {
			t.Errorf("DATA_LICENSES.md does not list the %s split's %d examples", split, s.Len())
		}
	}

	// No text of the task is in the sample the demo trains on.
	rc, err := sample.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	texts := map[string]bool{}
	for _, s := range []*eval.Split{&task.Train, &task.Dev, &task.Test} {
		for _, x := range s.Texts {
			texts[x] = true
		}
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if texts[rec.Text] {
			t.Errorf("the task's text %q is in the sample", rec.Text)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
