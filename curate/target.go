package curate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"math"
	"math/bits"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Target scores how much a record looks like a target domain, in the
// manner of DSIR (Xie et al. 2023, "Data Selection for Language Models via
// Importance Resampling"): records are bags of hashed features, and the
// score is the log importance weight of the record's features under two
// bag-of-features models.
//
// Features are the hashed word unigrams and bigrams of the text (word keys
// as Metrics defines them; see AppendFeatures), each hashed into one of B
// buckets. Two count vectors over the buckets are kept:
//
//   - the target counts, from the target sample given to FitTarget (the
//     curate stage's --target FILE);
//   - the raw counts, from every record given to Observe: the stream seen
//     so far.
//
// With add-one (Laplace) smoothing, p(b) = (count(b)+1) / (total+B). A
// feature's log importance weight is w(b) = ln p_target(b) - ln p_raw(b),
// and a record's similarity is the mean of w over its features (the DSIR
// log-weight normalised by the number of features, so that long and short
// records compare), in nats. Positive means the record's n-grams are more
// frequent in the target than in the stream so far, negative less; 0 for a
// record without words.
//
// Without a target sample (FitTarget never called), the stream itself is
// the target and the uniform distribution over buckets the background:
// w(b) = ln p_raw(b) + ln B. The similarity is then the record's typicality:
// high for records made of the stream's common n-grams, low for unusual
// ones.
//
// The curate stage calls Similarity, then Observe, for each record in
// stream order, and commits the state (MarshalBinary) with the output it
// scored, so that a restart resumes with the same raw counts.
//
// A Target is not safe for concurrent use.
type Target struct {
	logB   uint8
	raw    []uint64
	rawN   uint64
	tgt    []uint64 // nil without a target sample
	tgtN   uint64
	tgtLog []float32 // ln p_target(b), rebuilt when stale
	stale  bool
	feats  []uint64
	// featsOf is the text feats were computed from, so that Observe after
	// Similarity of the same text does not tokenise it again.
	featsOf string
	featsOK bool
}

// Bucket counts of NewTarget.
const (
	DefaultTargetBuckets = 1 << 16
	MinTargetBuckets     = 1 << 4
	MaxTargetBuckets     = 1 << 24
)

// NewTarget returns a Target with the given number of feature buckets,
// rounded up to a power of two and clamped to [MinTargetBuckets,
// MaxTargetBuckets]; 0 means DefaultTargetBuckets. Memory is 8 bytes per
// bucket, 20 once a target is fitted.
func NewTarget(buckets int) *Target {
	if buckets == 0 {
		buckets = DefaultTargetBuckets
	}
	buckets = min(max(buckets, MinTargetBuckets), MaxTargetBuckets)
	logB := bits.Len(uint(buckets - 1))
	return &Target{logB: uint8(logB), raw: make([]uint64, 1<<logB)}
}

// Buckets returns the number of feature buckets.
func (t *Target) Buckets() int { return 1 << t.logB }

// Fitted reports whether a target sample has been fitted.
func (t *Target) Fitted() bool { return t.tgt != nil }

// Observed returns the number of features seen by Observe.
func (t *Target) Observed() uint64 { return t.rawN }

// FitTarget adds the texts of a target sample to the target counts. It
// may be called more than once; each call adds to the sample.
func (t *Target) FitTarget(texts []string) { t.FitTargetSeq(slices.Values(texts)) }

// FitTargetSeq is FitTarget for a sequence of texts, for a sample read as
// it is fitted.
func (t *Target) FitTargetSeq(texts iter.Seq[string]) {
	if t.tgt == nil {
		t.tgt = make([]uint64, len(t.raw))
	}
	for text := range texts {
		for _, f := range t.textFeatures(text) {
			t.tgt[t.bucket(f)]++
		}
		t.tgtN += uint64(len(t.feats))
		t.dropBigScratch()
	}
	t.stale = true
}

// Observe adds the features of text to the raw (stream) counts.
func (t *Target) Observe(text string) {
	t.ObserveFeatures(t.textFeatures(text))
	t.dropBigScratch()
}

// dropBigScratch lets go of the features (and the text) of an
// exceptionally long text.
func (t *Target) dropBigScratch() {
	if cap(t.feats) > 1<<17 {
		t.feats, t.featsOf, t.featsOK = nil, "", false
	}
}

