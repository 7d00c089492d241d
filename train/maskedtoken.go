package train

// maskedToken is the masked-token objective (Config.MLMWeight > 0):
// every word in a view's masked list (Example.MaskedA, and MaskedB when
// symmetric) is predicted from the view's raw output y against an output
// table U of Config.MLMBuckets rows (zero at start, allocated on first
// use), with negative sampling over Config.MLMNegatives uniform rows (see
// mlmRow). Its loss is the mean over masked words.
type maskedToken struct {
	l       *Learner
	out     []float32 // output table, MLMBuckets x OutDim (nil until used)
	outAcc  []float32 // its Adagrad accumulators (nil for SGD)
	outGrad sparseGrad

	arena     [][]uint32 // per worker: masked-word ids, then touched output rows
	coefArena [][]float32
	t         [][]uint32 // per online row: masked-word ids
	rows      [][]uint32 // per online row: touched output rows
	coef      [][]float32
	rowLoss   []float64
}

func newMaskedToken(l *Learner) *maskedToken {
	c := &l.cfg
	return &maskedToken{l: l, outGrad: newSparseGrad(0, c.OutDim, c.Workers),
		arena: make([][]uint32, c.Workers), coefArena: make([][]float32, c.Workers)}
}

// on reports whether the objective trains.
func (m *maskedToken) on() bool { return m.l.cfg.MLMWeight > 0 }

// ensure allocates the output table (zero, as word2vec's output vectors
// start) and its optimiser state.
func (m *maskedToken) ensure() {
	if m.out != nil {
		return
	}
	c := &m.l.cfg
	m.out = make([]float32, c.MLMBuckets*c.OutDim)
	if c.EmbedOptimizer == EmbedAdagrad {
		m.outAcc = make([]float32, c.MLMBuckets*c.OutDim)
	}
	m.outGrad = newSparseGrad(c.MLMBuckets, c.OutDim, c.Workers)
}

func (m *maskedToken) begin(p *pass) {
	if !m.on() {
		return
	}
	m.ensure()
	if cap(m.t) < 2*p.b {
		m.t = make([][]uint32, 2*p.b)
		m.rows = make([][]uint32, 2*p.b)
		m.coef = make([][]float32, 2*p.b)
	}
	m.t = m.t[:2*p.b]
	for w := range m.arena {
		m.arena[w] = m.arena[w][:0]
	}
}

func (m *maskedToken) featurise(p *pass, w, i int, e *Example) {
	if !m.on() {
		return
	}
	f := m.l.sc.feats[w]
	mar := m.arena[w]
	s := len(mar)
	mar = f.mlmIDs(e.MaskedA, mar)
	m.t[i] = mar[s:len(mar):len(mar)]
	s = len(mar)
	mar = f.mlmIDs(e.MaskedB, mar)
	m.t[p.b+i] = mar[s:len(mar):len(mar)]
	m.arena[w] = mar
}

func (m *maskedToken) loss(p *pass, _, _ []Example, st *StepStats) {
	if !m.on() {
		return
	}
	l := m.l
	c := &l.cfg
	sc := &l.sc
	od, nq := c.OutDim, p.nq
	total := 0
	for q := 0; q < nq; q++ {
		total += len(m.t[q])
	}
	if total == 0 {
		return
	}
	dy := p.gradY(od)
	if cap(m.rowLoss) < nq {
		m.rowLoss = make([]float64, 2*p.b)
	}
	m.rowLoss = m.rowLoss[:nq]
	scale := c.MLMWeight / float64(total) / float64(c.AccumSteps)
	seed := l.rng.s
	l.parallel(nq, func(w, lo, hi int) {
		rows := m.arena[w]
		coefs := m.coefArena[w][:0]
		for q := lo; q < hi; q++ {
			r := rng{s: mix64(seed ^ uint64(q+1)*0xd1342543de82ef95)}
			s := len(rows)
			cs := len(coefs)
			var loss float64
			loss, rows, coefs = mlmRow(sc.cq.y[q*od:(q+1)*od], m.out, od, m.t[q], c.MLMNegatives,
				c.MLMBuckets, &r, scale, dy[q*od:(q+1)*od], rows, coefs)
			m.rows[q] = rows[s:len(rows):len(rows)]
			m.coef[q] = coefs[cs:len(coefs):len(coefs)]
			m.rowLoss[q] = loss
		}
		m.arena[w] = rows
		m.coefArena[w] = coefs
	})
	var ml float64
	for _, v := range m.rowLoss {
		ml += v
	}
	st.MLM = ml / float64(total)
	st.Loss += c.MLMWeight * st.MLM
	// Output-table gradients, sharded by row.
	l.shards(func(k int) {
		sh := &m.outGrad.shards[k]
		W := uint32(c.Workers)
		for q := 0; q < nq; q++ {
			y := sc.cq.y[q*od : (q+1)*od]
			for t, r := range m.rows[q] {
				if r%W == uint32(k) {
					m.outGrad.add(sh, r, m.coef[q][t], y)
				}
			}
		}
	})
}

func (m *maskedToken) update(k int, lr, eps float32) {
	if m.out != nil && k < len(m.outGrad.shards) {
		sh := &m.outGrad.shards[k]
		rowsUpdate(m.out, m.outAcc, sh.rows, sh.grad, m.l.cfg.OutDim, lr, eps)
		m.outGrad.reset(k)
	}
}
