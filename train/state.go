package train

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// ErrState is wrapped by every error decoding a learner state.
var ErrState = errors.New("train: bad learner state")

const (
	stateMagic   = "THRL"
	stateVersion = 2 // 2 added the lexicon; 1 is read with an empty one
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type stateWriter struct{ b []byte }

func (w *stateWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *stateWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *stateWriter) bytes(p []byte) {
	w.u64(uint64(len(p)))
	w.b = append(w.b, p...)
}
func (w *stateWriter) f32s(p []float32) {
	w.u64(uint64(len(p)))
	for _, v := range p {
		w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v))
	}
}
func (w *stateWriter) u64s(p []uint64) {
	w.u64(uint64(len(p)))
	for _, v := range p {
		w.u64(v)
	}
}
func (w *stateWriter) i64s(p []int64) {
	w.u64(uint64(len(p)))
	for _, v := range p {
		w.u64(uint64(v))
	}
}
func (w *stateWriter) u32s(p []uint32) {
	w.u64(uint64(len(p)))
	for _, v := range p {
		w.u32(v)
	}
}

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrState, fmt.Sprintf(format, args...))
	}
}

func (r *stateReader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s: %d bytes needed, %d left", what, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *stateReader) u32(what string) uint32 {
	p := r.take(4, what)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (r *stateReader) u64(what string) uint64 {
	p := r.take(8, what)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// count reads a length and checks it against want (-1: any) and against
// the bytes left at elem bytes per item.
func (r *stateReader) count(want int, elem uint64, what string) int {
	n := r.u64(what)
	if r.err != nil {
		return 0
	}
	if want >= 0 && n != uint64(want) {
		r.fail("%s: %d items, want %d", what, n, want)
		return 0
	}
	if n > uint64(len(r.b))/elem {
		r.fail("%s: %d items do not fit in %d bytes", what, n, len(r.b))
		return 0
	}
	return int(n)
}

// f32s reads exactly len(dst) floats into dst.
func (r *stateReader) f32s(dst []float32, what string) {
	n := r.count(len(dst), 4, what)
	p := r.take(uint64(n)*4, what)
	if p == nil {
		return
	}
	for i := range dst[:n] {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[i*4:]))
	}
}

// f32sAny reads a float slice of any length (0 gives nil).
func (r *stateReader) f32sAny(what string) []float32 {
	n := r.count(-1, 4, what)
	if r.err != nil || n == 0 {
		return nil
	}
	dst := make([]float32, n)
	p := r.take(uint64(n)*4, what)
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[i*4:]))
	}
	return dst
}

func (r *stateReader) u32s(dst []uint32, what string) {
	n := r.count(len(dst), 4, what)
	p := r.take(uint64(n)*4, what)
	for i := range dst[:n] {
		dst[i] = binary.LittleEndian.Uint32(p[i*4:])
	}
}

func (r *stateReader) u64s(dst []uint64, what string) {
	n := r.count(len(dst), 8, what)
	p := r.take(uint64(n)*8, what)
	for i := range dst[:n] {
		dst[i] = binary.LittleEndian.Uint64(p[i*8:])
	}
}

func (r *stateReader) i64s(dst []int64, what string) {
	n := r.count(len(dst), 8, what)
	p := r.take(uint64(n)*8, what)
	for i := range dst[:n] {
		dst[i] = int64(binary.LittleEndian.Uint64(p[i*8:]))
	}
}

