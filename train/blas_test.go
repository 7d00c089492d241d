package train

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestMatmul checks matmulPar against a float64 reference for every
// transpose combination and shapes around the tile edges, and that the
// result is bit-identical whatever the number of workers, under each sgemm
// this build and CPU have (with the AVX2 kernel also under gonum's).
func TestMatmul(t *testing.T) {
	for _, avx2 := range sgemmModes() {
		t.Run(sgemmModeName(avx2), func(t *testing.T) {
			defer forceAVX2(avx2)()
			testMatmul(t)
		})
	}
	if BLAS != "avx2" && BLAS != "gonum" && BLAS != "openblas" {
		t.Errorf("BLAS = %q", BLAS)
	}
	if (BLAS == "avx2") != (haveAVX2 && BLAS != "openblas") {
		t.Errorf("BLAS = %q with haveAVX2 %v", BLAS, haveAVX2)
	}
}

func testMatmul(t *testing.T) {
	r := rng{s: 7}
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 2}, {64, 64, 64}, {65, 17, 129}, {130, 128, 2100}, {256, 7, 300}, {70, 300, 40}} {
		m, k, n := sh[0], sh[1], sh[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				t.Run(fmt.Sprintf("%dx%dx%d/ta=%v/tb=%v", m, k, n, ta, tb), func(t *testing.T) {
					a := make([]float32, m*k)
					b := make([]float32, k*n)
					for i := range a {
						a[i] = 2*r.float32() - 1
					}
					for i := range b {
						b[i] = 2*r.float32() - 1
					}
					// op(a) by rows and op(b) by columns, in float64.
					ar, bc := make([]float64, m*k), make([]float64, n*k)
					for i := 0; i < m; i++ {
						for p := 0; p < k; p++ {
							if ta {
								ar[i*k+p] = float64(a[p*m+i])
							} else {
								ar[i*k+p] = float64(a[i*k+p])
							}
						}
					}
					for j := 0; j < n; j++ {
						for p := 0; p < k; p++ {
							if tb {
								bc[j*k+p] = float64(b[j*k+p])
							} else {
								bc[j*k+p] = float64(b[p*n+j])
							}
						}
					}
					var first []float32
					for _, w := range []int{1, 2, 3} {
						c := make([]float32, m*n)
						for i := range c {
							c[i] = float32(math.NaN()) // every element must be written
						}
						matmulPar(c, a, b, m, k, n, ta, tb, w)
						if first == nil {
							first = c
							for i := 0; i < m; i++ {
								for j := 0; j < n; j++ {
									var e sgemmErr
									for p, x := range ar[i*k : (i+1)*k] {
										e.add(x * bc[j*k+p])
									}
									if got := float64(c[i*n+j]); !e.ok(got) {
										t.Fatalf("c[%d][%d] = %v, want %v", i, j, got, e.sum)
									}
								}
							}
							continue
						}
						for i := range c {
							if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
								t.Fatalf("workers=%d: c[%d] = %v, workers=1 gave %v", w, i, c[i], first[i])
							}
						}
					}
				})
			}
		}
	}
}

// sgemmErr accumulates a float64 reference dot product and the bound on
// the error of computing it in float32: each product and each partial sum
// rounds by at most half an ulp, 2^-24 relative, whether the kernel fuses
// the multiply-add or not; twice that leaves room for a summation in
// another order (gonum's and OpenBLAS's vector lanes). It is never looser
// than the 1e-5 per term allowed before.
type sgemmErr struct {
	sum, prods, partials float64
	k                    int
}

func (e *sgemmErr) add(prod float64) {
	e.sum += prod
	e.prods += math.Abs(prod)
	e.partials += math.Abs(e.sum)
	e.k++
}

func (e *sgemmErr) ok(got float64) bool {
	tol := min(1e-5*float64(e.k), 2*0x1p-24*(e.prods+e.partials))
	return math.Abs(got-e.sum) <= tol
}

// sgemmModes lists the values of haveAVX2 that select a different sgemm
// here: false always (gonum, or OpenBLAS with -tags openblas), true where
// the CPU and the build have the AVX2 kernel.
func sgemmModes() []bool {
	if haveAVX2 && BLAS != "openblas" {
		return []bool{false, true}
	}
	return []bool{false}
}

func sgemmModeName(avx2 bool) string {
	switch {
	case BLAS == "openblas":
		return "openblas"
	case avx2:
		return "avx2"
	}
	return "gonum"
}

// forceAVX2 sets haveAVX2 and returns the function that restores it.
func forceAVX2(v bool) func() {
	old := haveAVX2
	haveAVX2 = v
	return func() { haveAVX2 = old }
}

