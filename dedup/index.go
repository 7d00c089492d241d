package dedup

import (
	"cmp"
	"fmt"
	"unsafe"
)

// recRef is a RecordID with its topic interned.
type recRef struct {
	topic uint32
	part  int32
	off   int64
}

// entry is one distinct normal form the index remembers: the first record
// that had it and the cluster that record joined.
type entry struct {
	id, cluster recRef
}

// rep is a cluster representative (the survivor of its cluster): only
// representatives are in the LSH index.
type rep struct {
	entry  uint32 // entries index
	chunk  uint32 // the sketch is sketches.chunks[chunk][pos:pos+n]
	pos, n uint16
}

// generation is a slice of the index's history. Only the newest one grows;
// the oldest is dropped whole when the index is full.
type generation struct {
	entries  chunked[entry]
	exact    table[uint64] // exact key -> entries index
	reps     chunked[rep]
	sketches chunked[uint32]
	bands    table[uint32] // multimap: band key -> every rep with that key (in any band)
}

func (g *generation) sketch(r uint32) []uint32 {
	p := g.reps.at(r)
	return g.sketches.chunks[p.chunk][p.pos : p.pos+p.n : p.pos+p.n]
}

func (g *generation) addRep(e uint32, sketch []uint32) uint32 {
	ch, pos, dst := g.sketches.alloc(len(sketch))
	copy(dst, sketch)
	r := g.reps.len()
	_, _, slot := g.reps.alloc(1)
	slot[0] = rep{entry: e, chunk: ch, pos: uint16(pos), n: uint16(len(sketch))}
	return r
}

func (g *generation) addEntry(e entry) uint32 {
	i := g.entries.len()
	_, _, slot := g.entries.alloc(1)
	slot[0] = e
	return i
}

func (g *generation) bytes() int64 {
	return g.entries.bytes() + g.exact.bytes() + g.reps.bytes() + g.sketches.bytes() + g.bands.bytes()
}

// chunked is a growable array in chunks of at most chunkLen elements, so
// that growing never copies more than one chunk and memory stays within one
// chunk of what is used. A span of elements never straddles two chunks: when
// it does not fit in the last one, the next starts (for one-element spans,
// every chunk but the last is full, and index i is at chunk i>>chunkShift).
type chunked[T any] struct {
	chunks [][]T
	n      int // elements in use
}

const (
	chunkShift = 14
	chunkLen   = 1 << chunkShift
	chunkMask  = chunkLen - 1
)

func (c *chunked[T]) len() uint32 { return uint32(c.n) }

// at returns element i of a chunked array of one-element spans.
func (c *chunked[T]) at(i uint32) *T { return &c.chunks[i>>chunkShift][i&chunkMask] }

// alloc returns the chunk, the position and the storage of n (1 to
// chunkLen) new consecutive elements.
func (c *chunked[T]) alloc(n int) (chunk, pos uint32, dst []T) {
	last := len(c.chunks) - 1
	if last < 0 || len(c.chunks[last])+n > chunkLen {
		c.chunks = append(c.chunks, make([]T, 0, min(chunkLen, max(64, 2*n))))
		last++
	}
	ch := c.chunks[last]
	o := len(ch)
	if o+n > cap(ch) {
		grown := make([]T, o, min(chunkLen, max(2*cap(ch), o+n)))
		copy(grown, ch)
		ch = grown
	}
	ch = ch[:o+n]
	c.chunks[last] = ch
	c.n += n
	return uint32(last), uint32(o), ch[o:]
}

func (c *chunked[T]) bytes() int64 {
	var v T
	n := int64(cap(c.chunks)) * 24
	for _, ch := range c.chunks {
		n += int64(cap(ch)) * int64(unsafe.Sizeof(v))
	}
	return n
}

