package cli

import (
	"os"
	"strings"
	"testing"
)

func TestTrainConfiguration(t *testing.T) {
	code, _, stderr := run(t, "train", "--config", "testdata/config/train-bad.yaml")
	if code != ExitUsage {
		t.Fatalf("bad config: exit %d, want %d: %s", code, ExitUsage, stderr)
	}
	data, err := os.ReadFile("testdata/config/train-bad.errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	lakeDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train"}, "lake: a lake folder is required"},
		{[]string{"train", "--lake", lakeDir, "--config", "testdata/config/train-unknown-key.yaml"}, "embeddim"},
		{[]string{"train", "--lake", lakeDir, "--config", "/no/such/file.yaml"}, "no such file"},
		{[]string{"train", "--lake", lakeDir, "--max-steps", "-1"}, "max_steps"},
		{[]string{"train", "--lake", lakeDir, "--listen", "nonsense"}, "listen"},
		{[]string{"train", "--lake", lakeDir, "--frobnicate"}, "frobnicate"},
		{[]string{"train", "--lake", lakeDir, "extra"}, "unexpected arguments"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
	// Flags win over the file: the good file with a bad flag fails on the flag only.
	code, _, stderr = run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--checkpoint-steps", "-4")
	if code != ExitUsage || !strings.Contains(stderr, "checkpoint_steps: -4") || strings.Count(stderr, "\n  - ") != 1 {
		t.Fatalf("good file, bad flag: exit %d: %s", code, stderr)
	}
}
