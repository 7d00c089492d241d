package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
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

// TestCurateBadTarget: a bad --target file stops curate at start, with
// --check and without, exit code 2, listed with the other problems; a good
// one (a task's train file) passes.
func TestCurateBadTarget(t *testing.T) {
	lakeDir, dir := t.TempDir(), t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	noText := filepath.Join(dir, "labels.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noText, []byte(strings.Repeat(`{"label": "x"}`+"\n", 12)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, says string }{
		{empty, "empty.jsonl: empty file"},
		{noText, `labels.jsonl line 1: JSON object without a "text" member; 12 of 12 lines are bad`},
	} {
		for _, check := range []string{"--check", "--exit-on-idle=10ms"} {
			code, _, stderr := run(t, "curate", "--lake", lakeDir, "--target", c.file, "--drop", "nonsense", check)
			if code != ExitUsage || !strings.Contains(stderr, "- target: "+filepath.Join(dir, c.says)) || !strings.Contains(stderr, "- drop: ") {
				t.Errorf("%s %s: exit %d, want %d listing the target and the drop problems:\n%s", c.file, check, code, ExitUsage, stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(lakeDir, "_curate")); !os.IsNotExist(err) {
		t.Fatalf("a refused start wrote to the lake: %v", err)
	}
	good := realtest.Data(t, "tasks/fortune_cat/train.jsonl.gz")
	if code, out, stderr := run(t, "curate", "--lake", lakeDir, "--target", good, "--check"); code != ExitOK || !strings.Contains(out, "target: "+good) {
		t.Fatalf("good target: exit %d:\n%s%s", code, out, stderr)
	}
}

// TestCurateEnvironment: THRESHER_CURATE_<KEY> variables override the file
// and are overridden by flags; bad values are listed with the rest.
func TestCurateEnvironment(t *testing.T) {
	lakeDir := t.TempDir()
	t.Setenv("THRESHER_CURATE_WINDOW_RECORDS", "many")
	t.Setenv("THRESHER_CURATE_DEDUP_THRESHOLD", "2")
	t.Setenv("THRESHER_CURATE_POLL", "soon")
	t.Setenv("THRESHER_CURATE_MEMORY_LIMIT", "lots")
	code, _, stderr := run(t, "curate", "--config", "testdata/config/curate-good.yaml", "--lake", lakeDir, "--exit-on-idle", "10ms")
	if code != ExitUsage {
		t.Fatalf("bad environment: exit %d, want %d: %s", code, ExitUsage, stderr)
	}
	for _, want := range []string{"THRESHER_CURATE_WINDOW_RECORDS", "THRESHER_CURATE_POLL", "dedup: ", "threshold", "memory_limit"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr)
		}
	}

	// Good values apply: an unknown topic from the environment curates
	// nothing; the flag wins over the environment's window size.
	t.Setenv("THRESHER_CURATE_WINDOW_RECORDS", "-5")
	t.Setenv("THRESHER_CURATE_DEDUP_THRESHOLD", "0.7")
	t.Setenv("THRESHER_CURATE_POLL", "5ms")
	t.Setenv("THRESHER_CURATE_MEMORY_LIMIT", "1GiB")
	t.Setenv("THRESHER_CURATE_TOPICS", "bad topic!")
	code, _, stderr = run(t, "curate", "--lake", lakeDir, "--exit-on-idle", "10ms", "--window-records", "10")
	if code != ExitUsage || !strings.Contains(stderr, "topics:") || strings.Contains(stderr, "window_records") {
		t.Fatalf("topics from the environment, window from the flag: exit %d: %s", code, stderr)
	}
	t.Setenv("THRESHER_CURATE_TOPICS", "other")
	code, out, stderr := run(t, "curate", "--lake", lakeDir, "--exit-on-idle", "10ms", "--window-records", "10")
	if code != ExitOK || !strings.Contains(out, "windows=0") {
		t.Fatalf("good environment: exit %d %q: %s", code, out, stderr)
	}
}

func TestEnvNames(t *testing.T) {
	var cfg struct {
		A int `yaml:"a"`
		B struct {
			C []string `yaml:"c_d"`
		} `yaml:"b"`
		skip int
		E    int `yaml:"-"`
	}
	got := strings.Join(envNames("P_", &cfg), " ")
	if got != "P_A P_B_C_D" {
		t.Fatalf("names %q", got)
	}
	errs := applyEnv("P_", &cfg, func(k string) (string, bool) {
		return map[string]string{"P_A": "7", "P_B_C_D": "x, y"}[k], k != "P_E"
	})
	if len(errs) != 0 || cfg.A != 7 || strings.Join(cfg.B.C, "|") != "x|y" {
		t.Fatalf("errs %v, cfg %+v", errs, cfg)
	}
	_ = cfg.skip
}

// TestCurateDedupSwitch: --no-dedup, THRESHER_CURATE_DEDUP_ENABLED and the
// YAML key all reach dedup.enabled, the flag winning; a bad value is named.
func TestCurateDedupSwitch(t *testing.T) {
	lakeDir := t.TempDir()
	code, out, stderr := run(t, "curate", "--lake", lakeDir, "--check", "--no-dedup")
	if code != ExitOK || !strings.Contains(out, "enabled: false") {
		t.Fatalf("--no-dedup: exit %d:\n%s%s", code, out, stderr)
	}
	code, out, _ = run(t, "curate", "--lake", lakeDir, "--check")
	if code != ExitOK || strings.Contains(out, "enabled: false") {
		t.Fatalf("default: exit %d, dedup not enabled:\n%s", code, out)
	}
	t.Setenv("THRESHER_CURATE_DEDUP_ENABLED", "false")
	if code, out, _ = run(t, "curate", "--lake", lakeDir, "--check"); code != ExitOK || !strings.Contains(out, "enabled: false") {
		t.Fatalf("THRESHER_CURATE_DEDUP_ENABLED=false: exit %d:\n%s", code, out)
	}
	if code, out, _ = run(t, "curate", "--lake", lakeDir, "--check", "--no-dedup=false"); code != ExitOK || !strings.Contains(out, "enabled: true") {
		t.Fatalf("--no-dedup=false over the environment: exit %d:\n%s", code, out)
	}
	t.Setenv("THRESHER_CURATE_DEDUP_ENABLED", "maybe")
	if code, _, stderr = run(t, "curate", "--lake", lakeDir, "--check"); code != ExitUsage || !strings.Contains(stderr, "THRESHER_CURATE_DEDUP_ENABLED") {
		t.Fatalf("bad value: exit %d: %s", code, stderr)
	}
}
