package train

import (
	"fmt"
	"math"
	"testing"
)

// contrastRowsOld is the element-by-element loop the vector passes replaced.
func contrastRowsOld(in *contrastInput, out *contrastOut, lo, hi int) {
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
		n := 0
		max1, max2 := math.Inf(-1), math.Inf(-1)
		best := math.Inf(-1)
		for j := range s {
			if j == p || in.masked(i, j) {
				ds[j] = 0
				continue
			}
			ds[j] = 1
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
		lng := max1 + math.Log(sum1)
		if beta != 0 {
			lng = math.Log(float64(n)) + lng - (max2 + math.Log(sum2))
		}
		x := lng - sp
		out.loss[i] = softplus(x)
		pn := sigmoid(x)
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

// benchContrast builds a trainer-sized loss input: b anchors against a
// queue of nq keys and the batch, unit vectors of width d, a few hundred
// clusters and some shared records, both masks on.
func benchContrast(b, nq, d int) (*contrastInput, *contrastOut) {
	r := rng{s: 7}
	m := nq + b
	unit := func(v []float32) {
		randFill(&r, v, 1)
		var ss float32
		for _, x := range v {
			ss += x * x
		}
		f := float32(1 / math.Sqrt(float64(ss)))
		for k := range v {
			v[k] *= f
		}
	}
	q := make([]float32, b*d)
	c := make([]float32, m*d)
	for i := 0; i < b; i++ {
		unit(q[i*d : (i+1)*d])
	}
	for j := 0; j < m; j++ {
		unit(c[j*d : (j+1)*d])
	}
	id := func(n int) uint64 { return mix64(uint64(r.next()%uint64(n)) + 1) }
	in := &contrastInput{q: q, c: c, b: b, nq: nq, d: d, tau: 0.1,
		maskCluster: true, maskRecord: true,
		cluster: make([]uint64, b), record: make([]uint64, b),
		qCluster: make([]uint64, nq), qRecord: make([]uint64, nq),
		scale: 1 / float64(b), workers: 1}
	for i := 0; i < b; i++ {
		in.cluster[i], in.record[i] = id(300), id(20000)
	}
	for j := 0; j < nq; j++ {
		in.qCluster[j], in.qRecord[j] = id(300), id(20000)
		if j%10 == 0 {
			in.qCluster[j] = 0
		}
	}
	out := &contrastOut{}
	contrastLogits(in, out)
	return in, out
}

// withAVX2 runs f with haveAVX2 set to on, restoring it afterwards.
func withAVX2(on bool, f func()) {
	old := haveAVX2
	defer func() { haveAVX2 = old }()
	haveAVX2 = on
	f()
}

// softmaxLengths are the row lengths the kernel tests try: every length up
// to a few vectors, and some around the trainer's sizes.
func softmaxLengths() []int {
	var ls []int
	for n := 0; n <= 80; n++ {
		ls = append(ls, n)
	}
	return append(ls, 127, 128, 129, 255, 256, 257, 1000, 1031, 4352, 4353)
}

// edgeFloats are values the kernels must treat exactly like the scalar code.
var edgeFloats = []float32{0, float32(math.Copysign(0, -1)), 1, -1, -87, 88,
	math.Nextafter32(-87, -100), math.Nextafter32(-87, 0), math.Nextafter32(88, 0),
	math.Nextafter32(88, 100), -86.99, -100, -1e30, 1e30, 1e-40, -1e-40, -1e-10,
	math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(-1)), float32(math.Inf(1)),
	-0.5, 0.5, -126 * 0.6931472, -10, 87.5}

// randRow fills s with values around [lo, hi] and sprinkles edge values and
// -Inf (the masked entries of a logit row) in.
func randRow(r *rng, s []float32, lo, hi float32) {
	for j := range s {
		s[j] = lo + (hi-lo)*r.float32()
		switch r.next() % 16 {
		case 0:
			s[j] = float32(math.Inf(-1))
		case 1:
			s[j] = edgeFloats[r.next()%uint64(len(edgeFloats))]
		}
	}
}

func sameBits32(a, b []float32) int {
	for j := range a {
		if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
			return j
		}
	}
	return -1
}

