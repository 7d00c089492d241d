package curate

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thresher-ml/thresher/internal/lake"
)

// MinTargetTexts is the fewest texts a target file may hold. The target
// model is a bag of hashed n-grams over tens of thousands of buckets: fitted
// on a handful of lines it scores records by a few words, which is noise.
const MinTargetTexts = 10

// maxTargetLine bounds one line of a target file.
const maxTargetLine = 64 << 20

// ErrTargetFile is wrapped by every error about a target file: missing,
// unreadable, or not in the format ReadTargetFile describes.
var ErrTargetFile = errors.New("curate: bad target file")

// ReadTargetFile reads the texts of a target-domain sample. The format:
//
//   - UTF-8 text, one record per line (\n or \r\n); blank lines are skipped;
//     a NUL byte or invalid UTF-8 anywhere makes the file binary, an error.
//   - Compressed with gzip when the name ends in .gz (and only then).
//   - JSON Lines when any line is a JSON object: then every non-blank line
//     must be a JSON object whose "text" member is a non-empty string (other
//     members are ignored), and the texts are those strings. Otherwise each
//     line, trimmed of surrounding white space, is a text.
//   - At least MinTargetTexts texts.
//
// A file that breaks a rule is rejected with an error wrapping
// ErrTargetFile that names the file, the first offending line and, for
// JSON Lines, how many lines are bad.
func ReadTargetFile(path string) ([]string, error) {
	s := readTargetSample(path)
	return s.texts, s.err
}

// targetSample is a target file read once: by Config.Validate, which keeps
// it for the stage that fits the model.
type targetSample struct {
	path   string
	texts  []string
	sha256 string // of the file's bytes, as stored (compressed if .gz)
	err    error
}

func readTargetSample(path string) *targetSample {
	s := &targetSample{path: path}
	texts, sum, err := readTarget(path)
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrTargetFile, err)
		return s
	}
	s.texts, s.sha256 = texts, sum
	return s
}

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

func readTarget(path string) (texts []string, sha string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, "", fmt.Errorf("%s is a folder, want a file", path)
	}
	h := sha256.New()
	raw := bufio.NewReaderSize(io.TeeReader(f, h), 64<<10)
	var r io.Reader = raw
	head, _ := raw.Peek(2)
	isGzip := bytes.Equal(head, gzipMagic)
	switch gz := strings.HasSuffix(path, ".gz"); {
	case gz && !isGzip:
		return nil, "", fmt.Errorf("%s: not gzip data, though the name ends in .gz", path)
	case gz:
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, "", fmt.Errorf("%s: not gzip data: %w", path, err)
		}
		defer zr.Close()
		r = zr
	case isGzip:
		return nil, "", fmt.Errorf("%s: gzip data, but the name does not end in .gz: rename it", path)
	}
	texts, err = parseTarget(r, path)
	if err != nil {
		return nil, "", err
	}
	// gzip stops at the end of its streams: hash whatever follows too.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return texts, hex.EncodeToString(h.Sum(nil)), nil
}

// Problems of one line of a JSON Lines target file.
const (
	lineOK = iota
	lineNotJSON
	lineNoText
	lineNullText
	lineNotString
	lineEmptyText
)

var lineProblem = [...]string{
	lineNotJSON:   "not a JSON object, in a file of JSON lines",
	lineNoText:    `JSON object without a "text" member`,
	lineNullText:  `"text" is null`,
	lineNotString: `"text" is not a string`,
	lineEmptyText: `"text" is empty`,
}

