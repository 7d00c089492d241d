package curate

import (
	"math"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Metrics are the audit columns of one record. Each field names, in its
// comment, the Parquet column the curate stage writes it to. An Analyzer
// computes every field except TargetSimilarity, which a Target gives.
//
// Definitions shared by several fields:
//
//   - A character is a Unicode code point; every byte of invalid UTF-8
//     counts as one character (U+FFFD).
//   - A word is a maximal run of characters that are not white space
//     (unicode.IsSpace).
//   - A word's key is the word lower-cased (unicode.ToLower) with its leading
//     and trailing characters that are neither letters nor digits removed, so
//     "The," and "the" share the key "the"; a word with no letter or digit at
//     all ("--", "…") is its own lower-cased key. Word entropy, n-grams,
//     stop words and the language guess work on keys; their character counts
//     are key lengths.
//   - A line is a piece of the text between '\n' characters, with leading
//     and trailing white space removed; blank lines are ignored.
//
// Every fraction is in [0, 1] and every field is 0 (Lang "und", Script
// "None") for an empty text.
type Metrics struct {
	// LengthChars is the number of characters (length_chars).
	LengthChars int32
	// LengthWords is the number of words (length_words).
	LengthWords int32
	// CharEntropy is the Shannon entropy, in bits per character, of the
	// distribution of characters in the text, white space included
	// (char_entropy): "aab" has 0.918.
	CharEntropy float32
	// WordEntropy is the Shannon entropy, in bits per word, of the
	// distribution of word keys (word_entropy): "a b a b" has 1.
	WordEntropy float32
	// CompressionRatio is len(text) in bytes over an estimate of the size of
	// the text compressed alone by zstd at its default level, frame overhead
	// included (compression_ratio); see EstimateCompressedSize. Short texts
	// have ratios below 1 (the frame costs more than it saves), repetitive
	// texts high ones.
	CompressionRatio float32
	// DupLineFrac is Gopher's duplicate-line character fraction
	// (dup_line_frac): the characters of every line that repeats an earlier
	// line of the same text, over LengthChars.
	DupLineFrac float32
	// Top2GramFrac, Top3GramFrac and Top4GramFrac are Gopher's top n-gram
	// character fractions (top_2gram_frac, top_3gram_frac, top_4gram_frac):
	// the key characters covered by the occurrences of the most frequent word
	// n-gram, over the key characters of all words. An n-gram that occurs
	// once does not count, so a text without a repeated n-gram has 0. Ties
	// go to the n-gram with more characters.
	Top2GramFrac, Top3GramFrac, Top4GramFrac float32
	// AlphaWordFrac is the fraction of words holding at least one letter
	// (alpha_word_frac).
	AlphaWordFrac float32
	// StopWords counts the words whose key is one of Gopher's English stop
	// words: the, be, to, of, and, that, have, with (stop_words).
	StopWords int32
	// Lang is a language guess (lang_guess): "en", "de", "fr", "es", "it",
	// "nl" or "pt" for Latin-script text, by a vote of common function words
	// (each word votes for every language whose list holds its key; the
	// strict winner takes it); "el", "he", "hy", "ka", "th", "ko", "ja" or
	// "zh" from a script used by one language; "other" for any other script;
	// "und" (undetermined) when the text has no letters or no vote decides.
	// It is a cheap guess meant for audits, not a language identifier.
	Lang string
	// Script is the script of most letters (script): one of "Latin",
	// "Greek", "Cyrillic", "Armenian", "Hebrew", "Arabic", "Devanagari",
	// "Thai", "Georgian", "Hangul", "Japanese" (kana with or without Han),
	// "Han", "Other"; "Mixed" when no script holds 80% of the letters; "None"
	// when there are no letters.
	Script string
	// PII flags the kinds of personal data or secrets found by ScanPII
	// (pii_flags).
	PII PIIFlags
	// TargetSimilarity is the record's similarity to the target domain
	// (target_similarity); see Target. Analyze leaves it 0.
	TargetSimilarity float32
	// QualityFlags are the quality checks the record fails, from the
	// thresholds of MetricsConfig (quality_flags).
	QualityFlags QualityFlags
}

// Analyzer computes Metrics. It reads a text in three passes: one for
// characters and words (histograms, word keys, function words), from which
// entropies, n-gram repetition, line duplication, script and language
// follow; one for the compression estimate; one for PII (ScanPII). On the
// real stream (records of 257 bytes on average) it takes about 5 µs a
// record on one core (BenchmarkAnalyze).
//
// It keeps scratch space between calls, so that analysing a record
// allocates nothing once the scratch has grown to the size of typical
// records; scratch grown by an exceptionally long record (about 15 bytes
// per byte of text while it is analysed) is released when the next record
// comes. An Analyzer is not safe for concurrent use: give each goroutine its
// own.
type Analyzer struct {
	cfg MetricsConfig

	// Character histogram: ASCII in an array, everything else in a small
	// hash table.
	ascii [128]uint32
	wide  runeCounts

	// Per word: key hash and key length in characters.
	hashes []uint64
	chars  []int32
	// Scratch for n-gram hashes and lengths, table slots and candidates.
	ngrams []uint64
	nchars []int32
	slots  []int32
	cand   []int32
	counts countTable

	lz    lzEstimator
	spans []PIISpan
	feats []uint64
}

// NewAnalyzer returns an Analyzer with the thresholds of cfg; zero fields of
// cfg take their defaults (see MetricsConfig.SetDefaults). It panics if the
// configuration is invalid: call cfg.Validate first when cfg comes from a
// user.
func NewAnalyzer(cfg MetricsConfig) *Analyzer {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Analyzer{cfg: cfg}
}

// analyzerBigScratch is the number of words above which the scratch grown
// by a record is dropped when the next record comes, so that one huge
// record does not pin its memory in a long-lived stage.
const analyzerBigScratch = 1 << 16

// Analyze computes the metrics of text, everything except TargetSimilarity.
// Any string is accepted: invalid UTF-8, NULs and huge texts give metrics
// (and the binary quality flag for the first two) without failing.
func (a *Analyzer) Analyze(text string) Metrics {
	if cap(a.hashes) > analyzerBigScratch || cap(a.spans) > analyzerBigScratch {
		a.hashes, a.chars, a.ngrams, a.nchars, a.slots, a.cand, a.feats = nil, nil, nil, nil, nil, nil, nil
		a.counts, a.spans = countTable{}, nil
	}
	var m Metrics
	p := a.pass(text)

	m.LengthChars = clampInt32(p.chars)
	m.LengthWords = clampInt32(len(a.hashes))
	m.CharEntropy = float32(a.charEntropy(p.chars))
	m.StopWords = clampInt32(p.stop)
	if len(a.hashes) > 0 {
		m.AlphaWordFrac = float32(float64(p.alphaWords) / float64(len(a.hashes)))
	}
	m.WordEntropy, m.Top2GramFrac, m.Top3GramFrac, m.Top4GramFrac = a.wordStats(p.keyChars)
	m.DupLineFrac = a.dupLineFrac(text, p.chars, p.newlines)
	if len(text) > 0 {
		m.CompressionRatio = float32(float64(len(text)) / float64(a.lz.estimate(text)))
	}
	scr := p.script()
	m.Script = scriptNames[scr]
	m.Lang = p.lang(scr)
	a.spans = ScanPII(text, a.spans[:0])
	for _, s := range a.spans {
		m.PII |= s.Kind
	}
	m.QualityFlags = a.cfg.flags(&m, p.invalid)
	return m
}

// PIISpans returns the PII spans found by the last Analyze call, in order
// and not overlapping, ready for Redact. The slice is reused by the next
// call.
func (a *Analyzer) PIISpans() []PIISpan { return a.spans }

// Features returns the hashed word unigram and bigram features of the text
// of the last Analyze call, the ones Target.ObserveFeatures and
// Target.SimilarityFeatures take: the same as AppendFeatures gives, without
// tokenising the text again. The slice is reused by the next call.
func (a *Analyzer) Features() []uint64 {
	a.feats = appendWordFeatures(a.feats[:0], a.hashes)
	return a.feats
}

func clampInt32(n int) int32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(n)
}