// fma32 is the float32 fused multiply-add a*b+c, rounded once: the
// product is exact in float64, the sum's rounding error is recovered
// exactly (TwoSum) and decides a float64 sum that lies halfway between two
// float32s.
func fma32(a, b, c float32) float32 {
	p, q := float64(a)*float64(b), float64(c)
	s := p + q
	v := s - p
	e := (p - (s - v)) + (q - v)
	r := float32(s)
	if e == 0 || float64(r) == s || math.IsInf(s, 0) || math.IsNaN(s) {
		return r
	}
	lo, hi := r, r
	if float64(r) < s {
		hi = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		lo = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if s != (float64(lo)+float64(hi))/2 {
		return r
	}
	if e > 0 {
		return hi
	}
	return lo
}

func TestFMA32(t *testing.T) {
	// The exact result lies 2^-60 below the midpoint between 1+2^-23 and
	// the next float32, 1+2^-22: a float64 sum would round to the midpoint
	// and then tie to 1+2^-22; rounded once it is 1+2^-23.
	a, b, c := float32(1+0x1p-18), float32(0x1p-24-0x1p-42), float32(1+0x1p-23)
	if got := fma32(a, b, c); got != c {
		t.Errorf("fma32 = %v, want %v", got, c)
	}
	if naive := float32(float64(a)*float64(b) + float64(c)); naive == c {
		t.Errorf("the case does not exercise double rounding")
	}
	if got := fma32(3, 5, -15); got != 0 || math.Signbit(float64(got)) {
		t.Errorf("fma32(3, 5, -15) = %v", got)
	}
	if got := fma32(1.5, 2, 0.25); got != 3.25 {
		t.Errorf("fma32(1.5, 2, 0.25) = %v", got)
	}
}

// TestSgemm checks sgemm against a float64 reference for every transpose
// combination, sizes around the micro-tile, the k block and the panel
// edges, and leading dimensions past the minimum (whose gaps, filled with
// NaN, must be neither read nor written). The AVX2 kernel must also give
// exactly the bits of one fused multiply-add chain per element in order of
// k, which is what makes its results independent of the blocking and the
// tiling.
func TestSgemm(t *testing.T) {
	shapes := [][3]int{ // m, k, n
		{1, 1, 1}, {1, 7, 1}, {2, 1, 3}, {6, 1, 16}, {7, 3, 17}, {5, 2, 15},
		{6, 4, 16}, {12, 8, 32}, {13, 9, 33}, {11, 256, 31}, {18, 257, 48},
		{65, 65, 65}, {3, 600, 5}, {31, 513, 47}, {150, 40, 70}, {1, 300, 2100},
		{290, 3, 9}, {7, 1, 2060}, {145, 260, 20},
	}
	r := rng{s: 11}
	for _, avx2 := range sgemmModes() {
		t.Run(sgemmModeName(avx2), func(t *testing.T) {
			defer forceAVX2(avx2)()
			for _, sh := range shapes {
				m, k, n := sh[0], sh[1], sh[2]
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						for _, pad := range []int{0, 3} {
							name := fmt.Sprintf("%dx%dx%d/ta=%v/tb=%v/pad=%d", m, k, n, ta, tb, pad)
							checkSgemm(t, name, &r, m, k, n, ta, tb, pad, avx2)
						}
					}
				}
			}
		})
	}
}

func checkSgemm(t *testing.T, name string, r *rng, m, k, n int, ta, tb bool, pad int, exact bool) {
	t.Helper()
	ar, ac, br, bc := m, k, k, n
	if ta {
		ar, ac = k, m
	}
	if tb {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+pad, bc+2*pad, n+pad
	nan := float32(math.NaN())
	fill := func(rows, cols, ld int) []float32 {
		s := make([]float32, (rows-1)*ld+cols)
		for i := range s {
			if i%ld < cols {
				s[i] = 2*r.float32() - 1
			} else {
				s[i] = nan
			}
		}
		return s
	}
	a, b := fill(ar, ac, lda), fill(br, bc, ldb)
	c := make([]float32, (m-1)*ldc+n)
	for i := range c {
		c[i] = nan
	}
	const sentinel = 12345
	for i := range c {
		if i%ldc >= n {
			c[i] = sentinel
		}
	}
	at := func(i, p int) float32 {
		if ta {
			return a[p*lda+i]
		}
		return a[i*lda+p]
	}
	bt := func(p, j int) float32 {
		if tb {
			return b[j*ldb+p]
		}
		return b[p*ldb+j]
	}
	sgemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			got := c[i*ldc+j]
			var e sgemmErr
			var chain float32
			for p := 0; p < k; p++ {
				x, y := at(i, p), bt(p, j)
				e.add(float64(x) * float64(y))
				chain = fma32(x, y, chain)
			}
			if !e.ok(float64(got)) {
				t.Fatalf("%s: c[%d][%d] = %v, want %v", name, i, j, got, e.sum)
			}
			if exact && math.Float32bits(got) != math.Float32bits(chain) {
				t.Fatalf("%s: c[%d][%d] = %v, the fused chain gives %v", name, i, j, got, chain)
			}
		}
		for j := n; j < ldc && i < m-1; j++ {
			if c[i*ldc+j] != sentinel {
				t.Fatalf("%s: wrote c[%d][%d] past n", name, i, j)
			}
		}
	}
}

