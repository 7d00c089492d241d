package dedup

import (
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/unicode/norm"
)

// Normalize appends the normal form of text to dst and returns the extended
// slice. The normal form is what both exact keys and shingles are computed
// on:
//
//  1. Unicode NFKC (compatibility composition: ligatures such as "ﬁ" become
//     "fi", full-width "Ａ" becomes "A", "①" becomes "1");
//  2. case folding (simple folding: unicode.ToLower(unicode.ToUpper(r)), so
//     "Straße" becomes "straße", the long s "ſ" becomes "s" and a final
//     sigma "ς" becomes "σ");
//  3. with PunctStrip, every punctuation or symbol character becomes a
//     separator; with PunctKeep it stays;
//  4. whitespace and control characters are separators, and invisible format
//     characters (Unicode category Cf: soft hyphen, zero-width joiner, byte
//     order mark) are removed; invalid UTF-8 reads as U+FFFD;
//  5. every run of separators becomes one ASCII space, none at either end.
//
// The result is a fixed point: Normalize(Normalize(x)) == Normalize(x).
// Text that is all ASCII (most of it) takes a fast path with no NFKC and no
// allocation beyond growing dst.
func Normalize(dst []byte, text string, p PunctPolicy) []byte {
	var n normalizer
	return n.append(dst, text, p)
}

// normalizer holds the scratch buffers of Normalize for reuse.
type normalizer struct {
	tmp, tmp2 []byte
	it        norm.Iter // unlike norm.Form.Append, does not allocate
}

// asciiMap maps an ASCII byte to its normal form, 0 for a separator, under
// each punctuation policy; bytes >= 0x80 map to 0 (never looked up).
var asciiMap = [2][256]byte{buildASCII(PunctStrip), buildASCII(PunctKeep)}

func buildASCII(p PunctPolicy) [256]byte {
	var t [256]byte
	for c := 0; c < 128; c++ {
		switch {
		case c >= 'A' && c <= 'Z':
			t[c] = byte(c) + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			t[c] = byte(c)
		case c <= ' ' || c == 0x7f:
			// separator
		case p == PunctKeep:
			t[c] = byte(c)
		}
	}
	return t
}

func (n *normalizer) append(dst []byte, text string, p PunctPolicy) []byte {
	if p > PunctKeep {
		p = PunctStrip
	}
	if isASCII(text) {
		return appendASCII(dst, text, &asciiMap[p])
	}
	// NFKC, then fold and classify. Folding or removing a format character
	// can, rarely, leave text that NFKC would change again (a base letter
	// meeting a combining mark), so repeat until the output is stable.
	src := text
	if norm.NFKC.QuickSpanString(src) != len(src) {
		n.it.InitString(norm.NFKC, src)
		n.tmp = n.drain(n.tmp[:0])
		src = view(n.tmp)
	}
	start := len(dst)
	dst = appendFolded(dst, src, p)
	for range 4 {
		out := dst[start:]
		if norm.NFKC.QuickSpan(out) == len(out) {
			break
		}
		n.it.Init(norm.NFKC, out)
		n.tmp2 = n.drain(n.tmp2[:0])
		dst = appendFolded(dst[:start], view(n.tmp2), p)
	}
	return dst
}

func (n *normalizer) drain(b []byte) []byte {
	for !n.it.Done() {
		b = append(b, n.it.Next()...)
	}
	return b
}

// isASCII reports whether s holds only 7-bit bytes, eight at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendASCII is the fast path: one table lookup per byte and no
// data-dependent branches (a word boundary every few bytes would defeat
// branch prediction).
func appendASCII(dst []byte, s string, m *[256]byte) []byte {
	start := len(dst)
	dst = slices.Grow(dst, len(s))
	out := dst[start : start+len(s)]
	// After i input bytes at most i output bytes are written, so every
	// index below is in range.
	n, prevSep := 0, 1
	for i := 0; i < len(s); i++ {
		c := m[s[i]]
		keep := b2i(c != 0)
		out[n] = ' '
		n += keep & prevSep & b2i(n > 0)
		out[n] = c
		n += keep
		prevSep = keep ^ 1
	}
	return dst[:start+n]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendFolded folds case, applies the punctuation policy and folds
// separators of NFKC text s.
func appendFolded(dst []byte, s string, p PunctPolicy) []byte {
	m := &asciiMap[p]
	start := len(dst)
	sep := false
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			i++
			if c = m[c]; c == 0 {
				sep = true
				continue
			}
			if sep {
				if len(dst) > start {
					dst = append(dst, ' ')
				}
				sep = false
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.IsSpace(r), unicode.IsControl(r):
			sep = true
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		case p == PunctStrip && (r == utf8.RuneError || unicode.IsPunct(r) || unicode.IsSymbol(r)):
			sep = true
			continue
		}
		r = unicode.ToLower(unicode.ToUpper(r))
		if r < utf8.RuneSelf {
			// Folding can land in ASCII (U+0130 folds to "i").
			if m[r] == 0 {
				sep = true
				continue
			}
		}
		if sep {
			if len(dst) > start {
				dst = append(dst, ' ')
			}
			sep = false
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// view returns b as a string without copying; b must not change while the
// string is in use.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
