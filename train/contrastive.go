package train

// contrastive is the contrastive objective: each online row (the anchor q)
// against its positive key and the negatives (the queue's keys, the
// micro-batch's extra negatives and the other keys of the micro-batch),
// with false negatives masked and hard negatives weighted by Config.Beta
// (see the package documentation and contrastRows). Its figures are
// computed whatever its weight; its gradient flows when
// Config.ContrastiveWeight > 0. The queue it reads belongs to the learner,
// which pushes the micro-batch's keys after the step.
type contrastive struct{ l *Learner }

func (o *contrastive) featurise(*pass, int, int, *Example) {}

func (o *contrastive) update(int, float32, float32) {}

func (o *contrastive) loss(p *pass, batch, negatives []Example, st *StepStats) {
	l := o.l
	c := &l.cfg
	sc := &l.sc
	b, od := p.b, c.OutDim
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
		scale:   c.ContrastiveWeight / float64(p.nq) / float64(c.AccumSteps),
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
	for dir := 0; dir < p.dirs; dir++ {
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
			copy(p.dz[dir*b*od:], sc.cout.dq[:b*od])
		}
	}
	st.Contrastive = conSum / float64(p.nq)
	st.Accuracy = float64(correct) / float64(p.nq)
	st.Loss += c.ContrastiveWeight * st.Contrastive
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
