package cli

import (
	"os"
	"strings"
	"testing"
)

func TestCurateConfiguration(t *testing.T) {
	lakeDir := t.TempDir()
	// A good file on an empty lake: runs, finds nothing, exits.
	code, out, stderr := run(t, "curate", "--config", "testdata/config/curate-good.yaml", "--lake", lakeDir, "--exit-on-idle", "10ms")
	if code != ExitOK || !strings.Contains(out, "curate: windows=0 records=0") {
		t.Fatalf("good config: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	code, _, stderr = run(t, "curate", "--config", "testdata/config/curate-bad.yaml", "--lake", lakeDir)
	if code != ExitUsage {
		t.Fatalf("bad config: exit %d, want %d: %s", code, ExitUsage, stderr)
	}
	data, err := os.ReadFile("testdata/config/curate-bad.errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	for _, args := range [][]string{
		{"curate"},
		{"curate", "--lake", lakeDir, "--drop", "nonsense"},
		{"curate", "--lake", lakeDir, "--target", "/no/such/file"},
		{"curate", "--lake", lakeDir, "--frobnicate"},
		{"audit"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, ExitUsage, stderr)
		}
	}
	if code, out, _ := run(t, "audit", "--lake", lakeDir); code != ExitOK || !strings.Contains(out, "no audit yet") {
		t.Fatalf("audit of an empty lake: %d %q", code, out)
	}
}
