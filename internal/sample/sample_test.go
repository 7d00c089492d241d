package sample_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
