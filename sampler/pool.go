package sampler

import (
	"slices"
	"sort"
)

// rec is one curated record the sampler holds. seq numbers records in load
// order (window order, then row order) from 0; it is the record's handle in
// cursors.
type rec struct {
	seq       int64
	window    int64
	topic     string
	partition int32
	offset    int64
	cluster   string
	domain    string
	text      string
	stage     int32 // clamped to [0, maxStage]
	rawStage  int32 // curriculum_stage as curated
	diff      float32
	charEnt   float32
	wordEnt   float32
	lenWords  int32
	tsim      float32 // target_similarity as curated
	weight    float64 // mixture weight: 1, or exp(TargetWeight × tsim) when the lake has a target
	dead      bool    // evicted from the pool
}

// maxStage bounds the stages the sampler tracks; higher stages count as it.
const maxStage = 127

// mix64 is the splitmix64 finaliser: a bijective 64-bit mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// orderKey is a record's place in the shuffled order of one epoch of its
// queue: a keyed hash of (seed, epoch, seq).
func orderKey(seed uint64, epoch, seq int64) uint64 {
	return mix64(seed ^ mix64(uint64(epoch)+0x9e3779b97f4a7c15) ^ mix64(uint64(seq)^0xa0761d6478bd642f))
}

// priority is a record's reservoir priority: the reservoir of a domain keeps
// the quota records of smallest priority, a uniform sample without
// replacement of every record the domain has had (bottom-k sampling).
func priority(seed uint64, seq int64) uint64 {
	return mix64(seed ^ 0xe7037ed1a0b428db ^ mix64(uint64(seq)+0x8ebc6af09c88c6e3))
}

type entry struct {
	h uint64
	r *rec
}

func entryLess(a, b entry) bool {
	if a.h != b.h {
		return a.h < b.h
	}
	return a.r.seq < b.r.seq
}

// queue holds the pool records of one domain and stage in the shuffled
// order of the current epoch: members sorted by orderKey. The records
// consumed in this epoch are exactly those at or before (lastH, lastSeq);
// a record that arrives mid-epoch is drawn in this epoch when its key falls
// after that point, in the next otherwise. The state (epoch, last key) is
// all a cursor needs: members follow from the pool.
type queue struct {
	domain  string
	stage   int32
	epoch   int64
	any     bool // a record was consumed in this epoch
	lastH   uint64
	lastSeq int64

	members []entry
	pos     int // members[:pos] are consumed
	live    int // members not dead
	dead    int
	used    int     // live members consumed in this pass
	mass    float64 // sum of the live members' weights
	ref     float64 // acceptance reference: the live weights' 90th percentile
}

// remass recounts the live members' weights (sums kept by add and evict
// drift by rounding; a recount bounds it) and their acceptance reference.
func (q *queue) remass() {
	q.mass, q.ref = 0, 1
	uniform := true
	for _, e := range q.members {
		if !e.r.dead {
			q.mass += e.r.weight
			uniform = uniform && e.r.weight == 1
		}
	}
	if uniform {
		return
	}
	ws := make([]float64, 0, q.live)
	for _, e := range q.members {
		if !e.r.dead {
			ws = append(ws, e.r.weight)
		}
	}
	if len(ws) == 0 {
		return
	}
	slices.Sort(ws)
	q.ref = ws[len(ws)*9/10]
}

// accept reports whether a drawn member is kept: with probability
// min(1, weight/ref), from a seeded hash of its place in this pass's order,
// so that within a queue records are drawn in proportion to their (capped)
// weights: importance resampling. Every member is kept when the weights
// are uniform.
func (q *queue) accept(seed uint64, e entry) bool {
	if e.r.weight >= q.ref {
		return true
	}
	u := float64(mix64(seed^e.h^0x2545f4914f6cdd1d)>>11) / (1 << 53)
	return u < e.r.weight/q.ref
}

// remaining returns the live records not yet drawn in this pass.
func (q *queue) remaining() int { return q.live - q.used }

// countUsed recounts the live members consumed in this pass.
func (q *queue) countUsed() {
	q.used = 0
	for _, e := range q.members[:q.pos] {
		if !e.r.dead {
			q.used++
		}
	}
}

// evict marks a member dead.
func (q *queue) evict(seed uint64, r *rec) {
	r.dead = true
	q.live--
	q.dead++
	q.mass -= r.weight
	if !q.after(entry{orderKey(seed, q.epoch, r.seq), r}) {
		q.used--
	}
	q.compact()
}

// after reports whether e comes after the consumption point.
func (q *queue) after(e entry) bool {
	if !q.any {
		return true
	}
	if e.h != q.lastH {
		return e.h > q.lastH
	}
	return e.r.seq > q.lastSeq
}

func (q *queue) seek() {
	q.pos = sort.Search(len(q.members), func(i int) bool { return q.after(q.members[i]) })
}