// TestSgemmDispatch checks that the AVX2 kernel and gonum's sgemm agree
// within rounding on the learner's shapes, through matmulPar, and that
// repeated calls on buffers left by other shapes give the same bits.
func TestSgemmDispatch(t *testing.T) {
	if !haveAVX2 || BLAS == "openblas" {
		t.Skip("no AVX2 kernel in this build or on this CPU")
	}
	r := rng{s: 5}
	for _, sh := range []struct {
		m, k, n int
		ta, tb  bool
	}{
		{256, 128, 1280, false, true},  // logits against a 1024-key queue
		{256, 1280, 128, false, false}, // their gradient
		{256, 64, 256, false, false},   // MLP forward
		{256, 256, 128, true, false},   // dW2 = H^T dY
		{256, 128, 256, false, true},   // dH = dY W2^T
		{7, 3, 65, true, true},
	} {
		a := make([]float32, sh.m*sh.k)
		b := make([]float32, sh.k*sh.n)
		for i := range a {
			a[i] = 2*r.float32() - 1
		}
		for i := range b {
			b[i] = 2*r.float32() - 1
		}
		run := func(avx2 bool, workers int) []float32 {
			defer forceAVX2(avx2)()
			c := make([]float32, sh.m*sh.n)
			matmulPar(c, a, b, sh.m, sh.k, sh.n, sh.ta, sh.tb, workers)
			return c
		}
		fast, slow := run(true, 2), run(false, 2)
		for i := range fast {
			if d := math.Abs(float64(fast[i]) - float64(slow[i])); !(d <= 1e-5*float64(sh.k)) {
				t.Fatalf("%+v: c[%d] avx2 %v, gonum %v", sh, i, fast[i], slow[i])
			}
		}
		if again := run(true, 1); !sameBits(again, fast) {
			t.Fatalf("%+v: avx2 differs between calls", sh)
		}
	}
}

func sameBits(x, y []float32) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// TestSgemmNoAlloc checks that the AVX2 kernel reuses its packing buffers.
func TestSgemmNoAlloc(t *testing.T) {
	if !haveAVX2 || BLAS == "openblas" {
		t.Skip("no AVX2 kernel in this build or on this CPU")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	m, k, n := 64, 300, 200
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	sgemm(false, true, m, n, k, a, k, b, k, c, n)
	if allocs := testing.AllocsPerRun(20, func() { sgemm(false, true, m, n, k, a, k, b, k, c, n) }); allocs > 0 {
		t.Errorf("sgemm allocates %v times a call", allocs)
	}
}

// BenchmarkSgemm measures the logits' products at a 4096-key queue (256
// anchors against 4352 candidates, 128 wide, and their gradient) under
// gonum's sgemm and the AVX2 kernel (or OpenBLAS with -tags openblas), on
// one goroutine and through matmulPar on two workers.
//
//	go test -run '^$' -bench Sgemm -count 5 ./train/
func BenchmarkSgemm(b *testing.B) {
	const batch, width, cands = 256, 128, 4096 + 256
	for _, sh := range []struct {
		name    string
		m, k, n int
		tb      bool
	}{
		{"logits", batch, width, cands, true},
		{"dq", batch, cands, width, false},
	} {
		r := rng{s: 3}
		x := make([]float32, sh.m*sh.k)
		y := make([]float32, sh.k*sh.n)
		z := make([]float32, sh.m*sh.n)
		for i := range x {
			x[i] = 2*r.float32() - 1
		}
		for i := range y {
			y[i] = 2*r.float32() - 1
		}
		ldb := sh.n
		if sh.tb {
			ldb = sh.k
		}
		for _, avx2 := range sgemmModes() {
			for _, workers := range []int{1, 2} {
				name := fmt.Sprintf("%s/%s/workers=%d", sh.name, sgemmModeName(avx2), workers)
				b.Run(name, func(b *testing.B) {
					defer forceAVX2(avx2)()
					start := time.Now()
					for b.Loop() {
						if workers == 1 {
							sgemm(false, sh.tb, sh.m, sh.n, sh.k, x, sh.k, y, ldb, z, sh.n)
						} else {
							matmulPar(z, x, y, sh.m, sh.k, sh.n, false, sh.tb, workers)
						}
					}
					flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k) * float64(b.N)
					b.ReportMetric(flops/time.Since(start).Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// TestExpf checks the softmax's float32 exponential against math.Exp.
func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88; x += 0.0007 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Errorf("expf: worst relative error %g, want within 2 ulp (2.4e-7)", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Errorf("expf(-100), expf(100), expf(0) = %v, %v, %v", expf(-100), expf(100), expf(0))
	}
}