// textFeatures returns the features of text, reusing those of the last
// call when it was for the same text.
func (t *Target) textFeatures(text string) []uint64 {
	if !t.featsOK || text != t.featsOf {
		t.feats = AppendFeatures(t.feats[:0], text)
		t.featsOf, t.featsOK = text, true
	}
	return t.feats
}

// ObserveFeatures is Observe for features from AppendFeatures or
// Analyzer.Features.
func (t *Target) ObserveFeatures(feats []uint64) {
	for _, f := range feats {
		t.raw[t.bucket(f)]++
	}
	t.rawN += uint64(len(feats))
	if !t.Fitted() {
		t.stale = true
	}
}

// Similarity returns the similarity of text to the target (see Target).
func (t *Target) Similarity(text string) float32 {
	sim := t.SimilarityFeatures(t.textFeatures(text))
	t.dropBigScratch()
	return sim
}

// SimilarityFeatures is Similarity for features from AppendFeatures or
// Analyzer.Features.
func (t *Target) SimilarityFeatures(feats []uint64) float32 {
	if len(feats) == 0 {
		return 0
	}
	lnB := float64(t.logB) * math.Ln2
	lnRawN := math.Log(float64(t.rawN) + float64(len(t.raw)))
	var sum float64
	if t.tgt == nil {
		for _, f := range feats {
			sum += lnCountPlus1(t.raw[t.bucket(f)])
		}
		return float32(sum/float64(len(feats)) - lnRawN + lnB)
	}
	if t.stale {
		t.rebuild()
	}
	for _, f := range feats {
		b := t.bucket(f)
		sum += float64(t.tgtLog[b]) - lnCountPlus1(t.raw[b])
	}
	return float32(sum/float64(len(feats)) + lnRawN)
}

func (t *Target) bucket(f uint64) uint64 { return (f * 0x9e3779b97f4a7c15) >> (64 - t.logB) }

// rebuild recomputes ln p_target.
func (t *Target) rebuild() {
	if t.tgtLog == nil {
		t.tgtLog = make([]float32, len(t.tgt))
	}
	lnN := math.Log(float64(t.tgtN) + float64(len(t.tgt)))
	for b, c := range t.tgt {
		t.tgtLog[b] = float32(lnCountPlus1(c) - lnN)
	}
	t.stale = false
}

var lnPlus1Table = func() (t [4096]float64) {
	for c := range t {
		t[c] = math.Log(float64(c) + 1)
	}
	return t
}()

// lnCountPlus1 returns ln(c+1).
func lnCountPlus1(c uint64) float64 {
	if c < uint64(len(lnPlus1Table)) {
		return lnPlus1Table[c]
	}
	return math.Log(float64(c) + 1)
}

// AppendFeatures appends the hashed features of text that a Target counts
// and returns dst: the hash of each word key, then the hash of each pair of
// consecutive word keys. Analyzer.Features gives the same for the text it
// last analysed.
func AppendFeatures(dst []uint64, text string) []uint64 {
	start := len(dst)
	dst = appendWordKeys(dst, text)
	n := len(dst) - start
	for i := range n - 1 {
		dst = append(dst, combineNgram(dst[start+i], dst[start+i+1]))
	}
	return dst
}

// appendWordFeatures appends the features of the words with key hashes h.
func appendWordFeatures(dst, h []uint64) []uint64 {
	dst = append(dst, h...)
	for i := range len(h) - 1 {
		dst = append(dst, combineNgram(h[i], h[i+1]))
	}
	return dst
}

// appendWordKeys appends the key hash of each word of s, tokenising as the
// Analyzer does.
func appendWordKeys(dst []uint64, s string) []uint64 {
	var w wordHasher
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		var r rune
		size := 1
		var letter, digit bool
		if c < utf8.RuneSelf {
			cl := asciiClass[c]
			if cl&clSpace != 0 {
				if inWord {
					h, _ := w.sum()
					dst = append(dst, h)
					inWord = false
				}
				i++
				continue
			}
			r = rune(c)
			if cl&clUpper != 0 {
				r += 'a' - 'A'
			}
			letter, digit = cl&clLetter != 0, cl&clDigit != 0
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				if inWord {
					h, _ := w.sum()
					dst = append(dst, h)
					inWord = false
				}
				i += size
				continue
			}
			letter = unicode.IsLetter(r)
			digit = !letter && unicode.IsDigit(r)
			if letter {
				r = unicode.ToLower(r)
			}
		}
		if !inWord {
			inWord = true
			w.reset()
		}
		w.add(r, letter || digit)
		i += size
	}
	if inWord {
		h, _ := w.sum()
		dst = append(dst, h)
	}
	return dst
}

