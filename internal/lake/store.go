package lake

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors of the Store contract. Implementations wrap them, so test with errors.Is.
var (
	// ErrExist is returned by Put when an object already has the key.
	ErrExist = errors.New("lake: object already exists")
	// ErrNotExist is returned by Get when no object has the key.
	ErrNotExist = errors.New("lake: object does not exist")
	// ErrNotWritable is returned by OpenDir when the lake folder cannot be
	// created or written to.
	ErrNotWritable = errors.New("lake: folder is not writable")
	// ErrInvalidKey is returned for a key or prefix that is not a clean
	// slash-separated relative path, or that names a temporary object.
	ErrInvalidKey = errors.New("lake: invalid key")
)

// Object describes one stored object.
type Object struct {
	Key  string
	Size int64
}

// Store is how the lake reaches storage. Keys are slash-separated relative
// paths like
// "raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet".
// Implementations must be safe for concurrent use. An S3-compatible store must
// be able to implement it later (conditional put), so nothing may rely on
// append or directory rename.
type Store interface {
	// Put stores data under key only if no object has that key, atomically
	// (readers see all of it or nothing); it returns an error wrapping
	// ErrExist otherwise.
	Put(ctx context.Context, key string, data []byte) error
	// Replace atomically sets a small pointer object (like
	// checkpoints/CURRENT) whole.
	Replace(ctx context.Context, key string, data []byte) error
	// Get returns the object's bytes, or an error wrapping ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every committed object whose key starts with prefix,
	// sorted by key; never temporary files. The prefix may end mid-name.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object; it returns nil if it is already gone.
	Delete(ctx context.Context, key string) error
}

// tmpPrefix starts the name of every temporary file a Store writes. No key
// element may start with it, List never shows such names and OpenDir removes
// stale ones.
const tmpPrefix = ".tmp-"

// maxKeyLen bounds a key. Kafka topic names (249 bytes) fit with room to
// spare; most filesystems cap a path element at 255 bytes.
const maxKeyLen = 1024

// CheckKey reports whether key is a valid object key: a non-empty relative
// path of slash-separated elements, none of them empty, "." or "..", none
// starting with ".tmp-", without NUL or backslash bytes.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	return checkPath(key, false)
}

// checkPrefix is CheckKey for List prefixes: the empty prefix lists everything,
// and a prefix may end with "/" or mid-element.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(prefix, true)
}

func checkPath(p string, prefix bool) error {
	if len(p) > maxKeyLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidKey, len(p), maxKeyLen)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w %q: starts with /", ErrInvalidKey, p)
	}
	if strings.ContainsAny(p, "\x00\\") {
		return fmt.Errorf("%w %q: contains NUL or backslash", ErrInvalidKey, p)
	}
	elems := strings.Split(p, "/")
	for i, e := range elems {
		last := i == len(elems)-1
		if prefix && last {
			// "raw/" ends with an empty element and "raw/.t" could still
			// grow into a valid name: only a whole element is checked.
			if strings.HasPrefix(e, tmpPrefix) {
				return fmt.Errorf("%w %q: element %q is reserved for temporary files", ErrInvalidKey, p, e)
			}
			continue
		}
		switch {
		case e == "":
			return fmt.Errorf("%w %q: empty element", ErrInvalidKey, p)
		case e == "." || e == "..":
			return fmt.Errorf("%w %q: element %q", ErrInvalidKey, p, e)
		case strings.HasPrefix(e, tmpPrefix):
			return fmt.Errorf("%w %q: element %q is reserved for temporary files", ErrInvalidKey, p, e)
		}
	}
	return nil
}
