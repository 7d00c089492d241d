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

// contrastLogits computes all logits s = q c^T / tau (one matrix product).
func contrastLogits(in *contrastInput, out *contrastOut) {
	m := in.nq + in.b
	out.size(in.b, m, in.d)
	matmulPar(out.s, in.q, in.c, in.b, in.d, m, false, true, in.workers)
}

// contrastRows computes the loss, accuracy and logit gradients of anchors
// lo..hi-1. Each anchor's loss is the hard-negative-weighted InfoNCE of
// Robinson et al.:
//
//	L = -s_p + log(e^{s_p} + N * sum_j w_j e^{a_j}),  w = softmax(beta a)
//
// over its N unmasked negatives a_j; beta = 0 is plain InfoNCE. The weights
// are not detached: the gradient flows through them.
func contrastRows(in *contrastInput, out *contrastOut, lo, hi int) {
	m := in.nq + in.b
	invTau := float32(1 / in.tau)
	beta := in.beta
	for i := lo; i < hi; i++ {
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
			continue
		}
		// Pass 2: the two log-sum-exps; the exponentials are kept (in ds
		// and, for beta > 0, in s) for the gradient.
		var sum1, sum2 float64
		for j := range s {
			if ds[j] == 0 {
				continue
			}
			a := float64(s[j])
			e1 := expf(float32((1+beta)*a - max1))
			sum1 += float64(e1)
			ds[j] = e1
			if beta != 0 {
				e2 := expf(float32(beta*a - max2))
				sum2 += float64(e2)
				s[j] = e2
			}
		}
		lng := max1 + math.Log(sum1) // log of the reweighted negative mass
		if beta != 0 {
			lng = math.Log(float64(n)) + lng - (max2 + math.Log(sum2))
		}
		x := lng - sp
		out.loss[i] = softplus(x)
		pn := sigmoid(x) // probability mass on the negatives
		// dL/da_j = pn * ((1+beta) softmax((1+beta)a)_j - beta softmax(beta a)_j)
		c1 := float32(pn * in.scale * (1 + beta) / sum1)
		var c2 float32
		if beta != 0 {
			c2 = float32(pn * in.scale * beta / sum2)
		}
		for j := range s {
			if ds[j] == 0 {
				continue
			}
			if beta != 0 {
				ds[j] = c1*ds[j] - c2*s[j]
			} else {
				ds[j] *= c1
			}
		}
		ds[p] = float32(-pn * in.scale)
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
// It returns 0 below -87 and +Inf above 88.
func expf(x float32) float32 {
	if x < -87 {
		return 0
	}
	if x > 88 {
		return float32(math.Inf(1))
	}
	t := x*1.44269504088896341 + 0.5
	ni := int32(t) // rounds toward zero: make it the floor
	if float32(ni) > t {
		ni--
	}
	n := float32(ni)
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	e := p*r*r + r + 1
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
