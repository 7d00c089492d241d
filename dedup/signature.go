package dedup

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Signature is what the index needs of one text: its exact key, one LSH key
// per band and its bottom-k sketch. A Signer makes it; Index.AddSignature
// consumes it. Signatures let a caller compute the expensive, pure part of
// deduplication on several goroutines (one Signer each) and keep only the
// decisions serial, in offset order. The zero Signature is ready to be
// filled; Sign reuses its buffers.
type Signature struct {
	// Exact is the xxhash64 of the normal form: the exact-duplicate key.
	Exact uint64
	// Shingles is the number of distinct shingles of the text.
	Shingles int

	bands  []uint32 // one LSH key per band, never 0
	sketch []uint32 // bottom-k sketch: see sketchInto
	layout uint64   // fingerprint of the Config that made it
}

// Signer turns texts into signatures. It keeps scratch buffers, so a Signer
// must not be used by two goroutines at once; make one per goroutine.
type Signer struct {
	cfg    Config
	layout uint64
	seed   uint64

	norm   normalizer
	text   []byte   // the normal form
	words  []uint64 // one hash per word
	hashes []uint64 // one hash per distinct shingle
	set    u32set   // distinct 32-bit shingle hashes
	mins   []uint32 // the MinHash values
	filled []bool   // which bins hashing filled
}

// NewSigner returns a Signer for cfg (defaults filled in).
func NewSigner(cfg Config) (*Signer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSigner(cfg), nil
}

func newSigner(cfg Config) *Signer {
	x := cfg.Seed ^ 0x6a09e667f3bcc908
	return &Signer{
		cfg:    cfg,
		layout: layoutOf(&cfg),
		seed:   splitmix(&x),
		mins:   make([]uint32, cfg.NumPerm),
	}
}

// layoutOf fingerprints the fields that shape a signature.
func layoutOf(c *Config) uint64 {
	b := fmt.Appendf(nil, "%d/%d/%d/%d/%d/%d", c.Punctuation, c.ShingleWords, c.Bands, c.Rows, c.SketchSize, c.Seed)
	return xxhash.Sum64(b)
}

// splitmix is SplitMix64: a fixed, portable stream of seeds.
func splitmix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Normalized returns the normal form of the text last signed. It is valid
// until the next Sign.
func (s *Signer) Normalized() []byte { return s.text }

// Sign computes the signature of text into sig, reusing sig's buffers.
func (s *Signer) Sign(sig *Signature, text string) {
	s.shrink()
	s.text = s.norm.append(s.text[:0], text, s.cfg.Punctuation)
	sig.Exact = xxhash.Sum64(s.text)
	sig.layout = s.layout
	s.shingle()
	sig.Shingles = len(s.hashes)
	s.sketchInto(sig)
	s.bandsInto(sig)
}

// keepScratch is the most scratch (bytes of text, shingles) a Signer keeps
// from one text to the next: one huge record must not pin its buffers for
// the life of a long-running stage.
const keepScratch = 1 << 16

func (s *Signer) shrink() {
	if cap(s.text) > 16*keepScratch {
		s.text = nil
		s.norm = normalizer{}
	}
	if cap(s.words) > keepScratch || cap(s.hashes) > keepScratch || len(s.set.slots) > 4*keepScratch {
		s.words, s.hashes, s.set = nil, nil, u32set{}
	}
}

// shingle hashes every word of the normal form once (words are separated
// by exactly one space there), then every ShingleWords-word window by
// mixing its word hashes, and keeps the distinct shingles. A text with
// fewer words is one shingle.
func (s *Signer) shingle() {
	t := s.text
	s.words = s.words[:0]
	s.hashes = s.hashes[:0]
	if len(t) == 0 {
		return
	}
	for start := 0; start <= len(t); {
		end := wordEnd(t, start)
		s.words = append(s.words, hashWord(t, start, end))
		start = end + 1
	}
	k := s.cfg.ShingleWords
	w := s.words
	n := len(w) - k + 1
	if n < 1 {
		k, n = len(w), 1
	}
	s.set.reset(n)
	for i := 0; i < n; i++ {
		h := uint64(k)
		for _, x := range w[i : i+k] {
			h = bits.RotateLeft64(h, 23) ^ x
			h *= 0x9fb21c651e98df25
		}
		h ^= h >> 29
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 32
		if s.set.add(uint32(h)) {
			s.hashes = append(s.hashes, h)
		}
	}
}