// parseTarget reads the texts of an uncompressed target file (see
// ReadTargetFile); name labels the errors.
func parseTarget(r io.Reader, name string) ([]string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// A binary file may hold no newline for megabytes: look at its head
	// before scanning lines.
	if head, _ := br.Peek(8 << 10); bytes.IndexByte(head, 0) >= 0 {
		i := bytes.IndexByte(head, 0)
		return nil, fmt.Errorf("%s line %d: binary data (a NUL byte), want UTF-8 text", name, bytes.Count(head[:i], []byte("\n"))+1)
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), maxTargetLine)
	var (
		texts    []string // a JSON line's text, or the trimmed line
		lines    int      // every line, blank included
		nonBlank int
		objects  int // lines that are JSON objects
		bad      int // lines that are not JSON records with a text
		first    int // the first of them
		why      int // and its problem
	)
	for sc.Scan() {
		lines++
		b := sc.Bytes()
		if lines == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff")) // a byte order mark
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil, fmt.Errorf("%s line %d: binary data (a NUL byte), want UTF-8 text", name, lines)
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%s line %d: binary data (invalid UTF-8), want UTF-8 text", name, lines)
		}
		line := strings.TrimSpace(string(b))
		if line == "" {
			continue
		}
		nonBlank++
		text, kind := jsonLineText(line)
		if kind != lineNotJSON {
			objects++
		}
		if kind == lineOK {
			texts = append(texts, text)
			continue
		}
		if bad == 0 {
			first, why = lines, kind
		}
		bad++
		texts = append(texts, line)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s line %d: longer than %d MiB", name, lines+1, maxTargetLine>>20)
		}
		return nil, fmt.Errorf("%s: reading after line %d: %w", name, lines, err)
	}
	switch {
	case lines == 0:
		return nil, fmt.Errorf("%s: empty file, want at least %d texts", name, MinTargetTexts)
	case nonBlank == 0:
		return nil, fmt.Errorf("%s: only blank lines (%d), want at least %d texts", name, lines, MinTargetTexts)
	case objects > 0 && bad > 0:
		// JSON Lines (some lines are JSON objects), with bad lines.
		return nil, fmt.Errorf(`%s line %d: %s; %d of %d lines are bad, %d are JSON objects `+
			`(want one JSON object a line with a non-empty string "text", or plain text lines)`,
			name, first, lineProblem[why], bad, nonBlank, objects)
	case len(texts) < MinTargetTexts:
		return nil, fmt.Errorf("%s: %d texts, want at least %d (a target model fitted on fewer is noise)", name, len(texts), MinTargetTexts)
	}
	return texts, nil
}

// jsonLineText returns the text of a JSON Lines record, or why the line is
// not one. Member names match exactly, as ingest matches them.
func jsonLineText(line string) (string, int) {
	if line[0] != '{' {
		return "", lineNotJSON
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		return "", lineNotJSON
	}
	raw, ok := obj["text"]
	switch {
	case !ok:
		return "", lineNoText
	case string(raw) == "null":
		return "", lineNullText
	case raw[0] != '"':
		return "", lineNotString
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", lineNotString
	}
	if strings.TrimSpace(text) == "" {
		return "", lineEmptyText
	}
	return text, lineOK
}

// targetKey is the object that records the target sample a lake's curate
// fitted its model on.
const targetKey = "_curate/target.json"

// targetInfoVersion is the version of the _curate/target.json format.
const targetInfoVersion = 1

// TargetInfo describes the target sample curate fitted its target model on
// (the object _curate/target.json).
type TargetInfo struct {
	File     string    `json:"file"`      // base name of the target file
	Texts    int       `json:"texts"`     // texts read from it
	SHA256   string    `json:"sha256"`    // hex SHA-256 of the file's bytes, as stored
	FittedAt time.Time `json:"fitted_at"` // RFC 3339, UTC
}

// targetObject is the stored form of TargetInfo.
type targetObject struct {
	Version int `json:"version"`
	TargetInfo
}

// ReadTargetInfo reads the target sample the curate stage of a lake fitted
// its model on; ok is false when it never fitted one (it scores records by
// the stream's own typicality instead).
func ReadTargetInfo(ctx context.Context, store lake.Store) (info TargetInfo, ok bool, err error) {
	data, err := store.Get(ctx, targetKey)
	if errors.Is(err, lake.ErrNotExist) {
		return TargetInfo{}, false, nil
	}
	if err != nil {
		return TargetInfo{}, false, err
	}
	var obj targetObject
	if err := json.Unmarshal(data, &obj); err != nil {
		return TargetInfo{}, false, fmt.Errorf("curate: %s: %w", targetKey, err)
	}
	if obj.Version != targetInfoVersion {
		return TargetInfo{}, false, fmt.Errorf("curate: %s: version %d, this build reads version %d", targetKey, obj.Version, targetInfoVersion)
	}
	return obj.TargetInfo, true, nil
}

// writeTargetInfo records the target sample the model was just fitted on,
// replacing the record of an earlier start that committed no window.
func writeTargetInfo(ctx context.Context, store lake.Store, s *targetSample, at time.Time) (TargetInfo, error) {
	info := TargetInfo{File: filepath.Base(s.path), Texts: len(s.texts), SHA256: s.sha256, FittedAt: at.UTC().Truncate(time.Second)}
	data, err := json.Marshal(targetObject{Version: targetInfoVersion, TargetInfo: info})
	if err != nil {
		return TargetInfo{}, err
	}
	if err := store.Replace(ctx, targetKey, append(data, '\n')); err != nil {
		return TargetInfo{}, fmt.Errorf("curate: writing %s: %w", targetKey, err)
	}
	return info, nil
}