// The binary form of a Target, version 1, all integers little-endian or
// unsigned varints (uvarint, as encoding/binary):
//
//	magic    "THTG" (4 bytes)
//	version  1 (1 byte)
//	logB     log2 of the bucket count, 4..24 (1 byte)
//	flags    bit 0: a target is fitted (1 byte; other bits 0)
//	rawN     uvarint, the sum of the raw counts
//	raw      2^logB uvarints
//	tgtN     uvarint, the sum of the target counts   (only if fitted)
//	tgt      2^logB uvarints                          (only if fitted)
//	crc      CRC-32C (Castagnoli) of everything before it (4 bytes)
const (
	targetMagic   = "THTG"
	targetVersion = 1
)

// ErrTargetState is wrapped by every error UnmarshalBinary returns.
var ErrTargetState = errors.New("curate: invalid target state")

var targetCRCTable = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the state of t (bucket count, raw counts and the
// target counts if fitted) in the versioned binary form above.
func (t *Target) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 16+len(t.raw)*2)
	b = append(b, targetMagic...)
	b = append(b, targetVersion, t.logB)
	flags := byte(0)
	if t.tgt != nil {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, t.rawN)
	for _, c := range t.raw {
		b = binary.AppendUvarint(b, c)
	}
	if t.tgt != nil {
		b = binary.AppendUvarint(b, t.tgtN)
		for _, c := range t.tgt {
			b = binary.AppendUvarint(b, c)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, targetCRCTable)), nil
}

// UnmarshalBinary replaces the state of t with the one encoded by
// MarshalBinary. On error, t is unchanged; the error wraps ErrTargetState
// and says what is wrong.
func (t *Target) UnmarshalBinary(data []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrTargetState}, args...)...)
	}
	if len(data) < len(targetMagic)+3+4 || string(data[:4]) != targetMagic {
		return bad("not a target state (no %q header)", targetMagic)
	}
	if data[4] != targetVersion {
		return bad("version %d, this build reads version %d", data[4], targetVersion)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, targetCRCTable) != sum {
		return bad("checksum mismatch (corrupt or truncated)")
	}
	logB, flags := data[5], data[6]
	if int(logB) < bits.Len(MinTargetBuckets-1) || int(logB) > bits.Len(MaxTargetBuckets-1) {
		return bad("bucket count 2^%d out of range", logB)
	}
	if flags&^1 != 0 {
		return bad("unknown flags %#x", flags)
	}
	B := 1 << logB
	rest := body[7:]
	if len(rest) < B { // every uvarint takes a byte at least
		return bad("truncated: %d bytes for %d buckets", len(rest), B)
	}
	readCounts := func(what string) (uint64, []uint64, error) {
		total, k := binary.Uvarint(rest)
		if k <= 0 {
			return 0, nil, bad("%s total: bad uvarint", what)
		}
		rest = rest[k:]
		counts := make([]uint64, B)
		var sum uint64
		for i := range counts {
			c, k := binary.Uvarint(rest)
			if k <= 0 {
				return 0, nil, bad("%s count %d: bad or missing uvarint", what, i)
			}
			rest = rest[k:]
			var carry uint64
			sum, carry = bits.Add64(sum, c, 0)
			if carry != 0 {
				return 0, nil, bad("%s counts overflow", what)
			}
			counts[i] = c
		}
		if sum != total {
			return 0, nil, bad("%s counts sum to %d, header says %d", what, sum, total)
		}
		return total, counts, nil
	}
	rawN, raw, err := readCounts("raw")
	if err != nil {
		return err
	}
	var tgtN uint64
	var tgt []uint64
	if flags&1 != 0 {
		if tgtN, tgt, err = readCounts("target"); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	*t = Target{logB: logB, raw: raw, rawN: rawN, tgt: tgt, tgtN: tgtN, stale: true, feats: t.feats[:0]}
	return nil
}