// TestSoftmaxKernels compares the assembly kernels with their Go
// references bit for bit.
func TestSoftmaxKernels(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2 on this machine or build")
	}
	r := rng{s: 3}
	const guard = 9
	for _, n := range softmaxLengths() {
		for rep := 0; rep < 4; rep++ {
			s := make([]float32, n)
			lo, hi := []float32{-20, -100, -3, -1e3}[rep], []float32{20, 0, 100, 1e3}[rep]
			randRow(&r, s, lo, hi)
			if rep == 3 && n > 0 {
				s[r.next()%uint64(n)] = float32(math.Copysign(0, -1))
			}
			if rep == 2 && n > 0 {
				s[r.next()%uint64(n)] = float32(math.NaN()) // rowMax passes over it
			}
			if m := rowMaxGo(s); math.Float32bits(m) != math.Float32bits(maxAVX2(s)) {
				t.Fatalf("n=%d rep %d: rowMax %v, Go reference %v", n, rep, maxAVX2(s), m)
			}
			for j, v := range s {
				if v != v {
					s[j] = 0 // no NaN logits from here on
				}
			}
			// expSum onto nonzero partial sums, with scales and offsets that
			// put the arguments of expf below and at 0, below -87 and
			// (for the range check) above 88.
			scale := []float32{1, 10, 0.5, 1}[rep]
			sub := rowMaxGo(s) * scale
			if rep == 3 {
				sub = -50
			}
			want := make([]float32, n+guard)
			got := make([]float32, n+guard)
			for j := range got {
				want[j], got[j] = 7, 7
			}
			var lw, lg [8]float64
			for k := range lw {
				lw[k] = float64(k) * 0.25
				lg[k] = lw[k]
			}
			expSumGo(want[:n], s, scale, sub, &lw)
			expSumAVX2(got[:n], s, scale, sub, &lg)
			if j := sameBits32(want, got); j >= 0 {
				t.Fatalf("n=%d rep %d: expSum[%d] = %v (%#x), Go reference %v (%#x); x = %v",
					n, rep, j, got[j], math.Float32bits(got[j]), want[j], math.Float32bits(want[j]), s[min(j, n-1)]*scale-sub)
			}
			for k := range lw {
				if math.Float64bits(lw[k]) != math.Float64bits(lg[k]) {
					t.Fatalf("n=%d rep %d: lane %d sum %v, Go reference %v", n, rep, k, lg[k], lw[k])
				}
			}
			// scaleRow on the exponentials, and on the raw row.
			for _, row := range [][]float32{want, s} {
				a := append([]float32(nil), row...)
				b := append([]float32(nil), row...)
				c := []float32{0.37, -3, 1e-30}[rep%3]
				scaleRowGo(a[:len(a)-len(a)%3], c)
				scaleAVX2(b[:len(b)-len(b)%3], c)
				if j := sameBits32(a, b); j >= 0 {
					t.Fatalf("n=%d: scaleRow[%d] = %v, Go reference %v", n, j, b[j], a[j])
				}
			}
		}
	}
}

// TestExpSumExact checks expSum's exponentials against the scalar expf on
// float32 arguments spread over the bit patterns of [-90, 90], on every
// argument near the cut-offs -87 and 88, and on the edge values.
func TestExpSumExact(t *testing.T) {
	var xs []float32
	for u := uint32(0); u <= math.Float32bits(90); u += 1021 {
		xs = append(xs, math.Float32frombits(u), math.Float32frombits(u|1<<31))
	}
	r := rng{s: 13}
	for k := 0; k < 1<<22; k++ {
		xs = append(xs, 180*r.float32()-90)
	}
	// Where x*log2(e) + 0.5 is nearly an integer the floor of the range
	// reduction is decided by the last bits.
	for k := -130; k <= 130; k++ {
		c := float32((float64(k) - 0.5) * math.Ln2)
		for u := math.Float32bits(c) - 64; u <= math.Float32bits(c)+64; u++ {
			xs = append(xs, math.Float32frombits(u))
		}
	}
	for _, c := range []float32{-87, 88} {
		for x := c - 0.25; x < c+0.25; x = math.Nextafter32(x, 100) {
			xs = append(xs, x)
		}
	}
	xs = append(xs, edgeFloats...)
	got := make([]float32, len(xs))
	var lanes [8]float64
	for _, avx := range []bool{false, true} {
		if avx && !haveAVX2 {
			continue
		}
		withAVX2(avx, func() { expSum(got, xs, 1, 0, &lanes) })
		for j, x := range xs {
			if math.Float32bits(got[j]) != math.Float32bits(expf(x)) {
				t.Fatalf("avx2=%v: expSum(%v) = %v, expf gives %v", avx, x, got[j], expf(x))
			}
		}
	}
}

