package train

import "math"

// contrastInput describes one direction of the contrastive loss: b anchors
// (rows of q), candidates (m rows of c: the queue first, then the b batch
// keys, so anchor i's positive is row nq+i), and the identity hashes used
// to mask false negatives.
type contrastInput struct {
	q, c              []float32 // b x d, m x d
	b, nq, d          int
	tau, beta         float64
	maskCluster       bool
	maskRecord        bool
	cluster, record   []uint64 // per anchor (batch row)
	qCluster, qRecord []uint64 // per queue row
	scale             float64  // gradient scale of each anchor's loss
	workers           int      // goroutines of the matrix products
}

// contrastOut receives per-anchor results.
type contrastOut struct {
	s, ds   []float32 // b x m logits, then their gradients
	loss    []float64 // per anchor
	correct []bool    // per anchor
	dq      []float32 // b x d gradient wrt q
	mask    maskIndex // false negatives, built by contrastLogits
}

func (o *contrastOut) size(b, m, d int) {
	o.s = grow(o.s, b*m)
	o.ds = grow(o.ds, b*m)
	o.dq = grow(o.dq, b*d)
	if cap(o.loss) < b {
		o.loss = make([]float64, b)
		o.correct = make([]bool, b)
	}
	o.loss, o.correct = o.loss[:b], o.correct[:b]
}

// masked reports whether candidate j is a false negative of anchor i.
func (in *contrastInput) masked(i, j int) bool {
	var cl, rec uint64
	if j < in.nq {
		cl, rec = in.qCluster[j], in.qRecord[j]
	} else {
		if j-in.nq == i {
			return false
		}
		cl, rec = in.cluster[j-in.nq], in.record[j-in.nq]
	}
	if in.maskCluster && cl != 0 && cl == in.cluster[i] {
		return true
	}
	return in.maskRecord && rec != 0 && rec == in.record[i]
}

// maskIndex lists the false negatives of every anchor (exactly those of
// contrastInput.masked) so that a row's masking costs its masked columns,
// not a test per candidate: the columns are grouped by the cluster hash,
// and by the record hash, that they share with some anchor.
type maskIndex struct {
	b, nq                   int
	maskCluster, maskRecord bool
	cluster, record         hashGroups
}

// build indexes the candidates of in; contrastLogits calls it, once per
// logit matrix, before the rows run in parallel and read it.
func (x *maskIndex) build(in *contrastInput) {
	x.b, x.nq = in.b, in.nq
	x.maskCluster, x.maskRecord = in.maskCluster, in.maskRecord
	if in.maskCluster {
		x.cluster.build(in.cluster[:in.b], in.qCluster[:in.nq])
	}
	if in.maskRecord {
		x.record.build(in.record[:in.b], in.qRecord[:in.nq])
	}
}

// apply sets the logits of anchor i's false negatives in its row s to -Inf
// and returns how many there are. A column masked by both its cluster and
// its record counts once; the anchor's own batch column (its positive) is
// never masked.
func (x *maskIndex) apply(i int, s []float32) int {
	p := x.nq + i
	negInf := float32(math.Inf(-1))
	k := 0
	cg := int32(-1)
	if x.maskCluster {
		cg = x.cluster.anchor[i]
		for _, j := range x.cluster.members(cg) {
			if int(j) != p {
				s[j] = negInf
				k++
			}
		}
	}
	if x.maskRecord {
		for _, j := range x.record.members(x.record.anchor[i]) {
			if int(j) == p || (cg >= 0 && x.cluster.col[j] == cg) {
				continue // the positive, or masked already by its cluster
			}
			s[j] = negInf
			k++
		}
	}
	return k
}

// hashGroups indexes one kind of identity hash for maskIndex. Each distinct
// nonzero hash that an anchor carries is a group; members(g) are the
// candidate columns (queue rows 0..nq-1, then batch rows nq+k) carrying
// group g's hash, in increasing order. The zero hash is in no group.
type hashGroups struct {
	slots  []int32  // open addressing over the anchors' hashes: group+1, 0 empty
	keys   []uint64 // per group: its hash
	anchor []int32  // per anchor: its group, -1 for none
	col    []int32  // per candidate column: its group, -1 for none
	start  []int32  // per group, plus one: where its columns begin in cols
	cols   []int32
}