// add merges new records into the order of the current epoch.
func (q *queue) add(seed uint64, rs []*rec) {
	if len(rs) == 0 {
		return
	}
	es := make([]entry, len(rs))
	for i, r := range rs {
		es[i] = entry{orderKey(seed, q.epoch, r.seq), r}
	}
	slices.SortFunc(es, func(a, b entry) int {
		if entryLess(a, b) {
			return -1
		}
		return 1
	})
	merged := make([]entry, 0, len(q.members)-q.dead+len(es))
	i, j := 0, 0
	for i < len(q.members) || j < len(es) {
		if j == len(es) || (i < len(q.members) && entryLess(q.members[i], es[j])) {
			if !q.members[i].r.dead {
				merged = append(merged, q.members[i])
			}
			i++
			continue
		}
		merged = append(merged, es[j])
		j++
	}
	q.members, q.dead = merged, 0
	q.live += len(rs)
	q.seek()
	q.countUsed()
	q.remass()
}

// compact drops dead members once they outnumber the live ones.
func (q *queue) compact() {
	if q.dead <= q.live || q.dead < 64 {
		return
	}
	out := q.members[:0]
	for _, e := range q.members {
		if !e.r.dead {
			out = append(out, e)
		}
	}
	clear(q.members[len(out):])
	q.members, q.dead = out, 0
	q.seek()
	q.remass()
}

// next returns the next live record the queue accepts (see accept),
// starting a new epoch (a fresh order) when the current one is used up; a
// member it does not accept is consumed for this pass. After four passes
// without an accepted member it returns the last live one. It returns nil
// when the queue has no live record.
func (q *queue) next(seed uint64) *rec {
	var last *rec
	for range 4 {
		for q.pos < len(q.members) {
			e := q.members[q.pos]
			q.pos++
			if e.r.dead {
				continue
			}
			q.any, q.lastH, q.lastSeq = true, e.h, e.r.seq
			q.used++
			if q.accept(seed, e) {
				return e.r
			}
			last = e.r
		}
		if q.live == 0 {
			return nil
		}
		q.newEpoch(seed)
	}
	return last
}

func (q *queue) newEpoch(seed uint64) {
	q.epoch++
	q.reorder(seed)
	q.pos, q.any, q.lastH, q.lastSeq, q.used = 0, false, 0, 0, 0
}

// reorder drops the dead members and sorts the others in the order of the
// queue's epoch.
func (q *queue) reorder(seed uint64) {
	out := q.members[:0]
	for _, e := range q.members {
		if !e.r.dead {
			out = append(out, entry{orderKey(seed, q.epoch, e.r.seq), e.r})
		}
	}
	clear(q.members[len(out):])
	slices.SortFunc(out, func(a, b entry) int {
		if entryLess(a, b) {
			return -1
		}
		return 1
	})
	q.members, q.dead = out, 0
}

// reservoir is a max-heap on priority of at most quota records.
type reservoir struct {
	pri []uint64
	rs  []*rec
}

func (v *reservoir) offer(quota int, p uint64, r *rec) {
	if quota <= 0 {
		return
	}
	if len(v.rs) < quota {
		v.pri, v.rs = append(v.pri, p), append(v.rs, r)
		v.up(len(v.rs) - 1)
		return
	}
	if p >= v.pri[0] {
		return
	}
	v.pri[0], v.rs[0] = p, r
	v.down(0)
}

func (v *reservoir) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if v.pri[p] >= v.pri[i] {
			return
		}
		v.swap(i, p)
		i = p
	}
}

func (v *reservoir) down(i int) {
	n := len(v.pri)
	for {
		l, big := 2*i+1, i
		if l < n && v.pri[l] > v.pri[big] {
			big = l
		}
		if r := l + 1; r < n && v.pri[r] > v.pri[big] {
			big = r
		}
		if big == i {
			return
		}
		v.swap(i, big)
		i = big
	}
}

func (v *reservoir) swap(i, j int) {
	v.pri[i], v.pri[j] = v.pri[j], v.pri[i]
	v.rs[i], v.rs[j] = v.rs[j], v.rs[i]
}

// domainState is everything the sampler keeps per domain.
type domainState struct {
	name   string
	queues []*queue // by stage
	res    reservoir
}

func (d *domainState) queue(stage int32, epoch int64) *queue {
	for int(stage) >= len(d.queues) {
		d.queues = append(d.queues, nil)
	}
	q := d.queues[stage]
	if q == nil {
		q = &queue{domain: d.name, stage: stage, epoch: epoch}
		d.queues[stage] = q
	}
	return q
}

// mass returns the summed weights of the live records of stages below
// open (every stage when all is set).
func (d *domainState) mass(open int, all bool) float64 {
	var m float64
	for s, q := range d.queues {
		if q != nil && (all || s < open) {
			m += q.mass
		}
	}
	return m
}

// live returns the live records of stages below open (every stage when
// all is set).
func (d *domainState) live(open int, all bool) int {
	n := 0
	for s, q := range d.queues {
		if q != nil && (all || s < open) {
			n += q.live
		}
	}
	return n
}
