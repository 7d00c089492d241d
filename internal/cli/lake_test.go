package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/sample"
	"github.com/thresher-ml/thresher/schemas"
)

// ingestedLake lands the first n records of the bundled sample and the
// demo's malformed values in a new lake, with a real ingest run on the
// embedded broker cutting segments of at most 100 records.
func ingestedLake(t *testing.T, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{"records"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rc, err := sample.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var in strings.Builder
	sc := bufio.NewScanner(rc)
	sc.Buffer(nil, 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		in.WriteString(sc.Text() + "\n")
	}
	in.WriteString(strings.Join(demoMalformed, "\n") + "\n")
	if _, _, err := produceLines(ctx, []string{b.Addr()}, "records", "json", strings.NewReader(in.String()), io.Discard); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lake")
	cfg := ingest.Config{Brokers: []string{b.Addr()}, Topics: []string{"records"}, Group: "check", Lake: dir,
		RollRecords: 100, ExitOnIdle: ingest.Duration(300 * time.Millisecond)}
	cfg.SetDefaults()
	sum, err := ingestRun(ctx, &env{stdout: io.Discard, stderr: io.Discard, log: log}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ingest: %s", sum)
	return dir
}

// TestLakeCheck: a lake a real ingest run wrote checks clean (exit 0, a
// line per table, the same counts as JSON); once a raw segment is deleted,
// the check exits 1 naming the hole and the segments around it.
func TestLakeCheck(t *testing.T) {
	const records = 600
	dir := ingestedLake(t, records)

	code, out, stderr := run(t, "lake", "check", "--lake", dir)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"raw: partitions=2 ", fmt.Sprintf(" rows=%d ", records), "dlq: partitions=", " rows=7 ",
		"gaps: partitions=0 segments=0 superseded=0 rows=0 ", "lake check: ok: errors=0 warnings=0 superseded=0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, stderr = run(t, "lake", "check", "--lake", dir, "--json", "--workers", "1")
	if code != ExitOK {
		t.Fatalf("--json: exit %d\n%s", code, stderr)
	}
	var rep struct {
		OK       bool
		Errors   int
		Tables   []lake.TableSummary
		Findings []lake.Finding
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if !rep.OK || rep.Errors != 0 || len(rep.Findings) != 0 || len(rep.Tables) != 3 ||
		rep.Tables[0].Rows != records || rep.Tables[1].Rows != int64(len(demoMalformed)) || rep.Tables[0].Segments < 6 {
		t.Fatalf("--json report: %+v", rep)
	}

	// Delete partition 0's second raw segment: a hole.
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ranges, err := lake.Segments(ctx, store, schemas.TableRaw, "records", 0)
	if err != nil || len(ranges) < 3 {
		t.Fatalf("partition 0: %v segments, %v", ranges, err)
	}
	gone := ranges[1]
	if dlq, _ := lake.Segments(ctx, store, schemas.TableDLQ, "records", 0); len(dlq) > 0 && dlq[0].First <= gone.Last {
		t.Fatalf("the malformed values landed early: %v", dlq)
	}
	if err := os.Remove(filepath.Join(dir, lake.SegmentKey(schemas.TableRaw, "records", 0, gone))); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "lake", "check", "--lake", dir)
	want := fmt.Sprintf("error hole raw topic=records partition=0 offsets=%d-%d keys=%s,%s: ", gone.First, gone.Last,
		lake.SegmentKey(schemas.TableRaw, "records", 0, ranges[0]), lake.SegmentKey(schemas.TableRaw, "records", 0, ranges[2]))
	if code != ExitFailure || !strings.HasPrefix(out, want) || !strings.Contains(out, "lake check: FAILED: errors=1 ") ||
		!strings.Contains(stderr, "thresher lake: check found 1 error in "+dir) {
		t.Fatalf("after deleting %v: exit %d\n%s\n%s", gone, code, out, stderr)
	}
}

func TestLakeCheckUsage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"lake"}, ExitUsage, "a subcommand is required"},
		{[]string{"lake", "frob"}, ExitUsage, `unknown subcommand "frob"`},
		{[]string{"lake", "-h"}, ExitOK, "check    prove that"},
		{[]string{"lake", "check", "-h"}, ExitOK, "usage: thresher lake check --lake DIR"},
		{[]string{"lake", "check"}, ExitUsage, "--lake DIR is required"},
		{[]string{"lake", "check", "--lake", t.TempDir(), "--workers", "0", "--progress", "-1s", "x"}, ExitUsage,
			`--workers 0: must be at least 1; --progress must not be negative; unexpected arguments ["x"]`},
		{[]string{"lake", "check", "--lake", missing}, ExitUsage, missing},
		{[]string{"lake", "check", "--lake", file}, ExitUsage, "not a directory"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want %d and %q in stderr:\n%s", c.args, code, c.code, c.want, stderr)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("checking a missing lake created it")
	}
	// An empty lake is a clean one.
	if code, out, _ := run(t, "lake", "check", "--lake", t.TempDir()); code != ExitOK || !strings.Contains(out, "raw: partitions=0 segments=0") {
		t.Errorf("empty lake: exit %d\n%s", code, out)
	}
}
