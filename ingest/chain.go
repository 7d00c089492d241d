package ingest

import (
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/thresher-ml/thresher/schemas"
)

// piece is a run of consecutive offsets of a partition with their rows: what
// one raw segment and at most one dlq segment hold, or, for a gap, one gaps
// segment. It owns a reference to each of its batches. Spans become pieces
// in the committer, which joins and splits them along the partition's
// claims (see partition.commit); a gap piece is never joined.
type piece struct {
	first, last int64
	gap         bool // offsets the broker no longer had: no rows
	raw, dlq    []arrow.RecordBatch
	reasons     map[string]int64 // DLQ reasons of the malformed records
	bytes       int64            // value bytes of the records
}

var (
	rawOffsetCol = schemas.RawSchema.FieldIndices("offset")[0]
	dlqOffsetCol = schemas.DLQSchema.FieldIndices("offset")[0]
)

// pieceOf returns a piece of a span, retaining its batches.
func pieceOf(s *span) *piece {
	p := &piece{first: s.first, last: s.last, reasons: map[string]int64{}, bytes: s.bytes}
	if s.gap {
		p.gap = true
		return p
	}
	s.raw.Retain()
	p.raw = []arrow.RecordBatch{s.raw}
	if s.dlq != nil {
		s.dlq.Retain()
		p.dlq = []arrow.RecordBatch{s.dlq}
	}
	for r, n := range s.dlqReasons {
		p.reasons[r] = n
	}
	return p
}

// join appends next, which must start where p ends, to p and returns p.
func (p *piece) join(next *piece) *piece {
	p.last = next.last
	p.raw = append(p.raw, next.raw...)
	p.dlq = append(p.dlq, next.dlq...)
	for r, n := range next.reasons {
		p.reasons[r] += n
	}
	p.bytes += next.bytes
	return p
}

// split cuts p after offset last (p.first <= last <= p.last): head holds
// offsets p.first..last, tail (nil when last == p.last) the rest. p is
// consumed. The reasons and bytes of the whole piece go with head.
func (p *piece) split(last int64) (head, tail *piece) {
	if last >= p.last {
		return p, nil
	}
	head = &piece{first: p.first, last: last, gap: p.gap, reasons: p.reasons, bytes: p.bytes}
	tail = &piece{first: last + 1, last: p.last, gap: p.gap, reasons: map[string]int64{}}
	head.raw, tail.raw = splitBatches(p.raw, rawOffsetCol, last)
	head.dlq, tail.dlq = splitBatches(p.dlq, dlqOffsetCol, last)
	return head, tail
}

// splitBatches splits batches of rows in offset order into the rows at or
// below last and the rows above. References move to the result.
func splitBatches(batches []arrow.RecordBatch, col int, last int64) (below, above []arrow.RecordBatch) {
	for _, b := range batches {
		offs := b.Column(col).(*array.Int64).Int64Values()
		n := sort.Search(len(offs), func(i int) bool { return offs[i] > last })
		switch {
		case n == len(offs):
			below = append(below, b)
		case n == 0:
			above = append(above, b)
		default:
			below = append(below, b.NewSlice(0, int64(n)))
			above = append(above, b.NewSlice(int64(n), int64(len(offs))))
			b.Release()
		}
	}
	return below, above
}

// numRows returns the rows of batches.
func numRows(batches []arrow.RecordBatch) int64 {
	var n int64
	for _, b := range batches {
		n += b.NumRows()
	}
	return n
}

func (p *piece) release() {
	if p == nil {
		return
	}
	for _, b := range p.raw {
		b.Release()
	}
	for _, b := range p.dlq {
		b.Release()
	}
	p.raw, p.dlq = nil, nil
}
