package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/curatetest"
)

// TestReportCommand writes the report of a curated lake of real records
// (no training yet): the page exists where --out says, the report line
// names it, and stderr lists each section, the untrained ones as having
// no data yet.
func TestReportCommand(t *testing.T) {
	lakeDir, _ := curatetest.Lake(t, 3000, 1500)
	out := filepath.Join(t.TempDir(), "sub", "r.html")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "report", "--lake", lakeDir, "--out", out, "--sample", "200")
	if code != ExitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if m := regexp.MustCompile(`(?m)^report: (.+)$`).FindStringSubmatch(stdout); m == nil || m[1] != out {
		t.Errorf("stdout does not name %s on a report line:\n%s", out, stdout)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3000 in 2 curate windows", `id="plot-records-time"`, `id="plot-pacing"`, "No checkpoint yet"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page does not hold %q", want)
		}
	}
	for _, want := range []string{"report: timeline", "charts", "report: training      No data yet", "report: embeddings    No checkpoint yet"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 {
		t.Errorf("the output folder holds %v (%v), want only the report: no temporary file left", entries, err)
	}
}

func TestReportBadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "--lake is required"},
		{[]string{"report", "--lake", dir, "--out", ""}, "--out must name a file"},
		{[]string{"report", "--lake", dir, "--sample", "0"}, "--sample 0"},
		{[]string{"report", "--lake", dir, "--sample", "-5", "--buckets", "5000"}, "sample: -5 is not -1 or in [1, 20000]; buckets: 5000"},
		{[]string{"report", "--lake", filepath.Join(dir, "missing")}, "not a lake folder"},
		{[]string{"report", "--lake", dir, "extra"}, "unexpected arguments"},
		{[]string{"report", "--lake", dir, "--out", filepath.Join(dir, "no", "such", "dir", "r.html")}, "no such file"},
	} {
		code, _, stderr := run(t, tc.args...)
		wantCode := ExitUsage
		if strings.Contains(tc.want, "no such file") {
			wantCode = ExitFailure
		}
		if code != wantCode || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, wantCode, tc.want, stderr)
		}
	}
}
