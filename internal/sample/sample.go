// Package sample bundles a small real sample of the stream in the binary, so
// that "thresher demo" works from any folder with no data beside it.
//
// The sample is Records JSON Lines records ({"id", "source", "domain",
// "lang", "text"}), taken in stream order and byte for byte from the
// project's real stream, from permissive and public-domain sources only
// (WordNet, the WEB and KJV Bibles, fortunes, Austen, Moby-Dick, State of the
// Union addresses, the Jargon File, The Devil's Dictionary), with the natural
// exact duplicates that fell in. DATA_LICENSES.md, beside this file, gives
// each source's record count and licence; anything that redistributes the
// sample must carry it (WordNet's licence asks for its notice on all copies).
//
// It also bundles a small labeled task, TaskName: a per-class subsample of
// the real wordnet_lexname task (WordNet noun glosses labelled with their
// lexicographer file; 25 classes, up to 40 train, 12 dev and 40 test
// examples each) in the real tasks' format, {train,dev,test}.jsonl.gz and
// meta.json. Task gives its files; WriteTask writes them to a folder that
// eval.LoadTask reads. None of its texts is in the sample.
//
// Regenerate both with "go generate" in this directory (see gen/), then
// update Records. The package's tests check Records, the counts in
// DATA_LICENSES.md and the task's meta.json against the data.
//
// Everything here is read-only and safe for concurrent use.
package sample

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

//go:generate go run ./gen -corpus ../../../shared/data/corpus/stream.jsonl.gz -tasks ../../../shared/data/tasks -out .

// Records is the exact number of records (lines) in the sample.
const Records = 20000

//go:embed sample.jsonl.gz
var gzipped []byte

// Licenses is DATA_LICENSES.md: the sources, their counts and licences.
//
//go:embed DATA_LICENSES.md
var Licenses string

// Open returns the sample as decompressed JSON Lines, one record a line.
func Open() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(gzipped))
}

// Gzipped returns the sample gzip-compressed, as embedded (about 2.3 MB).
// The slice is shared: callers must not modify it.
func Gzipped() []byte { return gzipped }

// TaskName is the name of the bundled labeled task, and of the folder
// WriteTask writes.
const TaskName = "wordnet_lexname"

// TaskFiles are the files of the bundled task.
var TaskFiles = []string{"train.jsonl.gz", "dev.jsonl.gz", "test.jsonl.gz", "meta.json"}

//go:embed task/wordnet_lexname
var taskFS embed.FS

// Task returns the bundled task's files (TaskFiles) as a read-only file
// system.
func Task() fs.FS {
	sub, err := fs.Sub(taskFS, "task/"+TaskName)
	if err != nil {
		panic(err) // the embedded path is fixed at build time
	}
	return sub
}

// WriteTask writes the bundled task's files into dir/TaskName (created,
// files replaced) and returns that folder, for eval.LoadTask.
func WriteTask(dir string) (string, error) {
	dst := filepath.Join(dir, TaskName)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", fmt.Errorf("sample: %w", err)
	}
	src := Task()
	for _, name := range TaskFiles {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return "", fmt.Errorf("sample: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return "", fmt.Errorf("sample: %w", err)
		}
	}
	return dst, nil
}
