package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command (with a shorter training run):
// every step, on the embedded broker and the bundled sample, and the lake it
// leaves holds every table and a checkpoint.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	code, out, stderr := run(t, "demo", "--lake", dir, "--train-steps", "20")
	if code != ExitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "records=20000", "dlq=7",
		"curate: windows=", "train: step=20 ", "nearest neighbours", "lake: " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []string{"raw", "dlq", "audit/records", "audit/summary", "curated", "curriculum", "checkpoints/CURRENT"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("the demo lake lacks %s: %v", p, err)
		}
	}
	if code, _, stderr := run(t, "demo", "--train-steps", "0"); code != ExitUsage {
		t.Errorf("--train-steps 0: exit %d: %s", code, stderr)
	}
}
