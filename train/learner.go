package train

import (
	"math"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Example is one training example: two augmented views of a record, the
// words masked out of each view (targets of the masked-token objective),
// and the record's identity. Cluster and Record are used only to mask false
// negatives (empty: unknown, never masked); Domain is informational.
type Example struct {
	Text             string // the record's text, counted into the stream's term statistics (optional)
	ViewA, ViewB     string
	MaskedA, MaskedB []string
	Cluster, Record  string
	Domain           string
}

// StepStats reports one Step.
type StepStats struct {
	Step        int64   // optimiser updates so far
	Updated     bool    // this micro-batch completed an optimiser update
	Loss        float64 // weighted total of the objectives
	Contrastive float64 // mean InfoNCE loss per anchor
	MLM         float64 // mean masked-token loss per masked word (0 when off)
	Accuracy    float64 // instance-discrimination accuracy of the micro-batch
	LR          float64 // dense learning rate of the last (or next) update
	Examples    int     // examples in the micro-batch
}

// Learner is the online contrastive learner. Step, MarshalBinary and
// UnmarshalBinary serialise among themselves; Embed, Encoder, Health,
// Steps and Config may run concurrently with any of them.
type Learner struct {
	stepMu sync.Mutex   // one Step, MarshalBinary or UnmarshalBinary at a time
	mu     sync.RWMutex // parameters, queue and health sample against readers
	cfg    Config

	// Parameters and optimiser state.
	emb     []float32 // online embedding table, Buckets x EmbedDim
	keyEmb  []float32 // momentum embedding table, lazily brought up to date
	keySync []int64   // per row: the step keyEmb's row was last brought up to date
	embAcc  []float32 // Adagrad accumulators of emb (nil for SGD)
	online  *mlp
	key     *mlp
	opt     adam

	grads   mlpGrads   // accumulated dense gradients
	embGrad sparseGrad // accumulated embedding-row gradients
	micro   int        // micro-batches accumulated since the last update
	queue   keyQueue
	health  healthRing
	rng     rng
	step    int64
	seen    int64 // examples stepped
	powM    []float32
	lex     *lexicon // the stream's term statistics

	// The objectives, in the order they run (see objective.go); mlm is
	// also in objs.
	objs []objective
	mlm  *maskedToken

	sc scratch
}

// scratch is reused by every Step.
type scratch struct {
	feats  []*featurizer
	arena  [][]uint32 // per worker: n-gram ids
	ids    [][]uint32 // per view row: online rows 0..b-1 view A, b..2b-1 view B
	xq, xk []float32
	cq, ck mlpCache
	// Extra negatives of the micro-batch (StepNegatives): their pooled
	// inputs and key-encoder outputs, and the candidate matrix and hashes
	// [queue; negatives; batch keys] when there are any.
	xn           []float32
	cn           mlpCache
	nIDs         []uint32
	cand         []float32
	candC, candR []uint64
	negC, negR   []uint64
	back         mlpBack
	dz, dy       []float32
	cout         contrastOut
	cluster      []uint64
	record       []uint64
	lossA        []float64
	correctA     []bool
	lexH         [][]uint64 // per worker: term hashes
	lexC         [][]uint32 // per worker: term columns
}

// rng is a splitmix64 generator; its whole state is one word.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

func (r *rng) float32() float32 { return float32(r.next()>>40) / (1 << 24) }

// NewLearner builds a learner with freshly initialised weights. cfg gets
// SetDefaults; an invalid cfg returns an error wrapping ErrConfig.
func NewLearner(cfg Config) (*Learner, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Learner{cfg: cfg}
	l.alloc()
	r := rng{s: mix64(cfg.Seed ^ 0x7468726573686572)}
	a := float32(1 / math.Sqrt(float64(cfg.EmbedDim)))
	for i := range l.emb {
		l.emb[i] = a * (2*r.float32() - 1)
	}
	copy(l.keyEmb, l.emb)
	l.online.init(&r)
	l.key = l.online.clone()
	if cfg.MLMWeight > 0 {
		l.mlm.ensure()
	}
	l.rng = rng{s: r.next()}
	return l, nil
}

// alloc sizes every parameter and state buffer for l.cfg.
func (l *Learner) alloc() {
	c := &l.cfg
	l.emb = make([]float32, c.Buckets*c.EmbedDim)
	l.keyEmb = make([]float32, c.Buckets*c.EmbedDim)
	l.keySync = make([]int64, c.Buckets)
	if c.EmbedOptimizer == EmbedAdagrad {
		l.embAcc = make([]float32, c.Buckets*c.EmbedDim)
	}
	hugePages(l.emb)
	hugePages(l.keyEmb)
	hugePages(l.embAcc)
	l.online = newMLP(c.EmbedDim, c.HiddenDim, c.OutDim, c.Activation == ActivationGELU)
	l.key = newMLP(c.EmbedDim, c.HiddenDim, c.OutDim, c.Activation == ActivationGELU)
	l.online.workers, l.key.workers = c.Workers, c.Workers
	l.opt = adam{m: newMLPGrads(l.online), v: newMLPGrads(l.online)}
	l.grads = newMLPGrads(l.online)
	l.embGrad = newSparseGrad(c.Buckets, c.EmbedDim, c.Workers)
	l.mlm = newMaskedToken(l)
	l.objs = []objective{&contrastive{l}, l.mlm}
	l.queue = newKeyQueue(c.queueCap(), c.OutDim)
	l.health = newHealthRing(c.HealthSample, c.OutDim)
	l.powM = make([]float32, 4096)
	p := 1.0
	for i := range l.powM {
		l.powM[i] = float32(p)
		p *= c.Momentum
	}
	l.sc = scratch{}
	for w := 0; w < c.Workers; w++ {
		l.sc.feats = append(l.sc.feats, newFeaturizer(c))
	}
	l.sc.arena = make([][]uint32, c.Workers)
	l.sc.lexH = make([][]uint64, c.Workers)
	l.sc.lexC = make([][]uint32, c.Workers)
	l.lex = newLexicon(c.LexBuckets)
}

// Config returns the learner's configuration (with defaults filled in).
func (l *Learner) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// Steps returns the number of optimiser updates so far.
func (l *Learner) Steps() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.step
}

