package ingest_test

import (
	"testing"

	"github.com/thresher-ml/thresher/ingest"
)

// FuzzParseSize: no panic, and a parsed size prints back to the same size.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1", "1KiB", "16 MiB", "3MB", "1GiB", "7B", "-1", "1.5MiB", "99999999999GiB", "KiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ingest.ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		back, err := ingest.ParseSize(n.String())
		if err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, printed %q, parsed back %d, %v", s, n, n.String(), back, err)
		}
	})
}
