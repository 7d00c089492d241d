package curate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// taskLines returns the first n JSON lines of a labeled task's train file
// (real records with a "text", a "label" and other members).
func taskLines(t testing.TB, task string, n int) [][]byte {
	t.Helper()
	return realtest.Lines(t, realtest.Data(t, "tasks/"+task+"/train.jsonl.gz"), n)
}

// textOf returns the "text" member of a JSON line.
func textOf(t testing.TB, line []byte) string {
	t.Helper()
	var v struct{ Text string }
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatal(err)
	}
	return v.Text
}

// oneLineTexts returns n texts of a task that fit on one line, trimmed.
func oneLineTexts(t testing.TB, task string, n int) []string {
	t.Helper()
	var out []string
	for _, l := range taskLines(t, task, 0) {
		s := strings.TrimSpace(textOf(t, l))
		if s != "" && !strings.ContainsAny(s, "\r\n") {
			out = append(out, s)
		}
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("%s: fewer than %d one-line texts", task, n)
	return nil
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTargetFileBad: every kind of bad target file fails ReadTargetFile
// and Config.Validate with ErrTargetFile, a message naming the file, the
// problem and, where there is one, the line; Validate lists it with the
// configuration's other problems.
func TestTargetFileBad(t *testing.T) {
	real := taskLines(t, "fortune_cat", 40)
	jsonl := func(edit func(i int, line []byte) []byte) []byte {
		var b bytes.Buffer
		for i, l := range real {
			b.Write(edit(i+1, l))
			b.WriteByte('\n')
		}
		return b.Bytes()
	}
	rename := func(line []byte, to string) []byte {
		return bytes.Replace(line, []byte(`"text":`), []byte(to), 1)
	}
	plain := []byte(strings.Join(oneLineTexts(t, "fortune_cat", 40), "\n") + "\n")
	truncated := gzipped(t, plain)
	truncated = truncated[:len(truncated)/2]
	for _, c := range []struct {
		name string
		data []byte
		want []string // in the message, beside the file's name
	}{
		{"empty.jsonl", nil, []string{"empty file"}},
		{"blank.txt", []byte("\n   \n\t\r\n\n"), []string{"only blank lines (4)"}},
		{"nul.bin", append(slices.Clone(plain[:300]), 0, 1, 2, 0), []string{"binary data (a NUL byte)", "line "}},
		{"latin1.txt", bytes.Replace(plain, []byte("\n"), []byte("\n\xe9t\xe9\n"), 1), []string{"line 2: binary data (invalid UTF-8)"}},
		{"plain.jsonl.gz", plain, []string{"not gzip data"}},
		{"gzip.jsonl", gzipped(t, plain), []string{"gzip data", "rename it"}},
		{"truncated.txt.gz", truncated, []string{"reading after line", "unexpected EOF"}},
		{"no-text.jsonl", jsonl(func(i int, l []byte) []byte {
			if i == 5 || i == 9 || i == 30 {
				return rename(l, `"body":`)
			}
			return l
		}), []string{`line 5: JSON object without a "text" member; 3 of 40 lines are bad`}},
		{"text-number.jsonl", jsonl(func(i int, l []byte) []byte {
			if i == 12 {
				return []byte(`{"text": 42, "label": "x"}`)
			}
			return l
		}), []string{`line 12: "text" is not a string; 1 of 40 lines are bad`}},
		{"text-null.jsonl", jsonl(func(i int, l []byte) []byte {
			if i == 1 {
				return []byte(`{"text": null}`)
			}
			return l
		}), []string{`line 1: "text" is null`}},
		{"text-empty.jsonl", jsonl(func(i int, l []byte) []byte {
			if i == 40 {
				return []byte(`{"text": " \n "}`)
			}
			return l
		}), []string{`line 40: "text" is empty`}},
		{"mixed.jsonl", jsonl(func(i int, l []byte) []byte {
			if i == 7 || i == 8 {
				return []byte(strings.Join(strings.Fields(textOf(t, l)), " "))
			}
			if i == 20 {
				return l[:len(l)/2] // cut mid-object
			}
			return l
		}), []string{"line 7: not a JSON object, in a file of JSON lines; 3 of 40 lines are bad, 37 are JSON objects"}},
		{"few.txt", plain[:bytes.IndexByte(plain, '\n')+1], []string{"1 texts, want at least 10"}},
		{"few.jsonl", jsonl(func(i int, l []byte) []byte {
			if i > 9 {
				return nil
			}
			return l
		}), []string{"9 texts, want at least 10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), c.name, c.data)
			texts, err := curate.ReadTargetFile(path)
			if !errors.Is(err, curate.ErrTargetFile) || texts != nil {
				t.Fatalf("ReadTargetFile: %d texts, err %v; want ErrTargetFile", len(texts), err)
			}
			for _, want := range append(c.want, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			// Validate lists it with the configuration's other problems.
			cfg := testConfig(t.TempDir(), 100)
			cfg.Target = path
			cfg.Stages = 0
			err = cfg.Validate()
			if !errors.Is(err, curate.ErrConfig) || !errors.Is(err, curate.ErrTargetFile) {
				t.Fatalf("Validate: %v; want ErrConfig and ErrTargetFile", err)
			}
			for _, want := range append(c.want, "\n  - target: "+path, "\n  - stages: ") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error %q does not say %q", err, want)
				}
			}
			// And New refuses to start.
			store := lake.NewMem()
			if _, err := curate.New(context.Background(), cfg, store, nil, nil); !errors.Is(err, curate.ErrTargetFile) {
				t.Fatalf("New: %v; want ErrTargetFile", err)
			}
			if _, ok, _ := curate.ReadTargetInfo(context.Background(), store); ok {
				t.Fatal("a refused start recorded a target")
			}
		})
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "absent.jsonl"), t.TempDir()} {
		if _, err := curate.ReadTargetFile(path); !errors.Is(err, curate.ErrTargetFile) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v; want ErrTargetFile naming it", path, err)
		}
	}
}

