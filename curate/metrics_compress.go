package curate

import (
	"math"
	"math/bits"
	"strings"
)

// EstimateCompressedSize estimates the size in bytes of text compressed
// alone, as one frame, by zstd at its default level (klauspost/compress
// zstd.SpeedDefault, which follows the reference library's level 3), frame
// header and checksum included, without compressing it. Metrics.
// CompressionRatio is len(text) over this estimate.
//
// The estimate models what zstd does on a single block:
//
//   - an LZ77 greedy parse with a hash table of the last position of each
//     4-byte prefix (as zstd's fast strategies), taking matches of 5 bytes
//     or more (zstd's minimum at its default level) anywhere earlier in the
//     text, extended forward;
//   - the literals (bytes not covered by a match) priced at their order-0
//     entropy, as zstd's Huffman coding does, plus an estimate of the
//     Huffman table description, or stored raw when that is cheaper or
//     there are 16 literals or fewer;
//   - each match (a zstd sequence) priced at 11 bits for its three codes
//     plus the extra bits of its offset and of long lengths;
//   - the frame overhead (magic, frame header, block header, checksum), and
//     the block stored raw when there is no match or the matches cover less
//     than 16 bytes plus 1/64 of the text (klauspost's rule), or when
//     compression would not pay; an RLE block for one byte repeated.
//
// The prices were fitted on the real stream, where the estimate's Spearman
// rank correlation with the real zstd ratio is 0.99 (0.95 or more within
// bands of similar length), its mean relative error on the size 2%, and
// 96% of the texts zstd stores raw are estimated to the byte
// (TestCompressionEstimateRealCorrelation).
func EstimateCompressedSize(text string) int {
	var e lzEstimator
	return e.estimate(text)
}

// Parameters of the estimate, calibrated on the real stream against
// klauspost/compress zstd.SpeedDefault.
const (
	lzHashBits = 12
	lzMinMatch = 5 // as zstd's default level (dfast) asks
	// frameOverhead: magic (4), frame header descriptor (1), block header
	// (3), checksum (4); the content size field (1, 2 or 4 bytes) comes on
	// top.
	frameOverhead = 12
	// rawLiteralsHeader and huffLiteralsHeader: the literals section
	// header, stored and Huffman coded; huffTableBase and huffTableBits
	// price the Huffman table description per distinct literal byte.
	rawLiteralsHeader  = 1
	huffLiteralsHeader = 3
	huffTableBase      = 10
	huffTableBits      = 6
	// seqBits are the FSE-coded bits of one sequence's three codes;
	// seqHeader is the sequences section header when there are matches.
	seqBits   = 11
	seqHeader = 2
)

// lzEstimator holds the scratch of the estimate. The hash table holds
// positions plus base, so that raising base past the last text empties it
// without clearing.
type lzEstimator struct {
	table   [1 << lzHashBits]uint32
	base    uint32
	lit     [256]uint32
	matches []int32 // start, end of each match
}

func lzLoad32(s string, i int) uint32 {
	_ = s[i+3]
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func lzHash(v uint32) uint32 { return (v * 2654435761) >> (32 - lzHashBits) }

// findMatch scans s from i for the next position whose 5 bytes occurred at
// the position the hash table remembers, indexing every position it passes,
// and returns it with the position of the earlier occurrence; or len(s).
// It is the hot loop of the estimate, kept apart so that its few variables
// stay in registers.
func (e *lzEstimator) findMatch(s string, i int, base uint32) (int, int) {
	t := &e.table
	for ; i+lzMinMatch <= len(s); i++ {
		v := lzLoad32(s, i)
		h := lzHash(v)
		cand := t[h]
		t[h] = base + uint32(i) + 1
		if cand > base {
			c := int(cand - base - 1)
			if lzLoad32(s, c) == v && s[c+4] == s[i+4] {
				return i, c
			}
		}
	}
	return len(s), 0
}

// estimate returns the estimated compressed size of s, at least 1.
func (e *lzEstimator) estimate(s string) int {
	n := len(s)
	if n == 0 {
		return 9 // magic, header and an empty last block: no checksum
	}
	fcs := 1
	if n >= 256 {
		fcs = 2
	}
	if n >= 65536+256 {
		fcs = 4
	}
	if strings.Count(s[:min(n, 8)], s[:1]) == min(n, 8) && strings.Count(s, s[:1]) == n {
		return frameOverhead + fcs + 1 // one byte repeated: an RLE block
	}
	if uint64(e.base)+uint64(n)+1 >= math.MaxUint32 {
		e.table = [1 << lzHashBits]uint32{}
		e.base = 0
	}
	base := e.base
	e.base += uint32(n) + 1

	// Parse, remembering where the matches are: the literals' histogram
	// is needed only when the block is not stored raw. Long texts count
	// their literals as they go instead, so that memory stays bounded.
	var seqExtraBits, matched, seqs int
	matches := e.matches[:0]
	inline := n > 1<<12
	anchor := 0
	for i := 0; ; {
		var c int
		if i, c = e.findMatch(s, i, base); i == n {
			break
		}
		l := lzMinMatch
		for i+l < n && s[c+l] == s[i+l] {
			l++
		}
		if inline {
			for _, b := range []byte(s[anchor:i]) {
				e.lit[b]++
			}
		} else {
			matches = append(matches, int32(i), int32(i+l))
		}
		seqs++
		matched += l
		seqExtraBits += bits.Len(uint(i-c)+3) - 1 + lenExtraBits(l-3) + lenExtraBits(i-anchor)
		// Index the positions inside the match, so that a repeat of its
		// end can be found.
		for k := i + 1; k < i+l && k+4 <= n; k++ {
			e.table[lzHash(lzLoad32(s, k))] = base + uint32(k) + 1
		}
		i += l
		anchor = i
	}
	e.matches = matches
	if inline {
		for _, b := range []byte(s[anchor:]) {
			e.lit[b]++
		}
	}
	// zstd stores a block raw when it found no match, or when the matches
	// save less than 16 bytes plus 1/64 of the block.
	if seqs == 0 || matched-n>>6 < 16 {
		if inline {
			e.lit = [256]uint32{}
		}
		return frameOverhead + fcs + n
	}
	nLit := n - matched
	var sum float64
	distinct := 0
	if nLit > 16 || inline {
		from := 0
		for k := 0; !inline && k <= len(matches); k += 2 {
			to := n
			if k < len(matches) {
				to = int(matches[k])
			}
			for _, c := range []byte(s[from:to]) {
				e.lit[c]++
			}
			if k < len(matches) {
				from = int(matches[k+1])
			}
		}
		for b, c := range e.lit {
			if c != 0 {
				sum += xlog2x(c)
				distinct++
				e.lit[b] = 0
			}
		}
	}
	lits := rawLiteralsHeader + nLit
	if distinct == 1 {
		lits = 2 // one byte repeated: RLE literals
	} else if nLit > 16 {
		// Huffman coding, when it beats storing the literals.
		huff := huffLiteralsHeader + huffTableBase + huffTableBits*float64(distinct)/8 +
			(float64(nLit)*math.Log2(float64(nLit))-sum)/8
		if h := int(math.Ceil(huff)); h < lits {
			lits = h
		}
	}
	block := lits + seqHeader + (seqs*seqBits+seqExtraBits+7)/8
	return frameOverhead + fcs + min(block, n)
}

// lenExtraBits returns the extra bits zstd spends beside the code of a
// literal or match length of n (about none below 16, then log2).
func lenExtraBits(n int) int {
	if n < 16 {
		return 0
	}
	return bits.Len(uint(n)) - 3
}