// Examples returns the number of examples stepped so far (all micro-batches).
func (l *Learner) Examples() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.seen
}

// parallel runs fn over the fixed partition of n items into Workers chunks
// and waits. Chunk w is [w*n/W, (w+1)*n/W).
func (l *Learner) parallel(n int, fn func(w, lo, hi int)) {
	W := l.cfg.Workers
	if W == 1 || n < 2 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < W; w++ {
		lo, hi := w*n/W, (w+1)*n/W
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	fn(0, 0, n/W)
	wg.Wait()
}

// shards runs fn(k) for every shard k of the sparse gradients, one
// goroutine per worker.
func (l *Learner) shards(fn func(k int)) {
	l.parallel(l.cfg.Workers, func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			fn(k)
		}
	})
}

// decay returns momentum^age.
func (l *Learner) decay(age int64) float32 {
	if age < int64(len(l.powM)) {
		return l.powM[age]
	}
	return float32(math.Pow(l.cfg.Momentum, float64(age)))
}

// pool writes the mean of the table rows ids into dst (len d). With AVX2
// one call sums all rows of a text, in id order as poolGo does, so their
// cache misses overlap.
func pool(dst, table []float32, ids []uint32, d int) {
	if rowKernels() && d >= 8 && d%8 == 0 && len(dst) == d && len(ids) > 0 {
		clear(dst)
		if poolAVX2(dst, table, ids, len(table)/d, 1/float32(len(ids))) == len(ids) {
			return
		}
		// An id beyond the table: poolGo indexes it (and panics).
	}
	poolGo(dst, table, ids, d)
}

// poolGo is the reference of pool.
func poolGo(dst, table []float32, ids []uint32, d int) {
	clear(dst)
	if len(ids) == 0 {
		return
	}
	for _, r := range ids {
		row := table[int(r)*d : int(r+1)*d]
		for j, v := range row {
			dst[j] += v
		}
	}
	inv := 1 / float32(len(ids))
	for j := range dst {
		dst[j] *= inv
	}
}