// MarshalBinary encodes everything a learner needs to resume
// bit-identically; see the package documentation for the format.
func (l *Learner) MarshalBinary() ([]byte, error) {
	l.stepMu.Lock()
	defer l.stepMu.Unlock()
	l.mu.RLock()
	defer l.mu.RUnlock()
	c := l.cfg
	c.Workers = 0
	cj, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("train: encode config: %w", err)
	}
	size := 64 + len(cj) + 4*(3*len(l.emb)+2*len(l.mlm.out)+len(l.lex.df)) + 8*len(l.keySync) + 4*l.queue.cap*(l.queue.dim+6)
	w := &stateWriter{b: make([]byte, 0, size)}
	w.b = append(w.b, stateMagic...)
	w.u32(stateVersion)
	w.bytes(cj)
	// The online encoder first: LoadEncoder reads only this far.
	w.f32s(l.emb)
	for _, p := range l.online.params() {
		w.f32s(p)
	}
	// The stream's term statistics (the lexical channel).
	w.u64(l.lex.docs.Load())
	w.u32s(l.lex.df)
	// Counters.
	w.u64(uint64(l.step))
	w.u64(uint64(l.micro))
	w.u64(uint64(l.seen))
	w.u64(l.rng.s)
	// Momentum encoder.
	w.f32s(l.keyEmb)
	w.i64s(l.keySync)
	for _, p := range l.key.params() {
		w.f32s(p)
	}
	// Optimiser state and accumulated gradients.
	w.f32s(l.embAcc)
	for k := 0; k < 4; k++ {
		w.f32s(l.opt.m[k])
		w.f32s(l.opt.v[k])
		w.f32s(l.grads[k])
	}
	w.f32s(l.mlm.out)
	w.f32s(l.mlm.outAcc)
	writeSparse(w, &l.embGrad)
	writeSparse(w, &l.mlm.outGrad)
	// Queue.
	q := &l.queue
	w.u64(uint64(q.n))
	w.u64(uint64(q.head))
	w.f32s(q.buf[:q.cap*q.dim])
	w.u64s(q.cluster)
	w.u64s(q.record)
	w.i64s(q.enq)
	// Health sample.
	h := &l.health
	w.u64(uint64(h.n))
	w.u64(uint64(h.pos))
	w.f32s(h.q)
	w.f32s(h.k)
	w.u32(crc32.Checksum(w.b, castagnoli))
	return w.b, nil
}

// writeSparse writes accumulated row gradients in ascending row order, so
// the bytes do not depend on the worker count.
func writeSparse(w *stateWriter, s *sparseGrad) {
	type ref struct {
		r     uint32
		shard int
		idx   int
	}
	var all []ref
	for k := range s.shards {
		for i, r := range s.shards[k].rows {
			all = append(all, ref{r, k, i})
		}
	}
	sortRows(len(all), func(i int) uint32 { return all[i].r }, func(i, j int) { all[i], all[j] = all[j], all[i] })
	rows := make([]uint32, len(all))
	grads := make([]float32, 0, len(all)*s.dim)
	for i, a := range all {
		rows[i] = a.r
		grads = append(grads, s.shards[a.shard].grad[a.idx*s.dim:(a.idx+1)*s.dim]...)
	}
	w.u32s(rows)
	w.f32s(grads)
}

func readSparse(r *stateReader, s *sparseGrad, rowsMax int, workers int, what string) {
	n := r.count(-1, 4, what+" rows")
	rows := make([]uint32, 0, n)
	p := r.take(uint64(n)*4, what+" rows")
	for i := 0; i < n && p != nil; i++ {
		v := binary.LittleEndian.Uint32(p[i*4:])
		if int(v) >= rowsMax || (i > 0 && v <= rows[i-1]) {
			r.fail("%s: row %d out of range or order", what, v)
			return
		}
		rows = append(rows, v)
	}
	grads := make([]float32, n*s.dim)
	r.f32s(grads, what+" gradients")
	if r.err != nil {
		return
	}
	for i := range s.shards {
		s.reset(i)
	}
	s.shards = make([]gradShard, workers)
	for i, row := range rows {
		k := int(row) % workers
		s.add(&s.shards[k], row, 1, grads[i*s.dim:(i+1)*s.dim])
	}
}

// readLexicon decodes the term statistics into x (sized for the
// configuration).
func readLexicon(r *stateReader, x *lexicon) {
	docs := r.u64("lexicon documents")
	r.u32s(x.df, "lexicon document frequencies")
	for _, d := range x.df {
		if uint64(d) > docs {
			r.fail("lexicon document frequency %d over %d documents", d, docs)
			break
		}
	}
	x.docs.Store(docs)
}