// Index decides, record by record, whether a record duplicates one seen
// before, and remembers it. The zero Index is ready to use with the default
// Config. An Index must not be used by two goroutines at once.
type Index struct {
	cfg    Config
	layout uint64
	signer *Signer
	sig    Signature // Add's scratch

	topics   []string
	topicIdx map[string]uint32
	gens     []*generation // oldest first

	added, unique, exact, near, evicted, verified int64

	// Per-query scratch: the candidates already verified, and the query's
	// sketch as a set.
	budget   int      // the most bucket entries one query reads
	seen     []uint64 // (generation, rep)+1 of the candidates, 0 when free
	seenIdx  []uint32 // their index in cands
	seenUsed []int
	cands    []candidate
	qset     u32set
}

// NewIndex returns an empty index for cfg (defaults filled in).
func NewIndex(cfg Config) (*Index, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ix := &Index{}
	ix.init(cfg)
	return ix, nil
}

func (ix *Index) init(cfg Config) {
	*ix = Index{
		cfg:      cfg,
		signer:   newSigner(cfg),
		topicIdx: map[string]uint32{},
	}
	ix.layout = ix.signer.layout
	ix.sizeSeen()
}

// sizeSeen sets the per-query candidate budget (every entry a query may
// read, which bounds its work) and starts the candidate set small: it grows
// with use, staying at most half full.
func (ix *Index) sizeSeen() {
	ix.budget = min(ix.cfg.Bands*ix.cfg.Generations*bucketDepth*ix.cfg.MaxCandidates, 1<<20)
	ix.seen, ix.seenIdx = make([]uint64, 64), make([]uint32, 64)
}

func (ix *Index) ready() {
	if ix.signer == nil {
		ix.init(DefaultConfig())
	}
}

// Config returns the configuration in use, defaults filled in.
func (ix *Index) Config() Config {
	ix.ready()
	return ix.cfg
}

// Signer returns a new Signer whose signatures AddSignature accepts.
func (ix *Index) Signer() *Signer {
	ix.ready()
	return newSigner(ix.cfg)
}

// Add decides about the record id with the given text, then remembers it.
// Records must be added in processing order (offset order within a
// partition): the first record of a cluster is its survivor. Add is
// deterministic: the same records in the same order give the same results,
// whether or not the index was saved and loaded between them.
func (ix *Index) Add(id RecordID, text string) Result {
	ix.ready()
	ix.signer.Sign(&ix.sig, text)
	return ix.AddSignature(id, &ix.sig)
}

// AddSignature is Add for a text already signed by a Signer made with the
// same Config (Index.Signer or NewSigner). It panics on a signature from a
// different Config: that is a programming error that would silently
// corrupt the index.
func (ix *Index) AddSignature(id RecordID, sig *Signature) Result {
	ix.ready()
	if sig.layout != ix.layout {
		panic(fmt.Sprintf("dedup: signature made with another Config (layout %x, index %x)", sig.layout, ix.layout))
	}
	ix.added++
	key := exactKey(sig.Exact)
	for gi := len(ix.gens) - 1; gi >= 0; gi-- {
		g := ix.gens[gi]
		if e, ok := g.exact.get(key); ok {
			ix.exact++
			en := g.entries.at(e)
			return Result{Decision: ExactDuplicate, ClusterID: ix.recordID(en.cluster),
				DupOf: ix.recordID(en.id), Similarity: 1}
		}
	}

	ref := ix.ref(id)
	g := ix.current()
	if gi, r, sim, ok := ix.nearest(sig); ok {
		bg := ix.gens[gi]
		en := *bg.entries.at(bg.reps.at(r).entry)
		g.exact.put(key, g.addEntry(entry{id: ref, cluster: en.cluster}))
		ix.near++
		return Result{Decision: NearDuplicate, ClusterID: ix.recordID(en.cluster),
			DupOf: ix.recordID(en.id), Similarity: sim}
	}

	e := g.addEntry(entry{id: ref, cluster: ref})
	g.exact.put(key, e)
	if len(sig.sketch) > 0 {
		r := g.addRep(e, sig.sketch)
		// A bucket is never read deeper than this: more entries would only
		// cost memory and insertion time (boilerplate keys collect many).
		depth := bucketDepth * ix.cfg.MaxCandidates
		for _, k := range sig.bands {
			g.bands.insert(k, r, depth)
		}
	}
	ix.unique++
	return Result{Decision: Unique, ClusterID: id}
}