// poolKey is pool over the momentum table: row r is brought to the current
// step on the fly (without writing it) as on + m^age (key - on).
func (l *Learner) poolKey(dst []float32, ids []uint32) {
	d := l.cfg.EmbedDim
	if !rowKernels() || d < 8 || d%8 != 0 || len(dst) != d || len(ids) == 0 {
		l.poolKeyGo(dst, ids)
		return
	}
	clear(dst)
	n := min(len(l.keySync), len(l.emb)/d, len(l.keyEmb)/d)
	inv := 1 / float32(len(ids))
	for i := 0; ; {
		// The kernel sums rows until one it does not take (beyond the
		// tables, or older than powM reaches), and scales dst when it
		// reaches the end.
		i += poolKeyAVX2(dst, l.emb, l.keyEmb, l.keySync, l.powM, ids[i:], n, l.step, inv)
		if i == len(ids) {
			return
		}
		l.poolKeyRow(dst, ids[i])
		if i++; i == len(ids) {
			for j := range dst {
				dst[j] *= inv
			}
			return
		}
	}
}

// poolKeyGo is the reference of poolKey.
func (l *Learner) poolKeyGo(dst []float32, ids []uint32) {
	clear(dst)
	if len(ids) == 0 {
		return
	}
	for _, r := range ids {
		l.poolKeyRow(dst, r)
	}
	inv := 1 / float32(len(ids))
	for j := range dst {
		dst[j] *= inv
	}
}

// poolKeyRow adds momentum row r, brought to the current step, to dst.
func (l *Learner) poolKeyRow(dst []float32, r uint32) {
	d := l.cfg.EmbedDim
	on := l.emb[int(r)*d : int(r+1)*d]
	age := l.step - l.keySync[r]
	if age == 0 {
		for j, v := range l.keyEmb[int(r)*d : int(r+1)*d] {
			dst[j] += v
		}
		return
	}
	f := l.decay(age)
	key := l.keyEmb[int(r)*d : int(r+1)*d]
	for j, v := range on {
		dst[j] += v + float32(f*(key[j]-v))
	}
}

func idHash(s string) uint64 {
	if s == "" {
		return 0
	}
	h := xxhash.Sum64String(s)
	if h == 0 {
		h = 1
	}
	return h
}

// Step runs the forward and backward pass of one micro-batch and, every
// AccumSteps micro-batches, an optimiser update. An empty batch does nothing.
func (l *Learner) Step(batch []Example) StepStats { return l.StepNegatives(batch, nil) }

// StepNegatives is Step with extra candidate negatives for this micro-batch
// (the sampler's: records of other clusters, often of the same domains).
// Each negative's ViewA (its text) is encoded by the momentum encoder, like
// a queue entry, and joins the queue's keys as a negative of every anchor;
// false-negative masking applies to it by Cluster and Record. Negatives are
// not enqueued and carry no gradient.
func (l *Learner) StepNegatives(batch, negatives []Example) StepStats {
	l.stepMu.Lock()
	defer l.stepMu.Unlock()
	c := &l.cfg
	b := len(batch)
	if b == 0 {
		return StepStats{Step: l.step, LR: c.LR * c.lrFactor(l.step+1)}
	}
	l.parallel(b, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			if batch[i].Text != "" {
				sc := &l.sc
				sc.lexH[w], sc.lexC[w] = l.lex.add(batch[i].Text, sc.lexH[w], sc.lexC[w])
			}
		}
	})
	stats := l.compute(batch, negatives)

	// Queue, health sample and (every AccumSteps) the update.
	sc := &l.sc
	od := c.OutDim
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue.push(sc.ck.z[:b*od], sc.cluster, sc.record, l.step)
	l.health.push(sc.cq.z[:b*od], sc.ck.z[:b*od], b)
	l.rng.next()
	l.seen += int64(b)
	l.micro++
	if l.micro >= c.AccumSteps {
		l.update()
		stats.Updated = true
		stats.LR = c.LR * c.lrFactor(l.step)
	} else {
		stats.LR = c.LR * c.lrFactor(l.step+1)
	}
	stats.Step = l.step
	return stats
}

