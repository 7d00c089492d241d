package train

import (
	"math"
	"testing"
)

// contrastLoss runs the loss of every anchor and returns the scaled sum.
func contrastLoss(in *contrastInput, out *contrastOut) float64 {
	contrastLogits(in, out)
	contrastRows(in, out, 0, in.b)
	var s float64
	for _, v := range out.loss {
		s += v
	}
	return s * in.scale
}

// TestContrastGradient checks the hand-written gradient of the InfoNCE loss
// (queue, in-batch negatives, false-negative masking, hard-negative weights)
// with respect to the anchors against central differences.
func TestContrastGradient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		beta  float64
		nq    int
		maskC bool
		maskR bool
		tau   float64
	}{
		{"plain in-batch", 0, 0, false, false, 0.5},
		{"plain queue", 0, 7, false, false, 0.3},
		{"hard negatives", 1, 7, false, false, 0.3},
		{"hard negatives masked", 0.5, 7, true, true, 0.2},
		{"masked cluster only", 2, 5, true, false, 0.4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rng{s: 42}
			b, d := 5, 4
			m := tc.nq + b
			q := make([]float32, b*d)
			c := make([]float32, m*d)
			randFill(&r, q, 1)
			randFill(&r, c, 1)
			in := &contrastInput{
				q: q, c: c, b: b, nq: tc.nq, d: d, tau: tc.tau, beta: tc.beta,
				maskCluster: tc.maskC, maskRecord: tc.maskR,
				cluster: []uint64{1, 2, 1, 0, 3}, record: []uint64{10, 11, 12, 13, 11},
				qCluster: make([]uint64, tc.nq), qRecord: make([]uint64, tc.nq),
				scale: 1,
			}
			for j := range in.qCluster {
				in.qCluster[j] = uint64(j % 4)
				in.qRecord[j] = uint64(10 + j%6)
			}
			out := &contrastOut{}
			contrastLoss(in, out)
			contrastBackward(in, out)
			an := make([]float64, b*d)
			for i := range an {
				an[i] = float64(out.dq[i])
			}
			num := make([]float64, b*d)
			tmp := &contrastOut{}
			for i := range q {
				num[i] = numGrad(q, i, 1e-3, func() float64 { return contrastLoss(in, tmp) })
			}
			if e := relErr(an, num); e > 1e-2 {
				t.Fatalf("relative error %.3g\nanalytic %v\nnumeric  %v", e, an, num)
			}
		})
	}
}

// TestContrastMaskingAndBeta checks what masking and beta do to the loss.
func TestContrastMaskingAndBeta(t *testing.T) {
	b, d := 2, 2
	// Anchor 0 = (1,0); its positive (0.9,0.1); candidate 1 close to anchor 0.
	q := []float32{1, 0, 0, 1}
	c := []float32{1, 0, 0.9, 0.1, 0, 1}
	in := &contrastInput{q: q, c: c, b: b, nq: 1, d: d, tau: 1,
		cluster: []uint64{5, 6}, record: []uint64{1, 2},
		qCluster: []uint64{5}, qRecord: []uint64{9}, scale: 1}
	out := &contrastOut{}
	contrastLoss(in, out)
	unmasked := out.loss[0]
	if out.correct[0] {
		t.Fatalf("anchor 0: the queue key equal to it should beat its positive")
	}
	in.maskCluster = true
	contrastLoss(in, out)
	if !(out.loss[0] < unmasked) || !out.correct[0] {
		t.Fatalf("masking the same-cluster queue key: loss %g (was %g), correct %v", out.loss[0], unmasked, out.correct[0])
	}
	// Plain InfoNCE equals -log softmax.
	in.maskCluster = false
	contrastLoss(in, out)
	s := []float64{1, 0.9, 0} // anchor 0 against queue, pos, other key
	want := -0.9 + math.Log(math.Exp(1)+math.Exp(0.9)+math.Exp(0))
	if math.Abs(out.loss[0]-want) > 1e-5 {
		t.Fatalf("plain InfoNCE %g, want %g (%v)", out.loss[0], want, s)
	}
	// beta > 0 weights the hard (similar) negative more: the loss grows.
	in.beta = 1
	contrastLoss(in, out)
	if !(out.loss[0] > want) {
		t.Fatalf("beta=1 loss %g is not above plain %g", out.loss[0], want)
	}
}

// TestMLMGradient checks the masked-token head's gradients with respect to
// the view embedding and to the output-table rows.
func TestMLMGradient(t *testing.T) {
	r := rng{s: 7}
	d, buckets := 6, 11
	y := make([]float32, d)
	table := make([]float32, buckets*d)
	randFill(&r, y, 1)
	randFill(&r, table, 1)
	targets := []uint32{3, 7, 3}
	seed := uint64(99)
	loss := func() float64 {
		rr := rng{s: seed}
		dy := make([]float32, d)
		l, _, _ := mlmRow(y, table, d, targets, 4, buckets, &rr, 1, dy, nil, nil)
		return l
	}
	rr := rng{s: seed}
	dy := make([]float32, d)
	_, rows, coefs := mlmRow(y, table, d, targets, 4, buckets, &rr, 1, dy, nil, nil)
	an, num := make([]float64, d), make([]float64, d)
	for i := range y {
		an[i] = float64(dy[i])
		num[i] = numGrad(y, i, 1e-3, loss)
	}
	if e := relErr(an, num); e > 1e-2 {
		t.Fatalf("dL/dy relative error %.3g: %v vs %v", e, an, num)
	}
	// Table gradient: row r gets sum of coef*y over its occurrences.
	gt := make([]float64, buckets*d)
	for k, row := range rows {
		for j := 0; j < d; j++ {
			gt[int(row)*d+j] += float64(coefs[k] * y[j])
		}
	}
	numT := make([]float64, buckets*d)
	for i := range table {
		numT[i] = numGrad(table, i, 1e-3, loss)
	}
	if e := relErr(gt, numT); e > 1e-2 {
		t.Fatalf("dL/dtable relative error %.3g", e)
	}
}