// TestTargetFileGood: real texts read back exactly from JSON Lines, plain
// text and gzip files, with the format's leniencies (blank lines, CRLF, a
// byte order mark, members besides "text").
func TestTargetFileGood(t *testing.T) {
	dir := t.TempDir()
	// A task's whole train file, as the benchmark gives it: JSON Lines, .gz.
	trainPath := realtest.Data(t, "tasks/bible_genre/train.jsonl.gz")
	lines := realtest.Lines(t, trainPath, 0)
	texts, err := curate.ReadTargetFile(trainPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != len(lines) {
		t.Fatalf("%d texts from %d lines", len(texts), len(lines))
	}
	for i, l := range lines {
		if want := textOf(t, l); texts[i] != want {
			t.Fatalf("text %d: %q, want %q", i, texts[i], want)
		}
	}

	// JSON Lines with blank lines, CRLF ends and texts holding newlines.
	var want []string
	var b bytes.Buffer
	b.WriteString("\n")
	for _, l := range taskLines(t, "debian_section", 50) {
		want = append(want, textOf(t, l))
		b.Write(l)
		b.WriteString("\r\n\n")
	}
	if !slices.ContainsFunc(want, func(s string) bool { return strings.Contains(s, "\n") }) {
		t.Fatal("want a text with a newline among the debian descriptions")
	}
	check := func(name string, data []byte, want []string) {
		t.Helper()
		got, err := curate.ReadTargetFile(writeFile(t, dir, name, data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d texts %q..., want %d %q...", name, len(got), got[:min(2, len(got))], len(want), want[:2])
		}
	}
	check("debian.jsonl", b.Bytes(), want)
	check("debian.jsonl.gz", gzipped(t, b.Bytes()), want)

	// Plain text: a byte order mark, padding and blank lines trimmed away.
	plain := oneLineTexts(t, "fortune_cat", 30)
	b.Reset()
	b.WriteString("\ufeff")
	for _, s := range plain {
		b.WriteString("  " + s + " \r\n\n")
	}
	check("fortunes.txt", b.Bytes(), plain)
	check("fortunes.txt.gz", gzipped(t, b.Bytes()), plain)
	// Exactly the minimum; a plain line that happens to start with "{".
	few := append([]string{"{not json, just braces}"}, plain[:curate.MinTargetTexts-1]...)
	check("ten.txt", []byte(strings.Join(few, "\n")), few)
}

// recordingStore records the keys written, in order.
type recordingStore struct {
	lake.Store
	mu   sync.Mutex
	keys []string
}

func (s *recordingStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.Store.Put(ctx, key, data)
}

func (s *recordingStore) Replace(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.Store.Replace(ctx, key, data)
}

// TestTargetInfo: a fresh curate with a target file records it in
// _curate/target.json before its first window commits, reading the file
// once; a resume keeps the record whatever the target given; a lake curated
// without a target has none, even after a start with one that committed no
// window.
func TestTargetInfo(t *testing.T) {
	ctx := context.Background()
	corpus := realtest.CorpusLines(t, 3000)
	srcPath := realtest.Data(t, "tasks/fortune_cat/train.jsonl.gz")
	src, err := os.ReadFile(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	targetPath := writeFile(t, t.TempDir(), "fortunes.jsonl.gz", src)
	nTexts := len(realtest.Lines(t, srcPath, 0))

	dir := t.TempDir()
	base, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, base, corpus, 2, 1000)
	store := &recordingStore{Store: base}
	cfg := testConfig(dir, 1000)
	cfg.Target = targetPath
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// The stage fits the texts Validate read: the file is not read again.
	if err := os.Remove(targetPath); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if err := runStage(t, cfg, store); err != nil {
		t.Fatal(err)
	}
	info, ok, err := curate.ReadTargetInfo(ctx, base)
	if err != nil || !ok {
		t.Fatalf("ReadTargetInfo: ok %v, err %v", ok, err)
	}
	if info.File != "fortunes.jsonl.gz" || info.Texts != nTexts || info.SHA256 != hex.EncodeToString(sum[:]) ||
		info.FittedAt.Before(before) || info.FittedAt.After(time.Now()) || info.FittedAt.Location() != time.UTC {
		t.Fatalf("target info %+v; want fortunes.jsonl.gz, %d texts, sha256 %x, fitted after %v", info, nTexts, sum, before)
	}
	marker, firstState := slices.Index(store.keys, "_curate/target.json"), slices.IndexFunc(store.keys, func(k string) bool {
		return strings.HasPrefix(k, "_curate/state/")
	})
	if marker < 0 || firstState < 0 || marker > firstState {
		t.Fatalf("target record written at %d, first state at %d: %v", marker, firstState, store.keys)
	}
	raw, err := base.Get(ctx, "_curate/target.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"version":1`, `"file":"fortunes.jsonl.gz"`, `"fitted_at":"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("_curate/target.json %s does not hold %s", raw, want)
		}
	}

	// A resume, even with another target file (or none), keeps the record.
	other := writeFile(t, t.TempDir(), "other.txt", []byte(strings.Join(oneLineTexts(t, "bible_genre", 20), "\n")))
	for _, target := range []string{other, ""} {
		cfg.Target = target
		if err := runStage(t, cfg, base); err != nil {
			t.Fatal(err)
		}
		if again, ok, err := curate.ReadTargetInfo(ctx, base); err != nil || !ok || again != info {
			t.Fatalf("after a resume with target %q: %+v, %v, %v; want %+v", target, again, ok, err, info)
		}
	}

	// A lake curated without a target has no record; a start with one that
	// committed no window (an empty lake) leaves one, which a fresh start
	// without a target removes.
	empty := lake.NewMem()
	cfg = testConfig(t.TempDir(), 1000)
	cfg.Target = other
	if err := runStage(t, cfg, empty); err != nil {
		t.Fatal(err)
	}
	if info, ok, err := curate.ReadTargetInfo(ctx, empty); err != nil || !ok || info.File != "other.txt" || info.Texts != 20 {
		t.Fatalf("fresh start with a target on an empty lake: %+v, %v, %v", info, ok, err)
	}
	cfg.Target = ""
	writeRaw(t, empty, corpus[:500], 1, 500)
	if err := runStage(t, cfg, empty); err != nil {
		t.Fatal(err)
	}
	if info, ok, err := curate.ReadTargetInfo(ctx, empty); err != nil || ok {
		t.Fatalf("curated without a target: %+v, %v, %v; want none", info, ok, err)
	}

	// A record of a version this build does not know is an error.
	if err := empty.Put(ctx, "_curate/target.json", []byte(`{"version":2,"file":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := curate.ReadTargetInfo(ctx, empty); err == nil || ok || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version 2: ok %v, err %v", ok, err)
	}
}

// FuzzReadTargetFile: any bytes give texts or an ErrTargetFile, the same
// read plain or gzipped; texts are non-blank UTF-8, at least
// MinTargetTexts of them.
func FuzzReadTargetFile(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"))
	f.Add([]byte(strings.Repeat(`{"text":"x y"}`+"\n", 10)))
	f.Add([]byte(strings.Repeat(`{"text":"x y"}`+"\n", 9) + "plain\n"))
	f.Add([]byte(strings.Repeat(`{"text":1}`+"\r\n", 12)))
	f.Add([]byte("\ufeff" + strings.Repeat("\xff\n", 12)))
	f.Add([]byte(strings.Repeat("{\n", 11)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		plain := writeFile(t, dir, "t.txt", data)
		texts, err := curate.ReadTargetFile(plain)
		gz := writeFile(t, dir, "t.txt.gz", gzipped(t, data))
		texts2, err2 := curate.ReadTargetFile(gz)
		if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			// Gzip data in a file not named .gz: an error, unlike its gzip.
			texts, err = texts2, err2
		}
		if (err == nil) != (err2 == nil) || !slices.Equal(texts, texts2) ||
			(err != nil && strings.ReplaceAll(err2.Error(), gz, plain) != err.Error()) {
			t.Fatalf("plain: %q %v\ngzip: %q %v", texts, err, texts2, err2)
		}
		if err != nil {
			if !errors.Is(err, curate.ErrTargetFile) {
				t.Fatalf("error %v is not ErrTargetFile", err)
			}
			return
		}
		if len(texts) < curate.MinTargetTexts {
			t.Fatalf("%d texts", len(texts))
		}
		for _, s := range texts {
			if strings.TrimSpace(s) == "" || !utf8.ValidString(s) {
				t.Fatalf("text %q", s)
			}
		}
	})
}
