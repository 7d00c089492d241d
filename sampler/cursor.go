package sampler

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// Cursor format, version 2 (all integers unsigned varints unless said):
//
//	magic        "TSMC" (4 bytes), then version
//	config       fingerprint of the Config (8 bytes, little endian)
//	started      1 if the first load happened
//	window       newest window loaded; records: records loaded from windows 1..window
//	batches, examples, replayed, epoch
//	rng          length, then the PCG state (rand.PCG.MarshalBinary)
//	queues       count, then per (domain, stage) queue: domain (length, bytes),
//	             stage, epoch, consumed (0/1), last key (8 bytes LE), last seq
//	ring         length, next slot, then the seq of each record (load order)
//	emitted      count, then per domain: domain (length, bytes), examples
//	histograms   33 word-entropy bins, 12 length bins
//	recent       count, then per domain: domain (length, bytes), share
//	             (float64 bits, 8 bytes LE); version 2 only
//	crc          CRC-32C of everything before it (4 bytes, little endian)
//
// Pool, reservoir and queue members are not stored: they are functions of
// the windows loaded, rebuilt by reading windows 1..window again. Version 1
// (no recent shares) is still read: the shares start empty.
const (
	cursorMagic   = "TSMC"
	cursorVersion = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (c *Config) fingerprint() uint64 {
	x := *c
	x.Poll = 0
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", x) // fmt prints maps sorted by key
	return h.Sum64()
}

// Cursor returns the sampler's state after the last batch Next returned:
// Restore on a fresh Sampler over the same lake continues with the batch
// that would have come next.
func (s *Sampler) Cursor() ([]byte, error) {
	b := []byte(cursorMagic)
	b = binary.AppendUvarint(b, cursorVersion)
	b = binary.LittleEndian.AppendUint64(b, s.cfg.fingerprint())
	started := uint64(0)
	if s.started {
		started = 1
	}
	b = binary.AppendUvarint(b, started)
	for _, v := range []int64{s.window, s.nextSeq, s.batches, s.examples, s.replayed, s.epoch} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	st, err := s.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b = appendBytes(b, st)
	var qs []*queue
	for _, d := range s.order {
		for _, q := range d.queues {
			if q != nil {
				qs = append(qs, q)
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(qs)))
	for _, q := range qs {
		b = appendBytes(b, []byte(q.domain))
		b = binary.AppendUvarint(b, uint64(q.stage))
		b = binary.AppendUvarint(b, uint64(q.epoch))
		consumed := uint64(0)
		if q.any {
			consumed = 1
		}
		b = binary.AppendUvarint(b, consumed)
		b = binary.LittleEndian.AppendUint64(b, q.lastH)
		b = binary.AppendUvarint(b, uint64(q.lastSeq))
	}
	b = binary.AppendUvarint(b, uint64(len(s.ring)))
	b = binary.AppendUvarint(b, uint64(s.ringNext))
	for _, r := range s.ring {
		b = binary.AppendUvarint(b, uint64(r.seq))
	}
	names := make([]string, 0, len(s.emitted))
	for k := range s.emitted {
		names = append(names, k)
	}
	sort.Strings(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendBytes(b, []byte(k))
		b = binary.AppendUvarint(b, uint64(s.emitted[k]))
	}
	for _, v := range s.entHist {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, v := range s.lenHist {
		b = binary.AppendUvarint(b, uint64(v))
	}
	names = slices.Sorted(maps.Keys(s.recent))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendBytes(b, []byte(k))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.recent[k]))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func appendBytes(b, x []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(x)))
	return append(b, x...)
}

type cursorReader struct {
	b   []byte
	err error
}

func (r *cursorReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCursor, what)
	}
}

func (r *cursorReader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or bad " + what)
		return 0
	}
	r.b = r.b[n:]
	if v > limit {
		r.fail(fmt.Sprintf("%s %d out of range", what, v))
		return 0
	}
	return v
}

func (r *cursorReader) int(what string) int64 { return int64(r.uvarint(what, math.MaxInt64)) }

