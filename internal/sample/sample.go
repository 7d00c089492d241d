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
// Regenerate with "go generate" in this directory (see gen/), then update
// Records. The package's tests check Records and the counts in
// DATA_LICENSES.md against the data.
//
// Everything here is read-only and safe for concurrent use.
package sample

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
)

//go:generate go run ./gen -corpus ../../../shared/data/corpus/stream.jsonl.gz -out .

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