func (h *hashGroups) build(anchor, queue []uint64) {
	b, nq := len(anchor), len(queue)
	bits := 4
	for 1<<bits < 2*b {
		bits++
	}
	h.slots = growIdx(h.slots, 1<<bits)
	clear(h.slots)
	h.keys = h.keys[:0]
	h.anchor = growIdx(h.anchor, b)
	for i, k := range anchor {
		h.anchor[i] = h.find(k, bits, true)
	}
	h.col = growIdx(h.col, nq+b)
	for j, k := range queue {
		h.col[j] = h.find(k, bits, false)
	}
	copy(h.col[nq:], h.anchor)
	// Counting sort of the columns by group.
	ng := len(h.keys)
	h.start = growIdx(h.start, ng+1)
	clear(h.start)
	for _, g := range h.col {
		if g >= 0 {
			h.start[g+1]++
		}
	}
	for g := 1; g <= ng; g++ {
		h.start[g] += h.start[g-1]
	}
	h.cols = growIdx(h.cols, int(h.start[ng]))
	for j, g := range h.col {
		if g >= 0 {
			h.cols[h.start[g]] = int32(j)
			h.start[g]++
		}
	}
	// start[g] now holds the end of group g, which is where g+1 begins.
	copy(h.start[1:], h.start[:ng])
	h.start[0] = 0
}

// find returns the group of hash k, -1 when k is zero or (unless add,
// which makes a new group) not carried by an anchor.
func (h *hashGroups) find(k uint64, bits int, add bool) int32 {
	if k == 0 {
		return -1
	}
	mask := 1<<bits - 1
	at := int((k * 0x9e3779b97f4a7c15) >> (64 - bits))
	for {
		g := h.slots[at]
		if g == 0 {
			if !add {
				return -1
			}
			h.keys = append(h.keys, k)
			h.slots[at] = int32(len(h.keys))
			return int32(len(h.keys) - 1)
		}
		if h.keys[g-1] == k {
			return g - 1
		}
		at = (at + 1) & mask
	}
}

// members returns the candidate columns of group g (none for g < 0).
func (h *hashGroups) members(g int32) []int32 {
	if g < 0 {
		return nil
	}
	return h.cols[h.start[g]:h.start[g+1]]
}

// growIdx returns buf resized to n, reallocating when its capacity is short.
func growIdx[T int32 | uint64](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n, n+n/4)
	}
	return buf[:n]
}

// contrastLogits computes all logits s = q c^T / tau (one matrix product)
// and indexes the false negatives for contrastRows.
func contrastLogits(in *contrastInput, out *contrastOut) {
	m := in.nq + in.b
	out.size(in.b, m, in.d)
	matmulPar(out.s, in.q, in.c, in.b, in.d, m, false, true, in.workers)
	out.mask.build(in)
}

