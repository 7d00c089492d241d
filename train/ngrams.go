package train

import (
	"math/bits"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Salts keep the hash spaces of the n-gram kinds apart.
const (
	saltWord  = 0x9e3779b97f4a7c15
	saltChar  = 0xc2b2ae3d27d4eb4f
	saltMLM   = 0x165667b19e3779f9
	maxCharNW = 32 // words longer than this (in runes) get no character n-grams
)

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fastRange maps h uniformly onto [0, n).
func fastRange(h uint64, n int) uint32 {
	hi, _ := bits.Mul64(h, uint64(n))
	return uint32(hi)
}

// featurizer turns text into hashed n-gram ids. It keeps scratch space, so
// one featurizer serves one goroutine.
type featurizer struct {
	buckets          int
	wordMin, wordMax int
	charMin, charMax int
	maxWords         int
	keepCase         bool
	mlmBuckets       int
	word             []byte   // current word, lower-cased, with < > around it
	runeOff          []int    // rune start offsets in word (plus the end)
	wordHashes       []uint64 // hash of each word of the text
}

func newFeaturizer(c *Config) *featurizer {
	f := &featurizer{
		buckets: c.Buckets, wordMin: c.WordNgramMin, wordMax: c.WordNgramMax,
		maxWords: c.MaxWords, keepCase: c.KeepCase, mlmBuckets: c.MLMBuckets,
	}
	if c.charNgrams() {
		f.charMin, f.charMax = c.CharNgramMin, c.CharNgramMax
	}
	return f
}

// nextWord returns the next whitespace-separated word of s from i, and the
// index after it; ok is false when none is left.
func nextWord(s string, i int) (w string, next int, ok bool) {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || (c >= '\t' && c <= '\r') {
				i++
				continue
			}
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	if i >= len(s) {
		return "", i, false
	}
	start := i
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || (c >= '\t' && c <= '\r') {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return s[start:i], i, true
}

// loadWord puts "<" + lower(w) + ">" into f.word and returns the hash of
// the word without the brackets.
func (f *featurizer) loadWord(w string) uint64 {
	b := append(f.word[:0], '<')
	for i := 0; i < len(w); {
		c := w[i]
		if c < utf8.RuneSelf {
			if !f.keepCase && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(w[i:])
		if !f.keepCase {
			r = unicode.ToLower(r)
		}
		b = utf8.AppendRune(b, r)
		i += n
	}
	b = append(b, '>')
	f.word = b
	return xxhash.Sum64(b[1 : len(b)-1])
}

// ids appends the n-gram ids of text to dst.
func (f *featurizer) ids(text string, dst []uint32) []uint32 {
	f.wordHashes = f.wordHashes[:0]
	for i, nw := 0, 0; nw < f.maxWords; nw++ {
		w, next, ok := nextWord(text, i)
		if !ok {
			break
		}
		i = next
		h := f.loadWord(w)
		f.wordHashes = append(f.wordHashes, h)
		if f.charMin > 0 {
			dst = f.charIDs(dst)
		}
	}
	hs := f.wordHashes
	for n := f.wordMin; n <= f.wordMax; n++ {
		for s := 0; s+n <= len(hs); s++ {
			h := uint64(saltWord) + uint64(n)
			for _, x := range hs[s : s+n] {
				h = mix64(h*31 + x)
			}
			dst = append(dst, fastRange(h, f.buckets))
		}
	}
	return dst
}

// charIDs appends the character n-gram ids of f.word.
func (f *featurizer) charIDs(dst []uint32) []uint32 {
	b := f.word
	off := f.runeOff[:0]
	for i := range b {
		if b[i] < utf8.RuneSelf || utf8.RuneStart(b[i]) {
			off = append(off, i)
		}
	}
	off = append(off, len(b))
	f.runeOff = off
	nr := len(off) - 1
	if nr-2 > maxCharNW {
		return dst
	}
	for n := f.charMin; n <= f.charMax; n++ {
		for s := 0; s+n <= nr; s++ {
			h := xxhash.Sum64(b[off[s]:off[s+n]])
			dst = append(dst, fastRange(mix64(h^saltChar^uint64(n)), f.buckets))
		}
	}
	return dst
}

// mlmIDs appends the output-table ids of masked words.
func (f *featurizer) mlmIDs(words []string, dst []uint32) []uint32 {
	for _, w := range words {
		// A masked "word" may hold spaces if a producer joined words; hash
		// every word in it.
		for i := 0; ; {
			ww, next, ok := nextWord(w, i)
			if !ok {
				break
			}
			i = next
			h := f.loadWord(ww)
			dst = append(dst, fastRange(mix64(h^saltMLM), f.mlmBuckets))
		}
	}
	return dst
}
