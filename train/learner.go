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
	out     []float32 // masked-token output table, MLMBuckets x OutDim (nil until used)
	outAcc  []float32

	grads   mlpGrads   // accumulated dense gradients
	embGrad sparseGrad // accumulated embedding-row gradients
	outGrad sparseGrad // accumulated output-table gradients
	micro   int        // micro-batches accumulated since the last update
	queue   keyQueue
	health  healthRing
	rng     rng
	step    int64
	seen    int64 // examples stepped
	powM    []float32

	sc scratch
}

// scratch is reused by every Step.
type scratch struct {
	feats     []*featurizer
	arena     [][]uint32 // per worker: n-gram ids
	mlmArena  [][]uint32 // per worker: masked-word ids, then touched output rows
	coefArena [][]float32
	ids       [][]uint32 // per view row: online rows 0..b-1 view A, b..2b-1 view B
	mlmT      [][]uint32 // per online row: masked-word ids
	mlmRows   [][]uint32 // per online row: touched output rows
	mlmCoef   [][]float32
	mlmLoss   []float64
	xq, xk    []float32
	cq, ck    mlpCache
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
	dz, dyMLM    []float32
	cout         contrastOut
	cluster      []uint64
	record       []uint64
	lossA        []float64
	correctA     []bool
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
		l.ensureMLM()
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
	l.outGrad = newSparseGrad(0, c.OutDim, c.Workers)
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
	l.sc.mlmArena = make([][]uint32, c.Workers)
	l.sc.coefArena = make([][]float32, c.Workers)
}

