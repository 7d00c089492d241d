package cli

import (
	"os/exec"
	"regexp"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// TestBench runs `thresher bench` on a slice of the real stream: it lands
// every record (checked by bench itself), curates them, restarts curate,
// and prints each figure.
func TestBench(t *testing.T) {
	bin := realtest.Binary(t)
	corpus := realtest.Corpus(t)
	out, err := exec.Command(bin, "bench", "--corpus", corpus, "--records", "4000", "--runs", "1",
		"--curate-runs", "1", "--kcat", "no-such-kcat").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, re := range []string{
		`thresher ingest \(to Parquet lake\)\s+[0-9.]+\s+\d+`,
		`4000 records, \d+ kept, [0-9.]+ s busy: \d+ rec/s`,
		`peak RSS: \d+ MiB`,
		`restart with nothing new .*: [0-9.]+ s`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("bench output does not match %q:\n%s", re, out)
		}
	}
}