// exactKey maps an exact hash to a table key (0 marks an empty slot).
func exactKey(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// current returns the generation new entries go to, opening a new one (and
// dropping the oldest beyond Generations) when it is full.
func (ix *Index) current() *generation {
	if n := len(ix.gens); n > 0 && int(ix.gens[n-1].entries.len()) < ix.cfg.genSize() {
		return ix.gens[n-1]
	}
	ix.trim(ix.cfg.Generations - 1)
	g := &generation{}
	ix.gens = append(ix.gens, g)
	return g
}

// trim drops the oldest generations beyond n.
func (ix *Index) trim(n int) {
	for len(ix.gens) > n {
		ix.evicted += int64(ix.gens[0].entries.len())
		ix.gens[0] = nil
		ix.gens = ix.gens[1:]
	}
}

// candidate is a representative that shares hits LSH keys with the
// record being decided.
type candidate struct {
	gen  int
	rep  uint32
	hits int
}

// bucketDepth is how many entries of one LSH bucket a query reads, per
// representative it may verify. Reading is cheap (a bucket's entries are
// adjacent in its table); verifying is not.
const bucketDepth = 4

// nearest finds the representative with the highest verified similarity
// of at least Threshold among the LSH candidates of sig; ties go to the
// oldest. It reads at most bucketDepth*MaxCandidates entries of each
// bucket (oldest first), and verifies at most MaxCandidates candidates,
// those that share the most keys with sig first (a near duplicate shares
// many; a text that only shares boilerplate with sig, few).
func (ix *Index) nearest(sig *Signature) (gi int, r uint32, sim float64, ok bool) {
	if len(sig.sketch) == 0 {
		return 0, 0, 0, false
	}
	defer ix.clearSeen()
	k, maxc, thr := ix.cfg.SketchSize, ix.cfg.MaxCandidates, ix.cfg.Threshold
	depth, budget := bucketDepth*maxc, ix.budget
	ix.cands = ix.cands[:0]
	for _, key := range sig.bands {
		for g := len(ix.gens) - 1; g >= 0; g-- {
			t := &ix.gens[g].bands
			if t.n == 0 {
				continue
			}
			mask := len(t.keys) - 1
			for steps, i := 0, t.next(key, t.home(key)); i >= 0 && steps < depth && budget > 0; steps, i = steps+1, t.next(key, (i+1)&mask) {
				ix.hit(g, t.vals[i])
				budget--
			}
		}
	}
	if len(ix.cands) == 0 {
		return 0, 0, 0, false
	}
	cands := ix.cands
	if len(cands) > maxc {
		// Verify the maxc that share the most keys (ties: oldest first);
		// which of them is verified first does not change the result.
		selectFirst(cands, maxc, func(a, b candidate) int {
			if a.hits != b.hits {
				return b.hits - a.hits
			}
			if a.gen != b.gen {
				return a.gen - b.gen
			}
			return cmp.Compare(a.rep, b.rep)
		})
		cands = cands[:maxc]
	}
	q := newQuery(sig.sketch, k, &ix.qset)
	best, bestG, bestRep := -1.0, 0, uint32(0)
	for _, c := range cands {
		floor := max(thr, best)
		g := ix.gens[c.gen]
		p := g.reps.at(c.rep)
		if q.tooSmall(int(p.n), floor) {
			continue
		}
		s := q.similarity(g.sketches.chunks[p.chunk][p.pos:p.pos+p.n], floor)
		if s >= floor && (s > best || c.gen < bestG || c.gen == bestG && c.rep < bestRep) {
			best, bestG, bestRep = s, c.gen, c.rep
		}
	}
	ix.verified += int64(len(cands))
	return bestG, bestRep, best, best >= 0
}

// hit counts one shared LSH key with representative r of generation g.
func (ix *Index) hit(g int, r uint32) {
	if 2*(len(ix.cands)+1) > len(ix.seen) {
		ix.growSeen()
	}
	k := uint64(g)<<32 | uint64(r) + 1
	mask := len(ix.seen) - 1
	for i := int((k*0x9e3779b97f4a7c15)>>40) & mask; ; i = (i + 1) & mask {
		switch ix.seen[i] {
		case k:
			ix.cands[ix.seenIdx[i]].hits++
			return
		case 0:
			ix.seen[i] = k
			ix.seenIdx[i] = uint32(len(ix.cands))
			ix.seenUsed = append(ix.seenUsed, i)
			ix.cands = append(ix.cands, candidate{gen: g, rep: r, hits: 1})
			return
		}
	}
}

func (ix *Index) growSeen() {
	n := 2 * len(ix.seen)
	ix.seen, ix.seenIdx = make([]uint64, n), make([]uint32, n)
	ix.seenUsed = ix.seenUsed[:0]
	mask := n - 1
	for ci, c := range ix.cands {
		k := uint64(c.gen)<<32 | uint64(c.rep) + 1
		i := int((k*0x9e3779b97f4a7c15)>>40) & mask
		for ix.seen[i] != 0 {
			i = (i + 1) & mask
		}
		ix.seen[i], ix.seenIdx[i] = k, uint32(ci)
		ix.seenUsed = append(ix.seenUsed, i)
	}
}

func (ix *Index) clearSeen() {
	for _, i := range ix.seenUsed {
		ix.seen[i] = 0
	}
	ix.seenUsed = ix.seenUsed[:0]
}

func (ix *Index) ref(id RecordID) recRef {
	t, ok := ix.topicIdx[id.Topic]
	if !ok {
		t = uint32(len(ix.topics))
		ix.topics = append(ix.topics, id.Topic)
		ix.topicIdx[id.Topic] = t
	}
	return recRef{topic: t, part: id.Partition, off: id.Offset}
}

func (ix *Index) recordID(r recRef) RecordID {
	return RecordID{Topic: ix.topics[r.topic], Partition: r.part, Offset: r.off}
}

// Stats describes an index.
type Stats struct {
	Added          int64   // records given to Add
	Unique         int64   // ... decided unique
	Exact          int64   // ... decided exact duplicates
	Near           int64   // ... decided near duplicates
	Verified       int64   // LSH candidates checked (at most MaxCandidates a record)
	Evicted        int64   // distinct normal forms forgotten with old generations
	Records        int     // distinct normal forms remembered
	Clusters       int     // cluster representatives in the LSH index
	Generations    int     // generations held
	Bytes          int64   // memory held by the index (its arrays and tables)
	BytesPerRecord float64 // Bytes / Records
}

// Stats returns counters and the memory the index holds.
func (ix *Index) Stats() Stats {
	ix.ready()
	s := Stats{Added: ix.added, Unique: ix.unique, Exact: ix.exact, Near: ix.near,
		Verified: ix.verified, Evicted: ix.evicted, Generations: len(ix.gens)}
	for _, g := range ix.gens {
		s.Records += int(g.entries.len())
		s.Clusters += int(g.reps.len())
		s.Bytes += g.bytes()
	}
	for _, t := range ix.topics {
		s.Bytes += int64(len(t)) + 16 + 48 // string, slice slot, map entry
	}
	// Per-query scratch (the candidate set, the query's sketch as a set) is
	// a few KB and not counted.
	if s.Records > 0 {
		s.BytesPerRecord = float64(s.Bytes) / float64(s.Records)
	}
	return s
}