// passStats is what the single pass over the text collects besides the
// per-word and per-line arrays of the Analyzer.
type passStats struct {
	chars      int
	keyChars   int
	alphaWords int
	newlines   int
	stop       int
	invalid    bool
	scripts    [numScripts]int
	votes      [numLangs]int32
}

// Byte classes of ASCII characters.
const (
	clSpace = 1 << iota
	clLetter
	clDigit
	clUpper
	clControl // a control character other than the white space ones
	clNewline
)

var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c == '\n':
			t[c] = clSpace | clNewline
		case c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r':
			t[c] = clSpace
		case c < 0x20 || c == 0x7f:
			t[c] = clControl
		case c >= 'a' && c <= 'z':
			t[c] = clLetter
		case c >= 'A' && c <= 'Z':
			t[c] = clLetter | clUpper
		case c >= '0' && c <= '9':
			t[c] = clDigit
		}
	}
	return t
}()

// wordHasher hashes a word's key as it is read, one lower-cased character
// at a time (FNV-1a over code points, finished with a 64-bit mixer).
type wordHasher struct {
	full      uint64 // every character
	key       uint64 // from the first letter or digit
	snap      uint64 // key up to the last letter or digit so far
	fullChars int32
	keyChars  int32
	snapChars int32
	alnum     bool
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (w *wordHasher) reset() {
	*w = wordHasher{full: fnvOffset, key: fnvOffset}
}

// add adds the lower-cased character r; alnum says whether it is a letter
// or a digit.
func (w *wordHasher) add(r rune, alnum bool) {
	w.full = (w.full ^ uint64(r)) * fnvPrime
	w.fullChars++
	if alnum || w.alnum {
		w.key = (w.key ^ uint64(r)) * fnvPrime
		w.keyChars++
		if alnum {
			w.alnum = true
			w.snap, w.snapChars = w.key, w.keyChars
		}
	}
}

// sum returns the key's hash and length in characters.
func (w *wordHasher) sum() (uint64, int32) {
	if w.alnum {
		return fmix64(w.snap), w.snapChars
	}
	return fmix64(w.full), w.fullChars
}

// fmix64 is the 64-bit finaliser of MurmurHash3.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// combineNgram extends an n-gram hash by one word.
func combineNgram(g, h uint64) uint64 {
	return bits.RotateLeft64(g*0x9e3779b97f4a7c15, 29) ^ h
}

// pass reads the text once: characters and words. The hot loop keeps its
// counters in locals (no closures) so that they stay in registers.
func (a *Analyzer) pass(s string) passStats {
	var p passStats
	hashes, chars := a.hashes[:0], a.chars[:0]
	a.wide.reset()
	ascii := &a.ascii

	var w wordHasher
	inWord, wordAlpha := false, false
	nchars, keyChars, alphaWords, latin, newlines := 0, 0, 0, 0, 0
	invalid := false
	for i := 0; i < len(s); {
		c := s[i]
		var r rune
		size := 1
		var cl uint8
		if c < utf8.RuneSelf {
			r = rune(c)
			cl = asciiClass[c]
			ascii[c]++
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				invalid = true
			}
			a.wide.add(r)
			switch {
			case unicode.IsSpace(r):
				cl = clSpace // lines break at '\n' only, not at NEL or U+2028
			case unicode.IsLetter(r):
				cl = clLetter
			case unicode.IsDigit(r):
				cl = clDigit
			case unicode.IsControl(r):
				cl = clControl
			}
		}
		nchars++
		i += size
		if cl&clSpace != 0 {
			if cl&clNewline != 0 {
				newlines++
			}
			if !inWord {
				continue
			}
			inWord = false
			h, n := w.sum()
			if len(hashes) == cap(hashes) {
				hashes, chars = growWords(hashes, chars)
			}
			hashes = append(hashes, h)
			chars = append(chars, n)
			keyChars += int(n)
			if wordAlpha {
				alphaWords++
			}
			if n <= maxFunctionWordChars {
				p.vote(h)
			}
			continue
		}
		if !inWord {
			inWord, wordAlpha = true, false
			w.reset()
		}
		if cl&clLetter != 0 {
			wordAlpha = true
			if c < utf8.RuneSelf {
				latin++
				r |= 0x20 // lower case
			} else {
				p.scripts[scriptOf(r)]++
				r = unicode.ToLower(r)
			}
			w.add(r, true)
			continue
		}
		if cl&clControl != 0 {
			invalid = true
		}
		w.add(r, cl&clDigit != 0)
	}
	if inWord {
		h, n := w.sum()
		if len(hashes) == cap(hashes) {
			hashes, chars = growWords(hashes, chars)
		}
		hashes = append(hashes, h)
		chars = append(chars, n)
		keyChars += int(n)
		if wordAlpha {
			alphaWords++
		}
		if n <= maxFunctionWordChars {
			p.vote(h)
		}
	}
	a.hashes, a.chars = hashes, chars
	p.chars, p.keyChars, p.alphaWords, p.newlines, p.invalid = nchars, keyChars, alphaWords, newlines, invalid
	p.scripts[scriptLatin] += latin
	return p
}

