package train

import (
	"math"
	"slices"
)

// lrFactor is the schedule's multiplier of the peak learning rates at
// optimiser update t (1-based): linear warm-up over WarmupSteps, then a
// cosine or linear decay over DecaySteps down to MinLRRatio, which it keeps
// from then on (training is continual).
func (c *Config) lrFactor(t int64) float64 {
	if t < 1 {
		t = 1
	}
	if c.WarmupSteps > 0 && t <= c.WarmupSteps {
		return float64(t) / float64(c.WarmupSteps)
	}
	if c.Decay == DecayNone || c.DecaySteps == 0 {
		return 1
	}
	p := float64(t-c.WarmupSteps) / float64(c.DecaySteps)
	if p >= 1 {
		return c.MinLRRatio
	}
	var f float64
	switch c.Decay {
	case DecayLinear:
		f = 1 - p
	default:
		f = 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return c.MinLRRatio + (1-c.MinLRRatio)*f
}

// adam holds the first and second moments of the dense parameters.
type adam struct {
	m, v mlpGrads
}

// update applies one Adam (AdamW when decay > 0) step t with learning rate
// lr to the parameters p from the gradients g, then clears g. Weight decay
// applies to the matrices, not to the biases.
func (a *adam) update(p [4][]float32, g *mlpGrads, t int64, lr float64, c *Config) {
	b1, b2 := c.Beta1, c.Beta2
	bc1 := 1 - math.Pow(b1, float64(t))
	bc2 := 1 - math.Pow(b2, float64(t))
	step := float32(lr / bc1)
	invBC2 := float32(1 / bc2)
	eps := float32(c.Epsilon)
	fb1, fb2 := float32(b1), float32(b2)
	for k := range p {
		wd := float32(0)
		if k == 0 || k == 2 {
			wd = float32(lr * c.WeightDecay)
		}
		pk, gk, mk, vk := p[k], g[k], a.m[k], a.v[k]
		for i, gi := range gk {
			mi := fb1*mk[i] + (1-fb1)*gi
			vi := fb2*vk[i] + (1-fb2)*gi*gi
			mk[i], vk[i] = mi, vi
			pk[i] -= step*mi/(float32(math.Sqrt(float64(vi*invBC2)))+eps) + wd*pk[i]
			gk[i] = 0
		}
	}
}

// ema sets key = m*key + (1-m)*online for every dense parameter.
func ema(key, online [4][]float32, m float64) {
	fm := float32(m)
	for k := range key {
		o := online[k]
		for i, v := range key[k] {
			key[k][i] = fm*v + (1-fm)*o[i]
		}
	}
}

// sparseGrad accumulates gradients of table rows. Rows are sharded over
// workers by row modulo shards; each shard keeps its touched rows in
// first-touch order and their gradient rows. slot[r] is the 1-based index of
// row r within its shard (0: untouched).
type sparseGrad struct {
	dim    int
	slot   []int32
	shards []gradShard
}

type gradShard struct {
	rows []uint32
	grad []float32
}

func newSparseGrad(rows, dim, shards int) sparseGrad {
	return sparseGrad{dim: dim, slot: make([]int32, rows), shards: make([]gradShard, shards)}
}

// add accumulates coef*vec into row r; the caller owns r's shard.
func (s *sparseGrad) add(sh *gradShard, r uint32, coef float32, vec []float32) {
	k := s.slot[r]
	if k == 0 {
		sh.rows = append(sh.rows, r)
		n := len(sh.grad)
		sh.grad = append(sh.grad, make([]float32, s.dim)...)
		clear(sh.grad[n:])
		k = int32(len(sh.rows))
		s.slot[r] = k
	}
	g := sh.grad[int(k-1)*s.dim : int(k)*s.dim]
	for j, v := range vec[:s.dim] {
		g[j] += float32(coef * v)
	}
}

// rowsPureGo turns the assembly kernels of the embedding-row work (pool,
// poolKey, addIDs, updateEmbRows, rowsUpdate) off alone, for tests that
// compare whole learners: turning haveAVX2 off also swaps the dense
// products' sgemm, whose AVX2 kernel rounds differently from gonum's.
var rowsPureGo = false

// rowKernels reports whether the row kernels run.
func rowKernels() bool { return haveAVX2 && !rowsPureGo }

// addIDs is add(sh, r, coef, vec) for every row r of ids, in order, that
// belongs to shard k of w (r % w == k): the embedding rows of one pooled
// text, whose gradient is coef (1/len) times the text's input gradient.
// The caller owns shard k. With AVX2 one call walks all ids, so the row
// lookups and misses of many rows overlap.
func (s *sparseGrad) addIDs(sh *gradShard, k, w int, ids []uint32, coef float32, vec []float32) {
	d := s.dim
	if !rowKernels() || d < 8 || d%8 != 0 || len(vec) < d {
		s.addIDsGo(sh, k, w, ids, coef, vec)
		return
	}
	// Room for every id to be a new row, so the kernel never allocates.
	sh.rows = slices.Grow(sh.rows, len(ids))
	sh.grad = slices.Grow(sh.grad, len(ids)*d)
	mod := ^uint64(0)/uint64(w) + 1 // r % w = ((mod * r) * w) >> 64 for 32-bit r
	for i := 0; i < len(ids); {
		done, n := gradAddAVX2(s.slot, sh.rows[:cap(sh.rows)], sh.grad[:cap(sh.grad)], len(sh.rows),
			ids[i:], vec[:d], mod, uint64(w), uint64(k), coef)
		sh.rows, sh.grad = sh.rows[:n], sh.grad[:n*d]
		i += done
		if i < len(ids) {
			// A row the kernel does not take (beyond the slot table): add
			// indexes it as the Go loop does.
			if r := ids[i]; r%uint32(w) == uint32(k) {
				s.add(sh, r, coef, vec)
			}
			i++
		}
	}
}

// addIDsGo is the reference of addIDs.
func (s *sparseGrad) addIDsGo(sh *gradShard, k, w int, ids []uint32, coef float32, vec []float32) {
	W := uint32(w)
	for _, r := range ids {
		if r%W == uint32(k) {
			s.add(sh, r, coef, vec)
		}
	}
}

// touched counts the rows holding a gradient.
func (s *sparseGrad) touched() int {
	n := 0
	for i := range s.shards {
		n += len(s.shards[i].rows)
	}
	return n
}

// reset forgets the rows of shard k.
func (s *sparseGrad) reset(k int) {
	sh := &s.shards[k]
	for _, r := range sh.rows {
		s.slot[r] = 0
	}
	sh.rows, sh.grad = sh.rows[:0], sh.grad[:0]
}

// reshard redistributes the accumulated rows over n shards, in ascending row
// order (used after loading a state and when the worker count changes).
func (s *sparseGrad) reshard(n int) {
	type rg struct {
		r uint32
		g []float32
	}
	var all []rg
	for i := range s.shards {
		sh := &s.shards[i]
		for k, r := range sh.rows {
			all = append(all, rg{r, append([]float32(nil), sh.grad[k*s.dim:(k+1)*s.dim]...)})
			s.slot[r] = 0
		}
	}
	sortRows(len(all), func(i int) uint32 { return all[i].r }, func(i, j int) { all[i], all[j] = all[j], all[i] })
	s.shards = make([]gradShard, n)
	for _, e := range all {
		k := int(e.r) % n
		s.add(&s.shards[k], e.r, 1, e.g)
	}
}

// sortRows is an insertion-free heap sort over an index space, so callers
// need no extra allocation beyond their own slice.
func sortRows(n int, key func(int) uint32, swap func(i, j int)) {
	down := func(i, n int) {
		for {
			c := 2*i + 1
			if c >= n {
				return
			}
			if c+1 < n && key(c+1) > key(c) {
				c++
			}
			if key(i) >= key(c) {
				return
			}
			swap(i, c)
			i = c
		}
	}
	for i := n/2 - 1; i >= 0; i-- {
		down(i, n)
	}
	for i := n - 1; i > 0; i-- {
		swap(0, i)
		down(0, i)
	}
}

// rowUpdate applies the sparse optimiser to one table row w from gradient
// g (cleared afterwards); acc is the row's Adagrad accumulator (nil for SGD).
//
// In these row functions (and add, poolKeyRow) the float32 conversion of a
// product rounds it before the sum, as their assembly kernels do: without
// it the compiler may fuse the two into one multiply-add (GOAMD64=v3 and
// up), and results would depend on the build.
func rowUpdate(w, g, acc []float32, lr, eps float32) {
	if acc == nil {
		for j, gj := range g {
			w[j] -= float32(lr * gj)
			g[j] = 0
		}
		return
	}
	for j, gj := range g {
		a := acc[j] + float32(gj*gj)
		acc[j] = a
		w[j] -= lr * gj / (float32(math.Sqrt(float64(a))) + eps)
		g[j] = 0
	}
}

// emaRowUpdate is rowUpdate of the online row on fused with the lazy EMA of
// its momentum row key: key is first brought up to date against the old
// online row (key = on + sync (key - on)), and after the update takes one
// EMA step with momentum m against the new online row.
func emaRowUpdate(on, key, g, acc []float32, lr, eps, sync, m float32) {
	key, g = key[:len(on)], g[:len(on)]
	if acc == nil {
		for j, v := range on {
			k := v + float32(sync*(key[j]-v))
			v -= float32(lr * g[j])
			on[j] = v
			key[j] = v + float32(m*(k-v))
			g[j] = 0
		}
		return
	}
	acc = acc[:len(on)]
	for j, v := range on {
		k := v + float32(sync*(key[j]-v))
		gj := g[j]
		a := acc[j] + float32(gj*gj)
		acc[j] = a
		v -= lr * gj / (float32(math.Sqrt(float64(a))) + eps)
		on[j] = v
		key[j] = v + float32(m*(k-v))
		g[j] = 0
	}
}

// rowsUpdate is rowUpdate of the rows of table (width d) listed in rows,
// row n from the gradient row grad[n*d:(n+1)*d]; acc is the table's
// accumulator (nil for SGD). The gradient rows are cleared.
func rowsUpdate(table, acc []float32, rows []uint32, grad []float32, d int, lr, eps float32) {
	i := 0
	if rowKernels() && d >= 8 && d%8 == 0 && len(grad) >= len(rows)*d {
		n := len(table) / d
		if acc != nil {
			n = min(n, len(acc)/d)
		}
		// It stops early only at a row beyond the table, which the Go loop
		// then indexes (and panics at).
		i = adagradRowsAVX2(table, acc, rows, grad, d, n, lr, eps)
	}
	for n := i; n < len(rows); n++ {
		lo, hi := int(rows[n])*d, int(rows[n]+1)*d
		var a []float32
		if acc != nil {
			a = acc[lo:hi]
		}
		rowUpdate(table[lo:hi], grad[n*d:(n+1)*d], a, lr, eps)
	}
}

// updateEmbRows applies the sparse optimiser step l.step to the embedding
// rows of one gradient shard (rows, and grad with one gradient row each,
// cleared afterwards) with learning rate lr, fusing the lazy EMA of their
// momentum rows (see update), and marks the rows as up to date.
func (l *Learner) updateEmbRows(rows []uint32, grad []float32, lr, eps, m float32) {
	d := l.cfg.EmbedDim
	i := 0
	if rowKernels() && d >= 8 && d%8 == 0 && len(grad) >= len(rows)*d {
		n := min(len(l.keySync), len(l.emb)/d, len(l.keyEmb)/d)
		if l.embAcc != nil {
			n = min(n, len(l.embAcc)/d)
		}
		for i < len(rows) {
			i += emaRowsAVX2(l.emb, l.keyEmb, l.embAcc, l.keySync, l.powM, rows[i:], grad[i*d:], d, n,
				l.step-1, l.step, lr, eps, m)
			if i == len(rows) {
				return
			}
			// A row the kernel does not take (beyond the tables, or whose
			// momentum row is older than powM reaches): the Go step.
			l.updateEmbRow(rows[i], grad[i*d:(i+1)*d], lr, eps, m)
			i++
		}
		return
	}
	for n, r := range rows {
		l.updateEmbRow(r, grad[n*d:(n+1)*d], lr, eps, m)
	}
}

// updateEmbRow is the reference of updateEmbRows for one row r with
// gradient g.
func (l *Learner) updateEmbRow(r uint32, g []float32, lr, eps, m float32) {
	d := l.cfg.EmbedDim
	lo, hi := int(r)*d, int(r+1)*d
	var acc []float32
	if l.embAcc != nil {
		acc = l.embAcc[lo:hi]
	}
	// Bring the momentum row to step-1 before its online row moves (factor
	// fm), update the online row, then apply this step's EMA eagerly, so
	// rows of the next batch read their momentum row as it is.
	fm := float32(1)
	if age := l.step - 1 - l.keySync[r]; age > 0 {
		fm = l.decay(age)
	}
	emaRowUpdate(l.emb[lo:hi], l.keyEmb[lo:hi], g, acc, lr, eps, fm, m)
	l.keySync[r] = l.step
}
