package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is a Store on the local filesystem rooted at a folder. It keeps no state
// besides its root and is safe for concurrent use, also by several processes
// sharing one folder.
//
// Put writes a temporary file named ".tmp-<random>-<name>.partial" in the
// destination folder, fsyncs it, publishes it with a hard link (which fails if
// the final name exists: that makes put-if-absent atomic), removes the
// temporary name and fsyncs the folder. Replace does the same with a rename,
// which overwrites. Folders are created as needed and their parents fsynced.
// So a crash leaves at worst a temporary file, which no reader globbing
// *.parquet and no List ever sees, and which a later OpenDir removes.
type Dir struct {
	root string

	// beforePublish, when set (by tests), runs after the temporary file is
	// written and synced and before it is published; an error aborts the Put
	// or Replace as a failed write would.
	beforePublish func(tmp string) error
}

var _ Store = (*Dir)(nil)

// staleTemp is how old a temporary file must be before OpenDir removes it.
// Other processes (ingest, curate, train) write to the same lake while one of
// them opens it; their in-flight temporary files are seconds old.
const staleTemp = 10 * time.Minute

// OpenDir opens the lake folder root, creating it and its parents if needed,
// and checks that it is a writable directory by creating and removing a probe
// file. Failures wrap ErrNotWritable and read like
// "lake: /x/y is not writable: permission denied".
//
// It removes temporary files left by a crash anywhere under root, once they
// are more than 10 minutes old: a younger one may belong to a Put running in
// another process, and it is invisible to readers anyway.
func OpenDir(root string) (*Dir, error) {
	if root == "" {
		return nil, &notWritableError{path: `""`, reason: "empty path", err: errors.New("empty path")}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, &notWritableError{path: root, reason: reasonOf(err), err: err}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, &notWritableError{path: abs, reason: reasonAt(abs, err), err: err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &notWritableError{path: abs, reason: reasonOf(err), err: err}
	}
	if !fi.IsDir() {
		return nil, &notWritableError{path: abs, reason: "not a directory", err: syscall.ENOTDIR}
	}
	probe, err := createTemp(abs, "probe")
	if err != nil {
		return nil, &notWritableError{path: abs, reason: reasonOf(err), err: err}
	}
	name := probe.Name()
	werr := probe.Close()
	if rerr := os.Remove(name); werr == nil {
		werr = rerr
	}
	if werr != nil {
		return nil, &notWritableError{path: abs, reason: reasonOf(werr), err: werr}
	}
	d := &Dir{root: abs}
	if _, err := d.removeTemps(time.Now().Add(-staleTemp)); err != nil {
		return nil, err
	}
	return d, nil
}

// Root returns the absolute path of the lake folder.
func (d *Dir) Root() string { return d.root }

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, data []byte) error {
	return d.publish(ctx, key, data, false)
}

// Replace implements Store.
func (d *Dir) Replace(ctx context.Context, key string, data []byte) error {
	return d.publish(ctx, key, data, true)
}

func (d *Dir) publish(ctx context.Context, key string, data []byte, replace bool) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	op := "put"
	if replace {
		op = "replace"
	}
	final := d.path(key)
	dir := filepath.Dir(final)
	if err := d.ensureDir(dir); err != nil {
		return fmt.Errorf("lake: %s %s: %w", op, key, err)
	}
	tmp, err := writeTemp(dir, filepath.Base(final), data)
	if err != nil {
		return fmt.Errorf("lake: %s %s: %w", op, key, err)
	}
	if d.beforePublish != nil {
		if err := d.beforePublish(tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("lake: %s %s: %w", op, key, err)
		}
	}
	if replace {
		if err = os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
		}
	} else {
		// link(2) fails if final exists, whoever created it: that is the
		// put-if-absent. The temporary name goes either way.
		err = os.Link(tmp, final)
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExist, key)
		}
	}
	if err != nil {
		return fmt.Errorf("lake: %s %s: %w", op, key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("lake: %s %s: %w", op, key, err)
	}
	return nil
}

// Get implements Store.
func (d *Dir) Get(ctx context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(d.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, key)
		}
		return nil, fmt.Errorf("lake: get %s: %w", key, err)
	}
	return data, nil
}

// List implements Store.
func (d *Dir) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Walk only the deepest folder the prefix names in full.
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = d.path(prefix[:i])
	}
	var objs []Object
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			if !e.IsDir() {
				return fs.SkipAll
			}
			return nil
		}
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		key := d.key(p)
		if e.IsDir() {
			// Descend only where keys can still start with prefix.
			if k := key + "/"; strings.HasPrefix(k, prefix) || strings.HasPrefix(prefix, k) {
				return nil
			}
			return fs.SkipDir
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // deleted meanwhile
				return nil
			}
			return err
		}
		objs = append(objs, Object{Key: key, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lake: list %q: %w", prefix, err)
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// Delete implements Store. Folders are left in place: a concurrent Put may be
// about to write into them.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := d.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("lake: delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a folder is not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lake: delete %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("lake: delete %s: %w", key, err)
	}
	return nil
}

// removeTemps removes every temporary file under the root last modified
// before cutoff and returns how many it removed.
func (d *Dir) removeTemps(cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("lake: removing temporary files under %s: %w", d.root, err)
	}
	return n, nil
}

func (d *Dir) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

func (d *Dir) key(path string) string {
	return filepath.ToSlash(strings.TrimPrefix(path, d.root+string(filepath.Separator)))
}

// ensureDir creates dir and any missing parents up to the root, fsyncing the
// parent of each folder it creates (or finds just created by a concurrent
// call, which may not have synced it yet).
func (d *Dir) ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir == d.root {
		return fmt.Errorf("lake folder %s vanished: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := d.ensureDir(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// writeTemp writes data to a new temporary file in dir, named after base,
// syncs and closes it, and returns its path.
func writeTemp(dir, base string, data []byte) (string, error) {
	f, err := createTemp(dir, base)
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// createTemp creates a file ".tmp-<random>-<base>.partial" in dir: it starts
// with tmpPrefix and never ends in ".parquet", whatever base is.
func createTemp(dir, base string) (*os.File, error) {
	if len(base) > 64 {
		base = base[:64]
	}
	for range 100 {
		name := filepath.Join(dir, tmpPrefix+strconv.FormatUint(rand.Uint64(), 36)+"-"+base+".partial")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many collisions", dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// notWritableError says which lake folder is unusable and why.
type notWritableError struct {
	path, reason string
	err          error
}

func (e *notWritableError) Error() string {
	return "lake: " + e.path + " is not writable: " + e.reason
}

func (e *notWritableError) Unwrap() []error { return []error{ErrNotWritable, e.err} }

// reasonOf returns the bare cause of a filesystem error ("permission
// denied"), without the operation and path that the message already names.
func reasonOf(err error) string {
	return reasonAt("", err)
}

// reasonAt is reasonOf, naming the path the error is about when it is not
// path itself (a parent that is a file, say).
func reasonAt(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if path != "" && pe.Path != path {
			return pe.Path + ": " + pe.Err.Error()
		}
		return pe.Err.Error()
	}
	return err.Error()
}