// growWords doubles the capacity of the per-word arrays, rather than
// append's 1.25 for large slices, so that a huge text allocates about twice
// its final arrays, not five times.
func growWords(hashes []uint64, chars []int32) ([]uint64, []int32) {
	c := 2*cap(hashes) + 64
	return append(make([]uint64, 0, c), hashes...), append(make([]int32, 0, c), chars...)
}

// vote counts the function word with key hash h, if it is one.
func (p *passStats) vote(h uint64) {
	info := lookupFunctionWord(h)
	if info == 0 {
		return
	}
	if info&gopherStop != 0 {
		p.stop++
	}
	for l := range numLangs {
		if info&(1<<l) != 0 {
			p.votes[l]++
		}
	}
}

// charEntropy returns the Shannon entropy of the character histogram of
// the last pass and clears it.
func (a *Analyzer) charEntropy(n int) float64 {
	var sum float64
	for c, k := range a.ascii {
		if k != 0 {
			sum += xlog2x(k)
			a.ascii[c] = 0
		}
	}
	for _, c := range a.wide.used() {
		sum += xlog2x(c)
	}
	return entropyFromSum(sum, n)
}

// entropyFromSum returns log2(n) - sum/n, the entropy of a distribution of n
// items whose counts c have sum c*log2(c) = sum, clamped at 0 against
// rounding.
func entropyFromSum(sum float64, n int) float64 {
	if n <= 1 {
		return 0
	}
	h := math.Log2(float64(n)) - sum/float64(n)
	if h < 1e-9 {
		return 0
	}
	return h
}

