package train

import (
	"fmt"
	"math"
	"testing"
)

// TestMatmul checks matmulPar against a float64 reference for every
// transpose combination and shapes around the tile edges, and that the
// result is bit-identical whatever the number of workers.
func TestMatmul(t *testing.T) {
	r := rng{s: 7}
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 2}, {64, 64, 64}, {65, 17, 129}, {130, 128, 2100}, {256, 7, 300}} {
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
					at := func(i, p int) float64 { // op(a)[i][p]
						if ta {
							return float64(a[p*m+i])
						}
						return float64(a[i*k+p])
					}
					bt := func(p, j int) float64 { // op(b)[p][j]
						if tb {
							return float64(b[j*k+p])
						}
						return float64(b[p*n+j])
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
									var want float64
									for p := 0; p < k; p++ {
										want += at(i, p) * bt(p, j)
									}
									if got := float64(c[i*n+j]); math.Abs(got-want) > 1e-5*float64(k) {
										t.Fatalf("c[%d][%d] = %v, want %v", i, j, got, want)
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
	if BLAS != "gonum" && BLAS != "openblas" {
		t.Errorf("BLAS = %q", BLAS)
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