func (r *cursorReader) fixed64(what string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("truncated " + what)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *cursorReader) bytes(what string, limit int) []byte {
	n := r.uvarint(what+" length", uint64(limit))
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.fail("truncated " + what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

type queueState struct {
	domain  string
	stage   int32
	epoch   int64
	any     bool
	lastH   uint64
	lastSeq int64
}

type cursorState struct {
	fingerprint                                         uint64
	started                                             bool
	window, records, batches, examples, replayed, epoch int64
	rng                                                 []byte
	queues                                              []queueState
	ring                                                []int64
	ringNext                                            int
	emitted                                             map[string]int64
	recent                                              map[string]float64
	ent                                                 [entBins]int64
	len                                                 [lenBins]int64
}

func decodeCursor(data []byte) (*cursorState, error) {
	if len(data) < len(cursorMagic)+4 || string(data[:len(cursorMagic)]) != cursorMagic {
		return nil, fmt.Errorf("%w: not a sampler cursor", ErrCursor)
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (torn or corrupt)", ErrCursor)
	}
	r := &cursorReader{b: body[len(cursorMagic):]}
	v := r.uvarint("version", math.MaxUint32)
	if r.err == nil && (v < 1 || v > cursorVersion) {
		return nil, fmt.Errorf("%w: version %d, this build reads 1 to %d", ErrCursor, v, cursorVersion)
	}
	c := &cursorState{emitted: map[string]int64{}, recent: map[string]float64{}}
	c.fingerprint = r.fixed64("config fingerprint")
	c.started = r.uvarint("started", 1) == 1
	c.window = r.int("window")
	c.records = r.int("records")
	c.batches = r.int("batches")
	c.examples = r.int("examples")
	c.replayed = r.int("replayed")
	c.epoch = r.int("epoch")
	c.rng = r.bytes("rng state", 64)
	nq := r.uvarint("queue count", uint64(len(r.b)))
	for i := uint64(0); i < nq && r.err == nil; i++ {
		var q queueState
		q.domain = string(r.bytes("domain", 1<<16))
		q.stage = int32(r.uvarint("stage", maxStage))
		q.epoch = r.int("queue epoch")
		q.any = r.uvarint("consumed", 1) == 1
		q.lastH = r.fixed64("last key")
		q.lastSeq = r.int("last seq")
		c.queues = append(c.queues, q)
	}
	nr := r.uvarint("ring length", uint64(min(len(r.b), 1<<22)))
	c.ringNext = int(r.uvarint("ring slot", max(nr, 1)-1))
	for i := uint64(0); i < nr && r.err == nil; i++ {
		c.ring = append(c.ring, r.int("ring seq"))
	}
	ne := r.uvarint("domain count", uint64(len(r.b)))
	for i := uint64(0); i < ne && r.err == nil; i++ {
		k := string(r.bytes("domain", 1<<16))
		c.emitted[k] = r.int("emitted")
	}
	for i := range c.ent {
		c.ent[i] = r.int("entropy bin")
	}
	for i := range c.len {
		c.len[i] = r.int("length bin")
	}
	if v >= 2 {
		nr := r.uvarint("recent count", uint64(len(r.b)))
		for i := uint64(0); i < nr && r.err == nil; i++ {
			k := string(r.bytes("domain", 1<<16))
			x := math.Float64frombits(r.fixed64("recent share"))
			if !(x >= 0 && x <= 1) {
				r.fail(fmt.Sprintf("recent share %v of %q", x, k))
			}
			c.recent[k] = x
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// Restore sets a fresh sampler (before its first Next) to the state of a
// cursor: it reads windows 1..window of the cursor again (so the lake must
// still hold them, unchanged) and the next batch is the one that followed
// the cursor. A cursor of another configuration is used, with a warning;
// only the same configuration continues bit for bit.
func (s *Sampler) Restore(cursor []byte) error {
	if s.started || s.batches > 0 || s.window > 0 {
		return ErrRestore
	}
	c, err := decodeCursor(cursor)
	if err != nil {
		return err
	}
	if c.fingerprint != s.cfg.fingerprint() {
		s.log.Warn("sampler: the cursor was taken under another configuration; batches will differ from an uninterrupted run")
	}
	pcg := *s.pcg
	if err := pcg.UnmarshalBinary(c.rng); err != nil {
		return fmt.Errorf("%w: rng state: %v", ErrCursor, err)
	}
	for _, q := range c.queues {
		if q.lastSeq >= c.records && q.any {
			return fmt.Errorf("%w: queue %q/%d points past the records loaded", ErrCursor, q.domain, q.stage)
		}
	}
	need := make(map[int64]*rec, len(c.ring))
	for _, seq := range c.ring {
		if seq >= c.records {
			return fmt.Errorf("%w: negative ring names record %d of %d", ErrCursor, seq, c.records)
		}
		need[seq] = nil
	}
	if !c.started {
		if c.window != 0 || c.batches != 0 {
			return fmt.Errorf("%w: not started but window %d, batches %d", ErrCursor, c.window, c.batches)
		}
		*s.pcg = pcg
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.catchUp(ctx, c.window, need); err != nil {
		s.reset()
		return err
	}
	if s.nextSeq != c.records {
		s.reset()
		return fmt.Errorf("%w: windows 1..%d hold %d records now, %d when the cursor was taken", ErrCursor, c.window, s.nextSeq, c.records)
	}
	ring := make([]*rec, 0, len(c.ring))
	for _, seq := range c.ring {
		ring = append(ring, need[seq])
	}
	next := c.ringNext
	if len(ring) > s.cfg.NegativePool { // keep the newest, oldest first
		n := len(ring)
		ordered := append(slices.Clone(ring[next:]), ring[:next]...)
		ring, next = ordered[n-s.cfg.NegativePool:], 0
	}
	for _, q := range c.queues {
		d := s.domain(q.domain)
		d.queue(q.stage, q.epoch).restore(s.cfg.Seed, q)
	}
	*s.pcg = pcg
	s.started = true
	s.batches, s.examples, s.replayed, s.epoch = c.batches, c.examples, c.replayed, c.epoch
	s.ring, s.ringNext = ring, next
	s.emitted = c.emitted
	s.recent = c.recent
	s.entHist, s.lenHist = c.ent, c.len
	s.lastPoll = time.Now()
	s.publish()
	return nil
}

// reset empties a sampler whose Restore failed, so it can start fresh.
func (s *Sampler) reset() {
	s.init()
	s.publish()
}

// restore sets a queue to a cursor's state: members keyed for its epoch,
// consumed up to the last key.
func (q *queue) restore(seed uint64, st queueState) {
	q.epoch = st.epoch
	q.reorder(seed)
	q.any, q.lastH, q.lastSeq = st.any, st.lastH, st.lastSeq
	q.seek()
	q.countUsed()
}