// readHeader checks the checksum, magic and version and decodes the config.
func readHeader(data []byte) (*stateReader, Config, uint32, error) {
	var cfg Config
	if len(data) < 12 {
		return nil, cfg, 0, fmt.Errorf("%w: %d bytes is too short", ErrState, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, cfg, 0, fmt.Errorf("%w: checksum %08x, want %08x (truncated or corrupt)", ErrState, got, sum)
	}
	if string(body[:4]) != stateMagic {
		return nil, cfg, 0, fmt.Errorf("%w: not a learner state (magic %q)", ErrState, body[:4])
	}
	r := &stateReader{b: body[4:]}
	v := r.u32("version")
	if r.err == nil && (v < 1 || v > stateVersion) {
		return nil, cfg, v, fmt.Errorf("%w: format version %d, this build reads 1 to %d (a newer build wrote it?)", ErrState, v, stateVersion)
	}
	n := r.count(-1, 1, "config")
	cj := r.take(uint64(n), "config")
	if r.err != nil {
		return nil, cfg, v, r.err
	}
	if err := json.Unmarshal(cj, &cfg); err != nil {
		return nil, cfg, v, fmt.Errorf("%w: config: %v", ErrState, err)
	}
	cfg.Workers = 1
	if v == 1 {
		// Version 1 predates the lexical channel: its term statistics
		// start empty, at the default width.
		cfg.LexBuckets, cfg.LexWeight = DefaultLexBuckets, DefaultLexWeight
	}
	if err := cfg.Validate(); err != nil {
		return nil, cfg, v, fmt.Errorf("%w: %v", ErrState, err)
	}
	return r, cfg, v, nil
}

// LoadEncoder decodes the online encoder from a learner state written by
// MarshalBinary.
func LoadEncoder(blob []byte) (*Encoder, error) {
	r, cfg, v, err := readHeader(blob)
	if err != nil {
		return nil, err
	}
	weights := uint64(cfg.Buckets)*uint64(cfg.EmbedDim) + uint64(cfg.EmbedDim+1)*uint64(cfg.HiddenDim) +
		uint64(cfg.HiddenDim+1)*uint64(cfg.OutDim)
	if weights*4 > uint64(len(blob)) {
		return nil, fmt.Errorf("%w: %d weights do not fit in %d bytes", ErrState, weights, len(blob))
	}
	e := &Encoder{cfg: cfg, emb: make([]float32, cfg.Buckets*cfg.EmbedDim), lex: newLexicon(cfg.LexBuckets)}
	e.online = newMLP(cfg.EmbedDim, cfg.HiddenDim, cfg.OutDim, cfg.Activation == ActivationGELU)
	r.f32s(e.emb, "embedding table")
	for i, p := range e.online.params() {
		r.f32s(p, fmt.Sprintf("mlp parameter %d", i))
	}
	if v >= 2 {
		readLexicon(r, e.lex)
	}
	if r.err != nil {
		return nil, r.err
	}
	return e, nil
}

// UnmarshalBinary restores a state written by MarshalBinary. The receiver
// must have been built by NewLearner with the same model fields (buckets,
// dimensions, n-gram ranges, queue size, ...; ErrState otherwise); its
// other settings (learning rates, weights, Workers, ...) stay in force, so a
// resumed run may change them. On error the learner is unchanged.
func (l *Learner) UnmarshalBinary(data []byte) error {
	r, bc, v, err := readHeader(data)
	if err != nil {
		return err
	}
	l.stepMu.Lock()
	defer l.stepMu.Unlock()
	if err := l.cfg.modelCompatible(&bc); err != nil {
		return err
	}
	// Decode into a fresh learner, then swap it in.
	n := &Learner{cfg: l.cfg}
	n.alloc()
	c := &n.cfg
	r.f32s(n.emb, "embedding table")
	for i, p := range n.online.params() {
		r.f32s(p, fmt.Sprintf("mlp parameter %d", i))
	}
	if v >= 2 {
		readLexicon(r, n.lex)
	}
	step := int64(r.u64("step"))
	micro := r.u64("micro")
	seen := int64(r.u64("examples"))
	n.rng.s = r.u64("rng")
	if r.err == nil && (step < 0 || seen < 0 || micro >= uint64(max(c.AccumSteps, bc.AccumSteps))) {
		r.fail("counters out of range (step %d, micro %d, examples %d)", step, micro, seen)
	}
	n.step, n.micro, n.seen = step, int(micro), seen
	r.f32s(n.keyEmb, "momentum table")
	r.i64s(n.keySync, "momentum sync steps")
	for _, s := range n.keySync {
		if s < 0 || s > step {
			r.fail("momentum sync step %d out of range", s)
			break
		}
	}
	for i, p := range n.key.params() {
		r.f32s(p, fmt.Sprintf("momentum mlp parameter %d", i))
	}
	r.f32s(n.embAcc, "embedding accumulators")
	for k := 0; k < 4; k++ {
		r.f32s(n.opt.m[k], "adam m")
		r.f32s(n.opt.v[k], "adam v")
		r.f32s(n.grads[k], "gradients")
	}
	out := r.f32sAny("output table")
	outAcc := r.f32sAny("output accumulators")
	if out != nil {
		if len(out) != c.MLMBuckets*c.OutDim || (c.EmbedOptimizer == EmbedAdagrad) != (len(outAcc) == len(out)) ||
			(c.EmbedOptimizer == EmbedSGD && outAcc != nil) {
			r.fail("output table of %d floats (accumulators %d) does not fit the configuration", len(out), len(outAcc))
		}
		n.mlm.ensure()
		n.mlm.out, n.mlm.outAcc = out, outAcc
	} else if outAcc != nil {
		r.fail("output accumulators without an output table")
	}
	readSparse(r, &n.embGrad, c.Buckets, c.Workers, "embedding gradients")
	if n.mlm.out != nil {
		readSparse(r, &n.mlm.outGrad, c.MLMBuckets, c.Workers, "output gradients")
	} else {
		readSparse(r, &n.mlm.outGrad, 0, c.Workers, "output gradients")
	}
	q := &n.queue
	qn, qh := r.u64("queue length"), r.u64("queue head")
	if r.err == nil && (qn > uint64(q.cap) || qh >= uint64(max(q.cap, 1)) || (qn < uint64(q.cap) && qh != 0)) {
		r.fail("queue length %d, head %d do not fit capacity %d", qn, qh, q.cap)
	}
	q.n, q.head = int(qn), int(qh)
	r.f32s(q.buf[:q.cap*q.dim], "queue keys")
	r.u64s(q.cluster, "queue clusters")
	r.u64s(q.record, "queue records")
	r.i64s(q.enq, "queue steps")
	h := &n.health
	hn, hp := r.u64("health length"), r.u64("health position")
	if r.err == nil && (hn > uint64(h.cap) || hp >= uint64(h.cap)) {
		r.fail("health sample length %d, position %d do not fit capacity %d", hn, hp, h.cap)
	}
	h.n, h.pos = int(hn), int(hp)
	r.f32s(h.q, "health anchors")
	r.f32s(h.k, "health keys")
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emb, l.keyEmb, l.keySync, l.embAcc = n.emb, n.keyEmb, n.keySync, n.embAcc
	l.online, l.key, l.opt = n.online, n.key, n.opt
	l.mlm.out, l.mlm.outAcc, l.mlm.outGrad = n.mlm.out, n.mlm.outAcc, n.mlm.outGrad
	l.grads, l.embGrad, l.micro = n.grads, n.embGrad, n.micro
	l.queue, l.health, l.rng, l.step, l.seen, l.powM = n.queue, n.health, n.rng, n.step, n.seen, n.powM
	l.lex = n.lex
	return nil
}