// contrastRows computes the loss, accuracy and logit gradients of anchors
// lo..hi-1. Each anchor's loss is the hard-negative-weighted InfoNCE of
// Robinson et al.:
//
//	L = -s_p + log(e^{s_p} + N * sum_j w_j e^{a_j}),  w = softmax(beta a)
//
// over its N unmasked negatives a_j; beta = 0 is plain InfoNCE. The weights
// are not detached: the gradient flows through them. It reads the mask
// index of contrastLogits, which must have run on the same input.
//
// With beta = 0 a row takes three passes over its m logits, each a vector
// kernel: the maximum over the unmasked negatives (the positive and the
// false negatives set to -Inf first, so that their exponentials are 0), the
// exponentials and their sum, and the gradient scaling. The sum is
// accumulated in float64 in eight fixed lanes, so the result depends neither
// on the kernel nor on how the anchors are split among workers.
func contrastRows(in *contrastInput, out *contrastOut, lo, hi int) {
	if x := &out.mask; x.b != in.b || x.nq != in.nq || x.maskCluster != in.maskCluster || x.maskRecord != in.maskRecord {
		panic("train: contrastRows on an input that contrastLogits did not index")
	}
	if in.beta != 0 {
		for i := lo; i < hi; i++ {
			contrastRowHard(in, out, i)
		}
		return
	}
	m := in.nq + in.b
	invTau := float32(1 / in.tau)
	for i := lo; i < hi; i++ {
		s := out.s[i*m : (i+1)*m]
		ds := out.ds[i*m : (i+1)*m]
		p := in.nq + i
		sp := float64(s[p] * invTau)
		s[p] = float32(math.Inf(-1))
		n := m - 1 - out.mask.apply(i, s)
		// Scaling by 1/tau > 0 keeps the order, so the maximum of the
		// scaled logits is the scaled maximum: s is left unscaled.
		best := rowMax(s) * invTau
		out.correct[i] = sp > float64(best)
		if n == 0 {
			out.loss[i] = 0
			clear(ds)
			continue
		}
		var lanes [8]float64
		expSum(ds, s, invTau, best, &lanes)
		sum := sumLanes(&lanes)
		x := float64(best) + math.Log(sum) - sp // log negative mass - s_p
		out.loss[i] = softplus(x)
		pn := sigmoid(x) // probability mass on the negatives
		// dL/da_j = pn softmax(a)_j; the masked entries stay 0.
		scaleRow(ds, float32(pn*in.scale/sum))
		ds[p] = float32(-pn * in.scale)
	}
}

// contrastRowHard is contrastRows for one anchor with beta != 0, one
// candidate at a time.
func contrastRowHard(in *contrastInput, out *contrastOut, i int) {
	m := in.nq + in.b
	invTau := float32(1 / in.tau)
	beta := in.beta
	s := out.s[i*m : (i+1)*m]
	ds := out.ds[i*m : (i+1)*m]
	p := in.nq + i
	for j := range s {
		s[j] *= invTau
	}
	sp := float64(s[p])
	// Pass 1: maxima over the unmasked negatives.
	n := 0
	max1, max2 := math.Inf(-1), math.Inf(-1)
	best := math.Inf(-1)
	for j := range s {
		if j == p || in.masked(i, j) {
			ds[j] = 0
			continue
		}
		ds[j] = 1 // marks an unmasked negative
		a := float64(s[j])
		n++
		best = max(best, a)
		max1 = max(max1, (1+beta)*a)
		max2 = max(max2, beta*a)
	}
	out.correct[i] = sp > best
	if n == 0 {
		out.loss[i] = 0
		clear(ds)
		return
	}
	// Pass 2: the two log-sum-exps; the exponentials are kept (in ds and
	// s) for the gradient.
	var sum1, sum2 float64
	for j := range s {
		if ds[j] == 0 {
			continue
		}
		a := float64(s[j])
		e1 := expf(float32((1+beta)*a - max1))
		sum1 += float64(e1)
		ds[j] = e1
		e2 := expf(float32(beta*a - max2))
		sum2 += float64(e2)
		s[j] = e2
	}
	lng := max1 + math.Log(sum1)
	lng = math.Log(float64(n)) + lng - (max2 + math.Log(sum2)) // log of the reweighted negative mass
	x := lng - sp
	out.loss[i] = softplus(x)
	pn := sigmoid(x) // probability mass on the negatives
	// dL/da_j = pn * ((1+beta) softmax((1+beta)a)_j - beta softmax(beta a)_j)
	c1 := float32(pn * in.scale * (1 + beta) / sum1)
	c2 := float32(pn * in.scale * beta / sum2)
	for j := range s {
		if ds[j] != 0 {
			ds[j] = c1*ds[j] - c2*s[j]
		}
	}
	ds[p] = float32(-pn * in.scale)
}

// rowMax returns the largest element of s that is not NaN (-Inf when there
// is none), a zero maximum as +0.
func rowMax(s []float32) float32 {
	if haveAVX2 {
		return maxAVX2(s)
	}
	return rowMaxGo(s)
}

func rowMaxGo(s []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range s {
		if v > m {
			m = v
		}
	}
	return m + 0 // -0 + 0 = +0: the vector kernel may meet either zero first
}