// compute runs the forward pass of a non-empty micro-batch, every
// objective's loss on it, and the backward pass of their gradients, which
// it adds (scaled by 1/AccumSteps) to the accumulators. It changes no
// parameter, queue, health sample or RNG state.
func (l *Learner) compute(batch, negatives []Example) StepStats {
	c := &l.cfg
	b := len(batch)
	sc := &l.sc
	d, od := c.EmbedDim, c.OutDim
	dirs := 1
	if c.Symmetric {
		dirs = 2
	}
	nq := dirs * b // online rows (and key rows)
	sc.dz = grow(sc.dz, nq*od)
	p := &pass{b: b, dirs: dirs, nq: nq, dz: sc.dz[:nq*od], dyBuf: &sc.dy}
	clear(p.dz)
	l.mlm.begin(p)

	// Featurise and pool. Online row i (< b) is view A of example i, row
	// b+i view B; key row i is view B of example i, row b+i view A.
	if cap(sc.ids) < 2*b {
		sc.ids = make([][]uint32, 2*b)
	}
	sc.ids = sc.ids[:2*b]
	sc.xq = grow(sc.xq, nq*d)
	sc.xk = grow(sc.xk, nq*d)
	l.parallel(b, func(w, lo, hi int) {
		f := sc.feats[w]
		ar := sc.arena[w][:0]
		for i := lo; i < hi; i++ {
			e := &batch[i]
			s := len(ar)
			ar = f.ids(e.ViewA, ar)
			sc.ids[i] = ar[s:len(ar):len(ar)]
			s = len(ar)
			ar = f.ids(e.ViewB, ar)
			sc.ids[b+i] = ar[s:len(ar):len(ar)]
			for _, o := range l.objs {
				o.featurise(p, w, i, e)
			}
			pool(sc.xq[i*d:(i+1)*d], l.emb, sc.ids[i], d)
			l.poolKey(sc.xk[i*d:(i+1)*d], sc.ids[b+i])
			if dirs == 2 {
				pool(sc.xq[(b+i)*d:(b+i+1)*d], l.emb, sc.ids[b+i], d)
				l.poolKey(sc.xk[(b+i)*d:(b+i+1)*d], sc.ids[i])
			}
		}
		sc.arena[w] = ar
	})

	// Dense forward of both encoders, then the objectives.
	l.online.forward(sc.xq, nq, &sc.cq)
	l.key.forward(sc.xk, nq, &sc.ck)
	stats := StepStats{Examples: b}
	for _, o := range l.objs {
		o.loss(p, batch, negatives, &stats)
	}

	// Backward through the MLP, then into the embedding rows.
	dx := l.online.backward(sc.xq, &sc.cq, p.dz, p.dy, &l.grads, &sc.back)
	l.shards(func(k int) {
		sh := &l.embGrad.shards[k]
		for q := 0; q < nq; q++ {
			ids := sc.ids[q]
			if len(ids) == 0 {
				continue
			}
			l.embGrad.addIDs(sh, k, c.Workers, ids, 1/float32(len(ids)), dx[q*d:(q+1)*d])
		}
	})

	return stats
}

// update applies one optimiser step from the accumulated gradients. The
// caller holds l.mu.
func (l *Learner) update() {
	c := &l.cfg
	l.step++
	f := c.lrFactor(l.step)
	l.opt.update(l.online.params(), &l.grads, l.step, c.LR*f, c)
	ema(l.key.params(), l.online.params(), c.Momentum)
	elr := float32(c.EmbedLR * f)
	eps := float32(c.Epsilon)
	m := float32(c.Momentum)
	// Each shard's rows in one call: their online rows take the step, and
	// their momentum rows are brought up to date and take this step's EMA
	// (see updateEmbRows).
	l.shards(func(k int) {
		sh := &l.embGrad.shards[k]
		l.updateEmbRows(sh.rows, sh.grad, elr, eps, m)
		l.embGrad.reset(k)
		for _, o := range l.objs {
			o.update(k, elr, eps)
		}
	})
	l.micro = 0
}