var xlog2xTable = func() (t [4096]float64) {
	for c := 2; c < len(t); c++ {
		t[c] = float64(c) * math.Log2(float64(c))
	}
	return t
}()

// xlog2x returns c*log2(c).
func xlog2x(c uint32) float64 {
	if c < uint32(len(xlog2xTable)) {
		return xlog2xTable[c]
	}
	return float64(c) * math.Log2(float64(c))
}

// wordStats returns the word entropy and the top 2-, 3- and 4-gram
// character fractions of the words of the last pass.
//
// Only n-grams that can repeat are counted: an n-gram occurring twice has
// its two (n-1)-grams (at i and i+1) occurring twice too, so positions
// where either did not repeat are skipped. Most records have few repeated
// words, so this leaves little to count.
func (a *Analyzer) wordStats(keyChars int) (entropy, top2, top3, top4 float32) {
	n := len(a.hashes)
	if n == 0 {
		return 0, 0, 0, 0
	}
	t := &a.counts
	t.reset(n)
	if cap(a.slots) < n {
		a.slots, a.cand = make([]int32, 0, n), make([]int32, 0, n)
	}
	slots := a.slots[:0]
	maxCount := uint32(0)
	for _, h := range a.hashes {
		slot := t.add(h)
		slots = append(slots, slot)
		maxCount = max(maxCount, t.counts[slot])
	}
	a.slots = slots
	var sum float64
	for _, slot := range t.used {
		sum += xlog2x(t.counts[slot])
	}
	entropy = float32(entropyFromSum(sum, n))
	if maxCount < 2 || keyChars == 0 {
		// No word repeats, so no n-gram does.
		return entropy, 0, 0, 0
	}
	// cand lists the positions whose n-gram can repeat: for 2-grams, both
	// words repeat.
	cand := a.cand[:0]
	for i := range n - 1 {
		if t.counts[slots[i]] >= 2 && t.counts[slots[i+1]] >= 2 {
			cand = append(cand, int32(i))
		}
	}
	g := append(a.ngrams[:0], a.hashes...)
	gc := append(a.nchars[:0], a.chars...)
	a.ngrams, a.nchars = g, gc
	var fracs [3]float32
	for k := range fracs {
		size := k + 2
		if len(cand) < 2 {
			break // an n-gram needs two positions to repeat
		}
		t.reset(len(cand))
		var best uint64
		var bestCount uint32
		var bestChars int32
		for _, i := range cand {
			g[i] = combineNgram(g[i], a.hashes[int(i)+size-1])
			gc[i] += a.chars[int(i)+size-1]
			slot := t.add(g[i])
			slots[i] = slot
			if c := t.counts[slot]; c > bestCount || c == bestCount && gc[i] > bestChars {
				best, bestCount, bestChars = g[i], c, gc[i]
			}
		}
		if bestCount < 2 {
			break // no repeated n-gram, so no repeated longer one
		}
		covered, to := 0, 0
		for _, i := range cand {
			if g[i] != best {
				continue
			}
			for j := max(int(i), to); j < int(i)+size; j++ {
				covered += int(a.chars[j])
			}
			to = int(i) + size
		}
		fracs[k] = float32(float64(covered) / float64(keyChars))
		// The next size's candidates: positions whose n-gram and the one
		// after it both repeat.
		next := cand[:0]
		for x, i := range cand {
			if x+1 < len(cand) && cand[x+1] == i+1 && t.counts[slots[i]] >= 2 && t.counts[slots[i+1]] >= 2 {
				next = append(next, i)
			}
		}
		cand = next
	}
	a.cand = cand
	return entropy, fracs[0], fracs[1], fracs[2]
}

