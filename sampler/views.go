package sampler

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// View kinds (Config.Views).
const (
	ViewsAugment = "augment" // crop, dropout and mask each view
	ViewsSplit   = "split"   // disjoint halves of the words; each view's targets are the other's words
)

// viewer builds augmented views of a record's words. Its buffers are
// reused from view to view.
type viewer struct {
	dropout  float64 // probability that a word is dropped
	maskFrac float64 // share of the words masked
	span     float64 // mean masked span length
	keepMin  float64 // a crop keeps at least this share of the words
	token    string
	split    bool

	half  [2][]string
	kept  []string
	marks []bool
	sb    strings.Builder
}

func newViewer(c *Config) *viewer {
	st := max(c.Strength, 0)
	return &viewer{
		dropout:  st * max(c.Dropout, 0),
		maskFrac: st * max(c.MaskFraction, 0),
		span:     c.MaskSpan,
		keepMin:  min(1, max(0, 1-st*(1-c.CropMin))),
		token:    c.MaskToken,
		split:    c.Views == ViewsSplit,
	}
}

// views returns the two views of words and the words each masked.
func (v *viewer) views(rng *rand.Rand, words []string) (a string, ma []string, b string, mb []string) {
	if !v.split || len(words) < 2 {
		a, ma = v.view(rng, words)
		b, mb = v.view(rng, words)
		return a, ma, b, mb
	}
	// Deal every word to one half at random, in order; neither half is
	// left empty.
	h0, h1 := v.half[0][:0], v.half[1][:0]
	for _, w := range words {
		if rng.Uint64()&1 == 0 {
			h0 = append(h0, w)
		} else {
			h1 = append(h1, w)
		}
	}
	if len(h0) == 0 || len(h1) == 0 {
		h0, h1 = append(h0[:0], words[:len(words)/2]...), append(h1[:0], words[len(words)/2:]...)
	}
	v.half[0], v.half[1] = h0, h1
	// No masking: each view's targets are the other view's words.
	a, b = joinWords(&v.sb, h0, nil, ""), joinWords(&v.sb, h1, nil, "")
	return a, slices.Clone(h1), b, slices.Clone(h0)
}

// view returns one augmented view of words and the words it masked, in
// order: a random crop (a contiguous window of at least keepMin of the
// words), then token dropout (never every word), then span masking (each
// masked word replaced by the mask token; at least one word stays
// unmasked). Replacing the view's mask tokens, in order, by the masked
// words gives the cropped and dropped-out words.
func (v *viewer) view(rng *rand.Rand, words []string) (string, []string) {
	n := len(words)
	if n == 0 {
		return "", nil
	}
	w := words
	if v.keepMin < 1 && n > 1 {
		minLen := max(1, int(math.Ceil(v.keepMin*float64(n)-1e-9)))
		l := minLen + rng.IntN(n-minLen+1)
		start := rng.IntN(n - l + 1)
		w = words[start : start+l]
	}
	if v.dropout > 0 && len(w) > 1 {
		kept := v.kept[:0]
		for _, x := range w {
			if rng.Float64() >= v.dropout {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			kept = append(kept, w[rng.IntN(len(w))])
		}
		v.kept = kept
		w = kept
	}
	return v.mask(rng, w)
}

// mask span-masks w (see view).
func (v *viewer) mask(rng *rand.Rand, w []string) (string, []string) {
	n := len(w)
	m := 0
	if v.maskFrac > 0 && n > 1 {
		m = min(n-1, int(v.maskFrac*float64(n)+rng.Float64()))
	}
	if m == 0 {
		return joinWords(&v.sb, w, nil, ""), nil
	}
	if cap(v.marks) < n {
		v.marks = make([]bool, n)
	}
	marks := v.marks[:n]
	clear(marks)
	masked := 0
	for tries := 0; masked < m && tries < 4*m+8; tries++ {
		l := 1
		if v.span > 1 {
			l += int(math.Log(1-rng.Float64()) / math.Log(1-1/v.span))
		}
		l = max(1, min(l, m-masked))
		start := rng.IntN(n - l + 1)
		for i := start; i < start+l; i++ {
			if !marks[i] {
				marks[i] = true
				masked++
			}
		}
	}
	out := make([]string, 0, masked)
	for i, x := range w {
		if marks[i] {
			out = append(out, x)
		}
	}
	return joinWords(&v.sb, w, marks, v.token), out
}

func joinWords(sb *strings.Builder, w []string, marks []bool, token string) string {
	sb.Reset()
	size := len(w)
	for _, x := range w {
		size += len(x)
	}
	sb.Grow(size)
	for i, x := range w {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if marks != nil && marks[i] {
			sb.WriteString(token)
		} else {
			sb.WriteString(x)
		}
	}
	return sb.String()
}

// splitWords splits s around runs of white space, as strings.Fields does,
// into dst.
func splitWords(dst []string, s string) []string {
	dst = dst[:0]
	start := -1
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		size := 1
		if c < utf8.RuneSelf {
			space = asciiSpace[c]
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
		}
		if space {
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}