// ensureMLM allocates the masked-token output table (zero, as word2vec's
// output vectors start) and its optimiser state.
func (l *Learner) ensureMLM() {
	if l.out != nil {
		return
	}
	c := &l.cfg
	l.out = make([]float32, c.MLMBuckets*c.OutDim)
	if c.EmbedOptimizer == EmbedAdagrad {
		l.outAcc = make([]float32, c.MLMBuckets*c.OutDim)
	}
	l.outGrad = newSparseGrad(c.MLMBuckets, c.OutDim, c.Workers)
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

// encodeNegatives encodes the texts of negatives (their ViewA) with the
// momentum encoder into sc.cn, and their hashes into sc.negC and sc.negR.
func (l *Learner) encodeNegatives(negatives []Example) {
	sc := &l.sc
	d := l.cfg.EmbedDim
	nn := len(negatives)
	sc.xn = grow(sc.xn, nn*d)
	sc.negC, sc.negR = sc.negC[:0], sc.negR[:0]
	f := sc.feats[0]
	for i := range negatives {
		e := &negatives[i]
		sc.nIDs = f.ids(e.ViewA, sc.nIDs[:0])
		l.poolKey(sc.xn[i*d:(i+1)*d], sc.nIDs)
		sc.negC = append(sc.negC, idHash(e.Cluster))
		sc.negR = append(sc.negR, idHash(e.Record))
	}
	l.key.forward(sc.xn, nn, &sc.cn)
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

// compute runs the forward pass of a non-empty micro-batch and adds its
// gradients (scaled by 1/AccumSteps) to the accumulators. It changes no
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
	useMLM := c.MLMWeight > 0
	if useMLM {
		l.ensureMLM()
	}

	// Featurise and pool. Online row i (< b) is view A of example i, row
	// b+i view B; key row i is view B of example i, row b+i view A.
	if cap(sc.ids) < 2*b {
		sc.ids = make([][]uint32, 2*b)
		sc.mlmT = make([][]uint32, 2*b)
		sc.mlmRows = make([][]uint32, 2*b)
		sc.mlmCoef = make([][]float32, 2*b)
	}
	sc.ids, sc.mlmT = sc.ids[:2*b], sc.mlmT[:2*b]
	sc.xq = grow(sc.xq, nq*d)
	sc.xk = grow(sc.xk, nq*d)
	l.parallel(b, func(w, lo, hi int) {
		f := sc.feats[w]
		ar := sc.arena[w][:0]
		mar := sc.mlmArena[w][:0]
		for i := lo; i < hi; i++ {
			e := &batch[i]
			s := len(ar)
			ar = f.ids(e.ViewA, ar)
			sc.ids[i] = ar[s:len(ar):len(ar)]
			s = len(ar)
			ar = f.ids(e.ViewB, ar)
			sc.ids[b+i] = ar[s:len(ar):len(ar)]
			if useMLM {
				s = len(mar)
				mar = f.mlmIDs(e.MaskedA, mar)
				sc.mlmT[i] = mar[s:len(mar):len(mar)]
				s = len(mar)
				mar = f.mlmIDs(e.MaskedB, mar)
				sc.mlmT[b+i] = mar[s:len(mar):len(mar)]
			}
			pool(sc.xq[i*d:(i+1)*d], l.emb, sc.ids[i], d)
			l.poolKey(sc.xk[i*d:(i+1)*d], sc.ids[b+i])
			if dirs == 2 {
				pool(sc.xq[(b+i)*d:(b+i+1)*d], l.emb, sc.ids[b+i], d)
				l.poolKey(sc.xk[(b+i)*d:(b+i+1)*d], sc.ids[i])
			}
		}
		sc.arena[w] = ar
		sc.mlmArena[w] = mar
	})

	// Dense forward of both encoders.
	l.online.forward(sc.xq, nq, &sc.cq)
	l.key.forward(sc.xk, nq, &sc.ck)

	// Contrastive loss, one direction at a time.
	stats := StepStats{Examples: b}
	sc.dz = grow(sc.dz, nq*od)
	clear(sc.dz)
	if cap(sc.cluster) < b {
		sc.cluster = make([]uint64, b)
		sc.record = make([]uint64, b)
	}
	sc.cluster, sc.record = sc.cluster[:b], sc.record[:b]
	for i := range batch {
		sc.cluster[i], sc.record[i] = idHash(batch[i].Cluster), idHash(batch[i].Record)
	}
	nn := len(negatives)
	if nn > 0 {
		l.encodeNegatives(negatives)
	}
	in := contrastInput{
		b: b, nq: l.queue.n + nn, d: od, tau: c.Temperature, beta: c.Beta,
		maskCluster: c.MaskFalseNegatives == MaskClusterRecord || c.MaskFalseNegatives == MaskCluster,
		maskRecord:  c.MaskFalseNegatives == MaskClusterRecord || c.MaskFalseNegatives == MaskRecord,
		cluster:     sc.cluster, record: sc.record,
		qCluster: l.queue.cluster, qRecord: l.queue.record,
		scale:   c.ContrastiveWeight / float64(nq) / float64(c.AccumSteps),
		workers: c.Workers,
	}
	var conSum float64
	correct := 0
	if nn > 0 {
		// One candidate matrix [queue; negatives; batch keys], and the
		// hashes of its first two parts.
		nqk := l.queue.n
		sc.cand = grow(sc.cand, (nqk+nn+b)*od)
		copy(sc.cand, l.queue.buf[:nqk*od])
		copy(sc.cand[nqk*od:], sc.cn.z[:nn*od])
		sc.candC = append(append(sc.candC[:0], l.queue.cluster[:nqk]...), sc.negC...)
		sc.candR = append(append(sc.candR[:0], l.queue.record[:nqk]...), sc.negR...)
		in.qCluster, in.qRecord = sc.candC, sc.candR
	}
	for dir := 0; dir < dirs; dir++ {
		var cand []float32
		if nn > 0 {
			cand = sc.cand[:(in.nq+b)*od]
		} else {
			cand = l.queue.candidates(b)
		}
		copy(cand[in.nq*od:], sc.ck.z[dir*b*od:(dir+1)*b*od])
		in.q = sc.cq.z[dir*b*od : (dir+1)*b*od]
		in.c = cand
		contrastLogits(&in, &sc.cout)
		l.parallel(b, func(_, lo, hi int) { contrastRows(&in, &sc.cout, lo, hi) })
		for i := 0; i < b; i++ {
			conSum += sc.cout.loss[i]
			if sc.cout.correct[i] {
				correct++
			}
		}
		if c.ContrastiveWeight > 0 {
			contrastBackward(&in, &sc.cout)
			copy(sc.dz[dir*b*od:], sc.cout.dq[:b*od])
		}
	}
	stats.Contrastive = conSum / float64(nq)
	stats.Accuracy = float64(correct) / float64(nq)

	// Masked-token objective on the online views.
	var dyExtra []float32
	if useMLM {
		total := 0
		for q := 0; q < nq; q++ {
			total += len(sc.mlmT[q])
		}
		if total > 0 {
			sc.dyMLM = grow(sc.dyMLM, nq*od)
			clear(sc.dyMLM)
			if cap(sc.mlmLoss) < nq {
				sc.mlmLoss = make([]float64, 2*b)
			}
			sc.mlmLoss = sc.mlmLoss[:nq]
			scale := c.MLMWeight / float64(total) / float64(c.AccumSteps)
			seed := l.rng.s
			l.parallel(nq, func(w, lo, hi int) {
				rows := sc.mlmArena[w]
				coefs := sc.coefArena[w][:0]
				for q := lo; q < hi; q++ {
					r := rng{s: mix64(seed ^ uint64(q+1)*0xd1342543de82ef95)}
					s := len(rows)
					cs := len(coefs)
					var loss float64
					loss, rows, coefs = mlmRow(sc.cq.y[q*od:(q+1)*od], l.out, od, sc.mlmT[q], c.MLMNegatives,
						c.MLMBuckets, &r, scale, sc.dyMLM[q*od:(q+1)*od], rows, coefs)
					sc.mlmRows[q] = rows[s:len(rows):len(rows)]
					sc.mlmCoef[q] = coefs[cs:len(coefs):len(coefs)]
					sc.mlmLoss[q] = loss
				}
				sc.mlmArena[w] = rows
				sc.coefArena[w] = coefs
			})
			var ml float64
			for _, v := range sc.mlmLoss {
				ml += v
			}
			stats.MLM = ml / float64(total)
			dyExtra = sc.dyMLM
			// Output-table gradients, sharded by row.
			l.shards(func(k int) {
				sh := &l.outGrad.shards[k]
				W := uint32(c.Workers)
				for q := 0; q < nq; q++ {
					y := sc.cq.y[q*od : (q+1)*od]
					for t, r := range sc.mlmRows[q] {
						if r%W == uint32(k) {
							l.outGrad.add(sh, r, sc.mlmCoef[q][t], y)
						}
					}
				}
			})
		}
	}
	stats.Loss = c.ContrastiveWeight*stats.Contrastive + c.MLMWeight*stats.MLM

	// Backward through the MLP, then into the embedding rows.
	dx := l.online.backward(sc.xq, &sc.cq, sc.dz, dyExtra, &l.grads, &sc.back)
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
	od := c.OutDim
	m := float32(c.Momentum)
	// Each shard's rows in one call: their online rows take the step, and
	// their momentum rows are brought up to date and take this step's EMA
	// (see updateEmbRows).
	l.shards(func(k int) {
		sh := &l.embGrad.shards[k]
		l.updateEmbRows(sh.rows, sh.grad, elr, eps, m)
		l.embGrad.reset(k)
		if l.out != nil && k < len(l.outGrad.shards) {
			sh := &l.outGrad.shards[k]
			rowsUpdate(l.out, l.outAcc, sh.rows, sh.grad, od, elr, eps)
			l.outGrad.reset(k)
		}
	})
	l.micro = 0
}
