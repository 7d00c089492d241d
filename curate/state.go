package curate

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// stateVersion is the format version of the committed state. Version 1
// held the dedup index inline in every state; version 2 names the window of
// the last saved index object (indexDir) and replays the windows after it.
// Both are read.
const stateVersion = 2

// ErrState is wrapped by every error about a committed state object.
var ErrState = errors.New("curate: bad committed state")

// state is what curate commits with each window's output: where it is in
// every raw partition, and the state of everything that carries over from
// one record to the next (dedup index, target model, difficulty moments).
type state struct {
	Version int
	Seq     int64            // the last committed window
	Cursor  map[string]int64 // "topic/partition" -> next raw offset
	Records int64            // input records curated so far
	// IndexSeq is the window whose end the saved dedup index object
	// reflects (0: the empty index); IndexRecords is Records then. A load
	// replays the windows after IndexSeq through the index.
	IndexSeq     int64
	IndexRecords int64
	Dedup        []byte // version 1 only: the index inline
	Target       []byte
	Difficulty   *difficulty
}

// stateMagic starts every state object. The format: the magic, then three
// length-prefixed (uvarint) parts: the gob of the state without its two
// large blobs, the dedup index, the target model. The blobs stay out of gob
// so that they are not copied again.
const stateMagic = "thresher-curate-state\n"

func (s *state) encode() ([]byte, error) {
	head, err := s.encodeHead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(stateMagic)+3*binary.MaxVarintLen64+len(head)+len(s.Dedup)+len(s.Target))
	out = append(out, stateMagic...)
	for _, part := range [][]byte{head, s.Dedup, s.Target} {
		out = binary.AppendUvarint(out, uint64(len(part)))
		out = append(out, part...)
	}
	return out, nil
}

// encodeHead returns the gob of the state without its two large blobs.
func (s *state) encodeHead() ([]byte, error) {
	head := *s
	head.Dedup, head.Target = nil, nil
	var hb bytes.Buffer
	if err := gob.NewEncoder(&hb).Encode(&head); err != nil {
		return nil, fmt.Errorf("curate: encoding state: %w", err)
	}
	return hb.Bytes(), nil
}

func decodeState(data []byte) (*state, error) {
	rest, ok := bytes.CutPrefix(data, []byte(stateMagic))
	if !ok {
		return nil, fmt.Errorf("%w: not a curate state object", ErrState)
	}
	var parts [3][]byte
	for i := range parts {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, fmt.Errorf("%w: truncated", ErrState)
		}
		parts[i], rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrState, len(rest))
	}
	var s state
	if err := gob.NewDecoder(bytes.NewReader(parts[0])).Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	s.Dedup, s.Target = parts[1], parts[2]
	if s.Version == 1 {
		// The index is inline: it reflects the state's own window.
		s.IndexSeq, s.IndexRecords = s.Seq, s.Records
	} else if len(s.Dedup) != 0 {
		return nil, fmt.Errorf("%w: version %d state holds an inline index", ErrState, s.Version)
	}
	if s.Version != 1 && s.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrState, s.Version, stateVersion)
	}
	if s.Cursor == nil {
		s.Cursor = map[string]int64{}
	}
	if s.Difficulty == nil || len(s.Difficulty.Hist) != histBins {
		return nil, fmt.Errorf("%w: no difficulty histogram", ErrState)
	}
	return &s, nil
}

// plan is the immutable list of raw offsets one window reads, written
// before its output so that a redo after a crash reads exactly the same.
// It names offsets, not segments: a compaction may replace the segments
// that held them by a merged one before the window is redone or replayed.
type plan struct {
	Seq int64
	// Segments, raw segment keys in processing order, is how plans written
	// before Ranges named their offsets: each key's range. Still read.
	Segments []string
	Ranges   []planRange // offsets read, in processing order
}

// planRange is offsets First to Last, inclusive, of one raw partition.
type planRange struct {
	Topic       string
	Partition   int32
	First, Last int64
}

func (r planRange) len() int64 { return r.Last - r.First + 1 }

// ranges returns the offsets the plan reads, in order.
func (p *plan) ranges() ([]planRange, error) {
	out := append([]planRange(nil), p.Ranges...)
	for _, key := range p.Segments {
		table, topic, part, r, err := lake.ParseSegmentKey(key)
		if err != nil || table != schemas.TableRaw {
			return nil, fmt.Errorf("%w: plan %d names %q, not a raw segment", ErrState, p.Seq, key)
		}
		out = append(out, planRange{Topic: topic, Partition: part, First: r.First, Last: r.Last})
	}
	return out, nil
}

func (p *plan) encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodePlan(data []byte) (*plan, error) {
	var p plan
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: plan: %v", ErrState, err)
	}
	return &p, nil
}