// maskTestInput makes a loss input whose hashes collide a lot: clusters
// and records from small sets (0 meaning none), in the queue and the batch.
func maskTestInput(r *rng, b, nq, d int, maskC, maskR bool) *contrastInput {
	q := make([]float32, b*d)
	c := make([]float32, (nq+b)*d)
	randFill(r, q, 1)
	randFill(r, c, 1)
	in := &contrastInput{q: q, c: c, b: b, nq: nq, d: d, tau: 0.2,
		maskCluster: maskC, maskRecord: maskR,
		cluster: make([]uint64, b), record: make([]uint64, b),
		qCluster: make([]uint64, nq+3), qRecord: make([]uint64, nq+3), // longer than nq, like the queue's
		scale: 0.7, workers: 1}
	for i := range in.cluster {
		in.cluster[i], in.record[i] = r.next()%6, 100+r.next()%9
	}
	for j := range in.qCluster {
		in.qCluster[j], in.qRecord[j] = r.next()%8, 100+r.next()%12
		if j%7 == 0 {
			in.qRecord[j] = 0
		}
	}
	if b > 2 {
		// Anchor 0: every candidate is a false negative (batch rows by
		// cluster, queue rows by record).
		in.cluster[0], in.record[0] = 77, 777
		for k := 1; k < b; k++ {
			in.cluster[k] = 77
		}
		for j := 0; j < nq; j++ {
			in.qRecord[j] = 777
		}
		// Anchor 1 (cluster 77 too) and 2: some queue rows by record only.
		in.record[2] = 100
	}
	return in
}

// TestMaskIndex checks the false negatives of the index against masked.
func TestMaskIndex(t *testing.T) {
	r := rng{s: 11}
	for _, tc := range []struct {
		b, nq        int
		maskC, maskR bool
	}{{1, 0, true, true}, {5, 0, true, true}, {5, 13, true, true}, {9, 40, true, false},
		{9, 40, false, true}, {9, 40, false, false}, {40, 300, true, true}, {3, 2, true, true}} {
		in := maskTestInput(&r, tc.b, tc.nq, 2, tc.maskC, tc.maskR)
		if tc.b == 40 {
			for j := 0; j < tc.nq; j++ {
				in.qRecord[j] = 100 + r.next()%12
			}
		}
		out := &contrastOut{}
		contrastLogits(in, out)
		m := tc.nq + tc.b
		for i := 0; i < tc.b; i++ {
			row := make([]float32, m)
			k := out.mask.apply(i, row)
			want := 0
			for j := range row {
				mk := in.masked(i, j)
				if mk {
					want++
				}
				if mk != math.IsInf(float64(row[j]), -1) {
					t.Fatalf("%+v anchor %d column %d: index masks %v, masked says %v", tc, i, j, !mk, mk)
				}
			}
			if k != want {
				t.Fatalf("%+v anchor %d: %d masked, want %d", tc, i, k, want)
			}
		}
	}
}

// contrastRowsRef is contrastRows with beta = 0 written plainly, in
// float64 with math.Exp.
func contrastRowsRef(in *contrastInput, s []float32) (loss []float64, correct []bool, ds []float64) {
	m := in.nq + in.b
	loss, correct, ds = make([]float64, in.b), make([]bool, in.b), make([]float64, in.b*m)
	for i := 0; i < in.b; i++ {
		p := in.nq + i
		a := func(j int) float64 { return float64(s[i*m+j]) / in.tau }
		best, n := math.Inf(-1), 0
		for j := 0; j < m; j++ {
			if j != p && !in.masked(i, j) {
				best = max(best, a(j))
				n++
			}
		}
		correct[i] = a(p) > best
		if n == 0 {
			continue
		}
		var sum float64
		for j := 0; j < m; j++ {
			if j != p && !in.masked(i, j) {
				sum += math.Exp(a(j) - best)
			}
		}
		x := best + math.Log(sum) - a(p)
		loss[i] = math.Log1p(math.Exp(x))
		pn := 1 / (1 + math.Exp(-x))
		for j := 0; j < m; j++ {
			if j != p && !in.masked(i, j) {
				ds[i*m+j] = pn * in.scale * math.Exp(a(j)-best) / sum
			}
		}
		ds[i*m+p] = -pn * in.scale
	}
	return loss, correct, ds
}

