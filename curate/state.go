package curate

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
)

// stateVersion is the format version of the committed state.
const stateVersion = 1

// ErrState is wrapped by every error about a committed state object.
var ErrState = errors.New("curate: bad committed state")

// state is what curate commits with each window's output: where it is in
// every raw partition, and the state of everything that carries over from
// one record to the next (dedup index, target model, difficulty moments).
type state struct {
	Version    int
	Seq        int64            // the last committed window
	Cursor     map[string]int64 // "topic/partition" -> next raw offset
	Records    int64            // input records curated so far
	Dedup      []byte
	Target     []byte
	Difficulty *difficulty
}

func (s *state) encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("curate: encoding state: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeState(data []byte) (*state, error) {
	var s state
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if s.Version != stateVersion {
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

// plan is the immutable list of raw segments one window reads, written
// before its output so that a redo after a crash reads exactly the same.
type plan struct {
	Seq      int64
	Segments []string // raw segment keys, in processing order
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