// sketchInto stores the bottom-k sketch of the distinct shingles: all of
// their 32-bit hashes when there are fewer than SketchSize (a complete
// sketch, in first-occurrence order), else the SketchSize smallest (in the
// deterministic order selection leaves them).
func (s *Signer) sketchInto(sig *Signature) {
	sk := sig.sketch[:0]
	for _, h := range s.hashes {
		sk = append(sk, uint32(h))
	}
	if k := s.cfg.SketchSize; len(sk) > k {
		selectSmallest(sk, k)
		sk = sk[:k]
	}
	sig.sketch = sk
}

// selectSmallest reorders distinct values a so that its k smallest come
// first.
func selectSmallest(a []uint32, k int) { selectFirst(a, k, cmp.Compare[uint32]) }

// selectFirst reorders a, whose elements are distinct under the total order
// cmp, so that its k first in that order come first (Hoare's quickselect
// with median-of-three pivots: linear on average, deterministic).
func selectFirst[T any](a []T, k int, cmp func(x, y T) int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if cmp(a[mid], a[lo]) < 0 {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if cmp(a[hi], a[lo]) < 0 {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if cmp(a[hi], a[mid]) < 0 {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for cmp(a[i], p) < 0 {
				i++
			}
			for cmp(a[j], p) > 0 {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo..j] <= p <= a[i..hi].
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// bandsInto computes NumPerm MinHash values by one-permutation hashing
// and folds every Rows of them into a band key.
//
// One-permutation hashing (Li, Owen and Zhang 2012) splits the hash space
// into NumPerm bins and keeps the smallest hash in each: one pass over the
// shingles instead of NumPerm. A bin left empty (short texts leave many)
// takes the value of a non-empty bin chosen by a fixed pseudo-random probe
// sequence of its own ("optimal densification", Shrivastava 2017), which
// keeps Pr[two texts agree on a bin] equal to their Jaccard similarity.
func (s *Signer) bandsInto(sig *Signature) {
	mins := s.mins
	k := uint64(len(mins))
	for i := range mins {
		mins[i] = math.MaxUint32
	}
	if len(s.hashes) > 0 {
		for _, h := range s.hashes {
			bin := (h >> 32) * k >> 32
			mins[bin] = min(mins[bin], uint32(h*0x9e3779b97f4a7c15>>32))
		}
		filled := s.filled[:0]
		for _, v := range mins {
			filled = append(filled, v != math.MaxUint32)
		}
		s.filled = filled
		for i := range mins {
			if filled[i] {
				continue
			}
			x := uint64(i)*0xd6e8feb86659fd93 + s.seed
			for {
				j := (splitmix(&x) >> 32) * k >> 32
				if filled[j] {
					mins[i] = mins[j]
					break
				}
			}
		}
	}
	r := s.cfg.Rows
	bands := sig.bands[:0]
	for b := 0; b < s.cfg.Bands; b++ {
		x := uint64(b+1)*0x9e3779b97f4a7c15 ^ s.seed
		for _, v := range mins[b*r : b*r+r] {
			x = (x ^ uint64(v)) * 0xff51afd7ed558ccd
			x ^= x >> 32
		}
		k := uint32(x >> 32)
		if k == 0 {
			k = 1
		}
		bands = append(bands, k)
	}
	sig.bands = bands
}

// u32set is a small open-addressing set of 32-bit values, cleared per use.
type u32set struct {
	slots []uint32
	zero  bool // whether 0 (the empty marker) is in the set
}

func (s *u32set) reset(n int) {
	c := 16
	for c < 2*n {
		c *= 2
	}
	if cap(s.slots) < c {
		s.slots = make([]uint32, c)
	} else {
		s.slots = s.slots[:c]
		clear(s.slots)
	}
	s.zero = false
}

// add inserts v and reports whether it was new.
func (s *u32set) add(v uint32) bool {
	if v == 0 {
		was := s.zero
		s.zero = true
		return !was
	}
	mask := uint32(len(s.slots) - 1)
	for i := (v * 0x9e3779b1) >> 7 & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case v:
			return false
		case 0:
			s.slots[i] = v
			return true
		}
	}
}

func (s *u32set) has(v uint32) bool {
	if v == 0 {
		return s.zero
	}
	mask := uint32(len(s.slots) - 1)
	for i := (v * 0x9e3779b1) >> 7 & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case v:
			return true
		case 0:
			return false
		}
	}
}

