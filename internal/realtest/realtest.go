// Package realtest gives tests the real things they run against: the shared
// real data beside the checkout, third-party tools (kcat, node with DuckDB),
// a freshly built thresher binary, and an embedded broker to start and
// consume records back from. It is test support only.
//
// A test that needs something missing skips with a message saying how to get
// it, except under CI=true, where a missing tool or data set is a failure.
package realtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

// Root returns the module root (the folder holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Data returns the path of a file under the shared real data folder
// (../shared/data beside the checkout), skipping when it is absent.
func Data(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "real data %s is missing (it lives in ../shared/data beside the checkout)", p)
	}
	return p
}

// Corpus returns the path of the real 378k-record stream.
func Corpus(t testing.TB) string { return Data(t, "corpus/stream.jsonl.gz") }

// CorpusLines returns the first n lines (0: all) of the real stream.
func CorpusLines(t testing.TB, n int) [][]byte {
	t.Helper()
	return Lines(t, Corpus(t), n)
}

// Lines returns the first n lines (0: all) of a file, gunzipped when its
// name ends in .gz.
func Lines(t testing.TB, path string, n int) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out [][]byte
	for (n == 0 || len(out) < n) && sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Tool returns the path of an installed binary, skipping (failing under CI)
// when it is missing.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (%s)", name, install)
	}
	return p
}

// DuckDB runs sql in DuckDB (node and the @duckdb/node-api package installed
// by `npm ci --prefix testdata/duckdb`) and returns the rows.
func DuckDB(t testing.TB, sql string) []map[string]any {
	t.Helper()
	node := Tool(t, "node", "install Node.js")
	dir := filepath.Join(Root(t), "testdata", "duckdb")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		Missing(t, "DuckDB for node is not installed (run: npm ci --prefix testdata/duckdb)")
	}
	cmd := exec.Command(node, filepath.Join(dir, "query.mjs"), sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb %q: %v: %s", sql, err, stderr.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("duckdb output %q: %v", out, err)
	}
	return rows
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main runs a package's tests and then Cleanup; call it as the whole of
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes what the package made for the test binary (the built
// thresher). Call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Binary builds cmd/thresher once per test binary and returns its path; see
// Cleanup.
func Binary(t testing.TB) string {
	t.Helper()
	root := Root(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "thresher-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildPath = dir, filepath.Join(dir, "thresher")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/thresher")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, strings.TrimSpace(string(out)))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}