// TestContrastRowsReference checks loss, accuracy and logit gradients of
// the vector passes against the plain float64 computation, with both
// masks, collisions in queue and batch, and an anchor without negatives.
func TestContrastRowsReference(t *testing.T) {
	r := rng{s: 5}
	for _, tc := range []struct {
		b, nq, d     int
		maskC, maskR bool
	}{{1, 0, 4, true, true}, {2, 0, 4, true, true}, {6, 0, 8, true, true}, {6, 17, 8, true, true},
		{7, 50, 8, true, false}, {7, 50, 8, false, true}, {8, 61, 16, false, false},
		{33, 400, 16, true, true}, {3, 5, 4, true, true}} {
		for _, avx := range []bool{false, true} {
			if avx && !haveAVX2 {
				continue
			}
			in := maskTestInput(&r, tc.b, tc.nq, tc.d, tc.maskC, tc.maskR)
			out := &contrastOut{}
			contrastLogits(in, out)
			s0 := append([]float32(nil), out.s...)
			wl, wc, wds := contrastRowsRef(in, s0)
			withAVX2(avx, func() { contrastRows(in, out, 0, in.b) })
			name := fmt.Sprintf("%+v avx2=%v", tc, avx)
			m := tc.nq + tc.b
			close := func(got, want float64) bool { return math.Abs(got-want) <= 1e-5*math.Abs(want)+1e-12 }
			for i := 0; i < tc.b; i++ {
				if !close(out.loss[i], wl[i]) || out.correct[i] != wc[i] {
					t.Fatalf("%s anchor %d: loss %v correct %v, want %v %v", name, i, out.loss[i], out.correct[i], wl[i], wc[i])
				}
				for j := 0; j < m; j++ {
					if g, w := float64(out.ds[i*m+j]), wds[i*m+j]; !close(g, w) || (w == 0) != (g == 0) {
						t.Fatalf("%s anchor %d: ds[%d] = %v, want %v", name, i, j, g, w)
					}
				}
			}
			if tc.b > 2 && tc.maskC && tc.maskR && (out.loss[0] != 0 || wl[0] != 0) {
				t.Fatalf("%s: anchor 0 has no negatives but loss %v", name, out.loss[0])
			}
		}
	}
}

// TestContrastRowsDeterministic checks that the Go passes and the vector
// kernels, and any split of the anchors among workers, give the same bits.
func TestContrastRowsDeterministic(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2 on this machine or build")
	}
	r := rng{s: 9}
	in := maskTestInput(&r, 64, 1000, 32, true, true)
	in.tau = 0.05
	var first *contrastOut
	for _, run := range []struct {
		avx    bool
		splits int
	}{{true, 1}, {false, 1}, {true, 3}, {false, 7}} {
		out := &contrastOut{}
		contrastLogits(in, out)
		withAVX2(run.avx, func() {
			for w := 0; w < run.splits; w++ {
				contrastRows(in, out, w*in.b/run.splits, (w+1)*in.b/run.splits)
			}
		})
		if first == nil {
			first = out
			continue
		}
		for i := range out.loss {
			if math.Float64bits(out.loss[i]) != math.Float64bits(first.loss[i]) || out.correct[i] != first.correct[i] {
				t.Fatalf("%+v anchor %d: loss %v %v, first run %v %v", run, i, out.loss[i], out.correct[i], first.loss[i], first.correct[i])
			}
		}
		if j := sameBits32(out.ds, first.ds); j >= 0 {
			t.Fatalf("%+v: ds[%d] = %v, first run %v", run, j, out.ds[j], first.ds[j])
		}
	}
}

// BenchmarkContrastRows times the softmax of a trainer-sized micro-batch:
// 256 anchors against 4096 queue keys and the batch, width 128. "old" is
// the candidate-by-candidate loop; "go" and "avx2" include building the
// mask index, which "index" times alone.
func BenchmarkContrastRows(b *testing.B) {
	const nb, nq, d = 256, 4096, 128
	in, out := benchContrast(nb, nq, d)
	s0 := append([]float32(nil), out.s...)
	run := func(b *testing.B, rows func()) {
		for b.Loop() {
			b.StopTimer()
			copy(out.s, s0)
			b.StartTimer()
			rows()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nb), "ns/anchor")
	}
	b.Run("old", func(b *testing.B) { run(b, func() { contrastRowsOld(in, out, 0, nb) }) })
	b.Run("index", func(b *testing.B) { run(b, func() { out.mask.build(in) }) })
	for _, avx := range []bool{false, true} {
		if avx && !haveAVX2 {
			continue
		}
		b.Run(map[bool]string{false: "go", true: "avx2"}[avx], func(b *testing.B) {
			withAVX2(avx, func() {
				run(b, func() {
					out.mask.build(in)
					contrastRows(in, out, 0, nb)
				})
			})
		})
	}
}

// BenchmarkSoftmaxKernels times each pass on one 4352-logit row.
func BenchmarkSoftmaxKernels(b *testing.B) {
	const m = 4352
	r := rng{s: 1}
	s := make([]float32, m)
	randRow(&r, s, -10, 10)
	ds := make([]float32, m)
	for _, avx := range []bool{false, true} {
		if avx && !haveAVX2 {
			continue
		}
		name := map[bool]string{false: "go", true: "avx2"}[avx]
		withAVX2(avx, func() {
			b.Run("max/"+name, func(b *testing.B) {
				for b.Loop() {
					rowMax(s)
				}
			})
			b.Run("expsum/"+name, func(b *testing.B) {
				var lanes [8]float64
				for b.Loop() {
					expSum(ds, s, 1, 10, &lanes)
				}
			})
			b.Run("scale/"+name, func(b *testing.B) {
				for b.Loop() {
					scaleRow(ds, 1)
				}
			})
		})
	}
}