// sketchLimit is the largest hash a sketch vouches for: a complete sketch
// (fewer than k values) holds every shingle, a full one only those up to
// its largest value.
func sketchLimit(sk []uint32, k int) uint32 {
	if len(sk) < k {
		return math.MaxUint32
	}
	return slices.Max(sk)
}

// query is the sketch of the record being decided, with its values in a
// set for fast membership tests.
type query struct {
	sk    []uint32
	limit uint32
	set   *u32set
	k     int
}

func newQuery(sk []uint32, k int, set *u32set) query {
	set.reset(len(sk))
	for _, v := range sk {
		set.add(v)
	}
	return query{sk: sk, limit: sketchLimit(sk, k), set: set, k: k}
}

// tooSmall reports whether a complete sketch of nb values is certain to be
// less similar than floor to a complete query, by size alone:
// J <= min(na, nb) / max(na, nb).
func (q *query) tooSmall(nb int, floor float64) bool {
	na := len(q.sk)
	if na >= q.k || nb >= q.k {
		return false
	}
	return float64(min(na, nb)) < floor*float64(max(na, nb))-1e-9
}

// similarity is the Jaccard similarity of the shingle sets of the query and
// of sketch b, counted over the hashes both sketches vouch for (those up to
// the smaller limit). It is exact when both sketches are complete, and
// otherwise the Jaccard similarity of a uniform sample of the shingle
// space, an estimate with standard error about sqrt(J(1-J)/k).
//
// When the similarity of complete sketches is certain to be below floor, it
// may stop early and return -1.
func (q *query) similarity(b []uint32, floor float64) float64 {
	tau := min(q.limit, sketchLimit(b, q.k))
	na, nb, both := len(q.sk), len(b), 0
	if tau == math.MaxUint32 {
		// J = both/(na+nb-both) >= floor iff both >= floor*(na+nb)/(1+floor);
		// need is rounded down, so an early stop is always right.
		need := int(floor*float64(na+nb)/(1+floor) - 1e-9)
		if min(na, nb) < need {
			return -1
		}
		for i, v := range b {
			if q.set.has(v) {
				both++
			} else if both+nb-i-1 < need {
				return -1
			}
		}
	} else {
		na, nb = 0, 0
		for _, v := range q.sk {
			if v <= tau {
				na++
			}
		}
		for _, v := range b {
			if v <= tau {
				nb++
				if q.set.has(v) {
					both++
				}
			}
		}
	}
	return float64(both) / float64(na+nb-both)
}

const (
	spaces = 0x2020202020202020
	lows   = 0x0101010101010101
	highs  = 0x8080808080808080
)

// wordEnd returns the index of the first space in t at or after i, or
// len(t), eight bytes at a time.
func wordEnd(t []byte, i int) int {
	for ; i+8 <= len(t); i += 8 {
		x := binary.LittleEndian.Uint64(t[i:]) ^ spaces
		// The lowest set bit marks the first zero byte exactly.
		if m := (x - lows) &^ x & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(t) && t[i] != ' '; i++ {
	}
	return i
}

// hashWord hashes t[start:end] (wyhash-style multiply-fold mixing), reading
// eight bytes at a time and the tail with one load when t extends past it.
func hashWord(t []byte, start, end int) uint64 {
	h := uint64(end-start) * 0xa0761d6478bd642f
	i := start
	for ; i+8 <= end; i += 8 {
		h = mum(h^binary.LittleEndian.Uint64(t[i:]), 0xe7037ed1a0b428db)
	}
	if n := end - i; n > 0 {
		var x uint64
		if i+8 <= len(t) {
			x = binary.LittleEndian.Uint64(t[i:]) & (1<<(8*n) - 1)
		} else {
			for j := end - 1; j >= i; j-- {
				x = x<<8 | uint64(t[j])
			}
		}
		h = mum(h^x, 0x8ebc6af09c88c6e3)
	}
	return mum(h, 0x589965cc75374cc3)
}

// mum folds the 128-bit product of a and b into 64 bits.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