// dupLineFrac returns the characters of lines repeating an earlier line over
// all characters, splitting the text at '\n' (only called when it has one).
func (a *Analyzer) dupLineFrac(s string, chars, newlines int) float32 {
	if newlines == 0 || chars == 0 {
		return 0
	}
	t := &a.counts
	t.reset(newlines + 1)
	dup := 0
	for len(s) > 0 {
		line := s
		if k := strings.IndexByte(s, '\n'); k >= 0 {
			line, s = s[:k], s[k+1:]
		} else {
			s = ""
		}
		line = strings.TrimFunc(line, isSpace)
		if line == "" {
			continue
		}
		if t.counts[t.add(xxhash.Sum64String(line))] > 1 {
			dup += utf8.RuneCountInString(line)
		}
	}
	return float32(float64(dup) / float64(chars))
}

// isSpace is the Analyzer's white space: as asciiClass says for ASCII,
// unicode.IsSpace beyond.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&clSpace != 0
	}
	return unicode.IsSpace(r)
}

// countTable counts 64-bit keys in an open-addressing hash table that is
// cleared in time proportional to the keys it held.
type countTable struct {
	keys   []uint64
	counts []uint32
	used   []int32 // slots in use, in order of first insertion
	shift  uint8
}

// reset empties the table and sizes it for n keys.
func (t *countTable) reset(n int) {
	for _, s := range t.used {
		t.counts[s] = 0
	}
	t.used = t.used[:0]
	size := 64
	for size < 2*n {
		size <<= 1
	}
	if size > len(t.keys) || (size < len(t.keys)/8 && len(t.keys) > 1<<12) {
		t.keys = make([]uint64, size)
		t.counts = make([]uint32, size)
		t.used = make([]int32, 0, size/2)
	}
	t.shift = uint8(64 - bits.TrailingZeros(uint(len(t.keys))))
}

// add counts one occurrence of k and returns its slot; t.counts[slot] is
// its count.
func (t *countTable) add(k uint64) int32 {
	mask := len(t.keys) - 1
	i := int((k * 0x9e3779b97f4a7c15) >> t.shift)
	for {
		if t.counts[i] == 0 {
			t.keys[i], t.counts[i] = k, 1
			t.used = append(t.used, int32(i))
			return int32(i)
		}
		if t.keys[i] == k {
			t.counts[i]++
			return int32(i)
		}
		i = (i + 1) & mask
	}
}

// runeCounts counts non-ASCII characters (few per record) in a small
// open-addressing table.
type runeCounts struct {
	keys   []rune
	counts []uint32
	slots  []int32
	vals   []uint32
}

func (rc *runeCounts) reset() {
	for _, s := range rc.slots {
		rc.counts[s] = 0
	}
	rc.slots = rc.slots[:0]
}

func (rc *runeCounts) add(r rune) {
	if 2*(len(rc.slots)+1) > len(rc.keys) {
		rc.grow()
	}
	mask := len(rc.keys) - 1
	i := int(uint64(uint32(r))*0x9e3779b97f4a7c15>>32) & mask
	for {
		if rc.counts[i] == 0 {
			rc.keys[i], rc.counts[i] = r, 1
			rc.slots = append(rc.slots, int32(i))
			return
		}
		if rc.keys[i] == r {
			rc.counts[i]++
			return
		}
		i = (i + 1) & mask
	}
}

func (rc *runeCounts) grow() {
	size := max(32, 2*len(rc.keys))
	keys, counts := rc.keys, rc.counts
	slots := rc.slots
	rc.keys, rc.counts = make([]rune, size), make([]uint32, size)
	rc.slots = make([]int32, 0, size/2)
	for _, s := range slots {
		r, c := keys[s], counts[s]
		mask := size - 1
		i := int(uint64(uint32(r))*0x9e3779b97f4a7c15>>32) & mask
		for rc.counts[i] != 0 {
			i = (i + 1) & mask
		}
		rc.keys[i], rc.counts[i] = r, c
		rc.slots = append(rc.slots, int32(i))
	}
}

// used returns the counts in use.
func (rc *runeCounts) used() []uint32 {
	rc.vals = rc.vals[:0]
	for _, s := range rc.slots {
		rc.vals = append(rc.vals, rc.counts[s])
	}
	if len(rc.keys) > 1<<16 {
		// Released after an exceptional record; vals is returned first.
		v := rc.vals
		*rc = runeCounts{}
		return v
	}
	return rc.vals
}
