package lake

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// files returns every file under root, as slash paths relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDirPutCommitsAtomically stops a Put right before it publishes: the
// data is on disk under a temporary name that starts with ".tmp-" and does
// not end in ".parquet", so no reader globbing *.parquet and no List sees it.
func TestDirPutCommitsAtomically(t *testing.T) {
	ctx := context.Background()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := SegmentKey("raw", "records", 2, Range{0, 99})
	injected := errors.New("injected write failure")
	var sawTmp string
	d.beforePublish = func(tmp string) error {
		sawTmp = tmp
		base := filepath.Base(tmp)
		if !strings.HasPrefix(base, ".tmp-") || strings.HasSuffix(base, ".parquet") {
			t.Errorf("temporary name %q: want .tmp-* not ending in .parquet", base)
		}
		if data, err := os.ReadFile(tmp); err != nil || string(data) != "segment" {
			t.Errorf("temporary file holds %q, %v; want the whole data", data, err)
		}
		for _, f := range files(t, d.Root()) {
			if strings.HasSuffix(f, ".parquet") {
				t.Errorf("%s visible before the commit", f)
			}
		}
		if objs, err := d.List(ctx, ""); err != nil || len(objs) != 0 {
			t.Errorf("List before the commit = %v, %v; want nothing", objs, err)
		}
		return injected
	}
	if err := d.Put(ctx, key, []byte("segment")); !errors.Is(err, injected) {
		t.Fatalf("Put = %v, want the injected failure", err)
	}
	if sawTmp == "" {
		t.Fatal("beforePublish never ran")
	}
	if got := files(t, d.Root()); len(got) != 0 {
		t.Errorf("failed Put left %v", got)
	}
	if _, err := d.Get(ctx, key); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get after a failed Put: %v, want ErrNotExist", err)
	}
	// A retry of the same Put (what a resumed ingest does) succeeds.
	d.beforePublish = nil
	if err := d.Put(ctx, key, []byte("segment")); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, d.Root()), []string{key}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("files after Put = %v, want %v", got, want)
	}
}

// TestOpenDirRemovesStaleTemps plays a crash: temporary files left in
// partition folders. OpenDir removes the stale ones and keeps a fresh one (a
// Put running in another process); List never shows any.
func TestOpenDirRemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	keep := SegmentKey("raw", "records", 0, Range{0, 9})
	if err := d.Put(ctx, keep, []byte("committed")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "raw", "topic=records", "partition=0")
	old := time.Now().Add(-time.Hour)
	stale := []string{
		filepath.Join(dir, ".tmp-1a2b-00000000000000000010-00000000000000000019.parquet.partial"),
		filepath.Join(root, ".tmp-probe.partial"),
		filepath.Join(root, "checkpoints", ".tmp-9-CURRENT.partial"),
	}
	fresh := filepath.Join(dir, ".tmp-3c4d-00000000000000000020-00000000000000000029.parquet.partial")
	for _, p := range append(stale, fresh) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half a segm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range stale {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := d.List(ctx, "")
	if err != nil || len(objs) != 1 || objs[0].Key != keep {
		t.Errorf("List = %v, %v; want only %s", objs, err, keep)
	}
	if _, err := OpenDir(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s survived OpenDir: %v", p, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
	if got, err := d.Get(ctx, keep); err != nil || string(got) != "committed" {
		t.Errorf("committed segment: %q, %v", got, err)
	}
}

func TestOpenDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "lake")
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.Root() != root {
		t.Errorf("Root = %q, want %q", d.Root(), root)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Errorf("OpenDir did not create %s: %v", root, err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("OpenDir left %v", got)
	}
	// A relative root becomes absolute.
	t.Chdir(t.TempDir())
	d, err = OpenDir("rel")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(d.Root()) {
		t.Errorf("Root = %q, want an absolute path", d.Root())
	}
}

func TestOpenDirNotWritable(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root string
		wantIn     string
		skip       string
	}{
		{name: "parent is a file", root: filepath.Join(file, "lake"), wantIn: "not a directory"},
		{name: "root is a file", root: file, wantIn: "not a directory"},
		{name: "empty path", root: "", wantIn: "empty path"},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct{ name, root, wantIn, skip string }{
			name: "read-only", skip: "running as root, which ignores permissions; the file cases cover ErrNotWritable",
		})
	} else {
		ro := filepath.Join(tmp, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ro, 0o700) })
		tests = append(tests,
			struct{ name, root, wantIn, skip string }{name: "read-only", root: ro, wantIn: "permission denied"},
			struct{ name, root, wantIn, skip string }{name: "under read-only", root: filepath.Join(ro, "lake"), wantIn: "permission denied"},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			_, err := OpenDir(tt.root)
			if !errors.Is(err, ErrNotWritable) {
				t.Fatalf("OpenDir(%q) = %v, want ErrNotWritable", tt.root, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "lake: ") || !strings.Contains(msg, tt.wantIn) || tt.root != "" && !strings.Contains(msg, tt.root) {
				t.Errorf("error %q: want it to name %q and say %q", msg, tt.root, tt.wantIn)
			}
			t.Log(msg)
		})
	}
}

func TestDirPutUnderFile(t *testing.T) {
	ctx := context.Background()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A key under a file is a conflict of the filesystem layout, not ErrExist.
	err = d.Put(ctx, "a/b", []byte("y"))
	if err == nil || errors.Is(err, ErrExist) {
		t.Errorf("Put under a file = %v, want a filesystem error", err)
	}
	if _, err := d.Get(ctx, "a/b"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get under a file = %v, want ErrNotExist", err)
	}
	if err := d.Delete(ctx, "a/b"); err != nil {
		t.Errorf("Delete under a file = %v, want nil", err)
	}
	if got := files(t, d.Root()); len(got) != 1 {
		t.Errorf("files = %v, want only a", got)
	}
}