// expSum sets ds[j] = expf(s[j]*scale - sub) and adds it, widened to
// float64, to lanes[j%8]. The arguments of expf must not exceed 88.
func expSum(ds, s []float32, scale, sub float32, lanes *[8]float64) {
	ds = ds[:len(s)]
	if haveAVX2 {
		expSumAVX2(ds, s, scale, sub, lanes)
		return
	}
	expSumGo(ds, s, scale, sub, lanes)
}

func expSumGo(ds, s []float32, scale, sub float32, lanes *[8]float64) {
	ds = ds[:len(s)]
	for j, v := range s {
		e := expf(float32(v*scale) - sub)
		ds[j] = e
		lanes[j&7] += float64(e)
	}
}

// sumLanes adds the partial sums of expSum in a fixed order.
func sumLanes(l *[8]float64) float64 {
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

// scaleRow multiplies x by c.
func scaleRow(x []float32, c float32) {
	if haveAVX2 {
		scaleAVX2(x, c)
		return
	}
	scaleRowGo(x, c)
}

func scaleRowGo(x []float32, c float32) {
	for j := range x {
		x[j] *= c
	}
}

// contrastBackward turns the logit gradients into dq = ds c / tau.
func contrastBackward(in *contrastInput, out *contrastOut) {
	m := in.nq + in.b
	matmulPar(out.dq, out.ds, in.c, in.b, m, in.d, false, false, in.workers)
	invTau := float32(1 / in.tau)
	for i := range out.dq[:in.b*in.d] {
		out.dq[i] *= invTau
	}
}

// expf is e^x in float32 for the softmax weights (x <= 0 there): Cephes'
// expf, a degree-6 polynomial after a two-constant ln 2 range reduction,
// within 2 ulp of the exact value and about half the cost of math.Exp.
// It returns 0 below -87 and +Inf above 88. Every product is rounded on its
// own (the conversions forbid fused multiply-adds), so that the result
// does not depend on GOAMD64 and expSumAVX2 can reproduce it lane by lane.
func expf(x float32) float32 {
	if x < -87 {
		return 0
	}
	if x > 88 {
		return float32(math.Inf(1))
	}
	t := float32(x*1.44269504088896341) + 0.5
	ni := int32(t) // rounds toward zero: make it the floor
	if float32(ni) > t {
		ni--
	}
	n := float32(ni)
	r := x - float32(n*0.693359375)
	r -= float32(n * -2.12194440e-4)
	p := float32(1.9875691500e-4)
	p = float32(p*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	e := float32(float32(p*r)*r) + r + 1
	// 2^n: n is in [-126, 127] here except at the very bottom.
	if ni < -126 {
		return e * math.Float32frombits(uint32(ni+126+127)<<23) * 0x1p-126
	}
	return e * math.Float32frombits(uint32(ni+127)<<23)
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	if x < -30 {
		return math.Exp(x)
	}
	return math.Log1p(math.Exp(x))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// mlmRow computes the masked-token loss of one view embedding y (d floats)
// against its target ids: for each target, a logistic loss on the target
// row of the output table and on negs sampled rows (negative sampling).
// It adds scale * dL/dy into dy, records the touched output rows and their
// coefficients (the output-table gradient of row rows[k] is coefs[k] * y)
// and returns the summed loss.
func mlmRow(y, table []float32, d int, targets []uint32, negs int, buckets int, r *rng,
	scale float64, dy []float32, rows []uint32, coefs []float32) (float64, []uint32, []float32) {
	var loss float64
	one := func(row uint32, label float64) {
		u := table[int(row)*d : int(row+1)*d]
		var s float32
		for j, v := range u {
			s += v * y[j]
		}
		sv := float64(s)
		if label == 1 {
			loss += softplus(-sv)
		} else {
			loss += softplus(sv)
		}
		g := (sigmoid(sv) - label) * scale
		gf := float32(g)
		for j, v := range u {
			dy[j] += gf * v
		}
		rows = append(rows, row)
		coefs = append(coefs, gf)
	}
	for _, t := range targets {
		one(t, 1)
		for k := 0; k < negs; k++ {
			nr := fastRange(r.next(), buckets)
			if nr == t {
				continue
			}
			one(nr, 0)
		}
	}
	return loss, rows, coefs
}
