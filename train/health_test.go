package train

import (
	"math"
	"sort"
	"testing"
)

// TestSymEigenvalues: the Jacobi solver recovers the spectrum of Q D Q^T
// for a random orthogonal Q.
func TestSymEigenvalues(t *testing.T) {
	for _, n := range []int{1, 2, 5, 16, 40} {
		r := rng{s: uint64(n)}
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(i*i) - 3 + float64(r.float32())
		}
		// Q from Gram-Schmidt on random vectors.
		q := make([][]float64, n)
		for i := range q {
			v := make([]float64, n)
			for k := range v {
				v[k] = float64(r.float32()) - 0.5
			}
			for j := 0; j < i; j++ {
				var d float64
				for k := range v {
					d += v[k] * q[j][k]
				}
				for k := range v {
					v[k] -= d * q[j][k]
				}
			}
			var nn float64
			for _, x := range v {
				nn += x * x
			}
			for k := range v {
				v[k] /= math.Sqrt(nn)
			}
			q[i] = v
		}
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for k := 0; k < n; k++ {
					a[i*n+j] += q[k][i] * want[k] * q[k][j]
				}
			}
		}
		got := symEigenvalues(a, n)
		sort.Float64s(got)
		sort.Float64s(want)
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-8*(1+math.Abs(want[i])) {
				t.Fatalf("n=%d: eigenvalues %v, want %v", n, got, want)
			}
		}
	}
}

// TestHealthFigures checks the statistics on samples whose answers are
// known: a collapsed sample, an orthonormal frame, and random directions.
func TestHealthFigures(t *testing.T) {
	const d = 8
	ring := func(rows [][]float32, keys [][]float32) *healthRing {
		h := newHealthRing(len(rows), d)
		for i := range rows {
			h.push(rows[i], keys[i], 1)
		}
		return &h
	}
	// Collapse: every embedding the same.
	same := make([][]float32, 64)
	for i := range same {
		same[i] = []float32{1, 0, 0, 0, 0, 0, 0, 0}
	}
	h := healthOf(ring(same, same))
	if h.Std > 1e-6 || math.Abs(h.RankMe-1) > 1e-3 || h.Alignment != 0 || math.Abs(h.Uniformity) > 1e-6 {
		t.Fatalf("collapsed sample: %+v", h)
	}
	// Orthonormal frame, +-: rank d, keys at distance sqrt 2.
	var frame, keys [][]float32
	for s := 0; s < 2; s++ {
		for i := 0; i < d; i++ {
			v := make([]float32, d)
			k := make([]float32, d)
			v[i] = float32(1 - 2*s)
			k[(i+1)%d] = 1
			frame, keys = append(frame, v), append(keys, k)
		}
	}
	h = healthOf(ring(frame, keys))
	if math.Abs(h.RankMe-d) > 1e-3 {
		t.Fatalf("frame: RankMe %g, want %d", h.RankMe, d)
	}
	if math.Abs(h.Alignment-2) > 1e-6 {
		t.Fatalf("frame: alignment %g, want 2", h.Alignment)
	}
	if want := math.Sqrt(1.0 / d); math.Abs(h.Std-want) > 1e-6 {
		t.Fatalf("frame: std %g, want %g", h.Std, want)
	}
	// Pairs of the frame: 2 of the 2d(2d-1)/2 pairs are antipodal (d^2 = 4),
	// the rest orthogonal (d^2 = 2).
	pairs := float64(2*d*(2*d-1)) / 2
	want := math.Log(((pairs-d)*math.Exp(-4) + d*math.Exp(-8)) / pairs)
	if math.Abs(h.Uniformity-want) > 1e-6 {
		t.Fatalf("frame: uniformity %g, want %g", h.Uniformity, want)
	}
}

// TestHealthCollapseFlag: a learner whose sample collapsed reports it.
func TestHealthCollapseFlag(t *testing.T) {
	cfg := tinyConfig()
	l, _ := NewLearner(cfg)
	if h := l.Health(); h.Collapsed || h.Samples != 0 {
		t.Fatalf("empty sample: %+v", h)
	}
	z := make([]float32, 16*cfg.OutDim)
	for i := 0; i < 16; i++ {
		z[i*cfg.OutDim] = 1
	}
	l.health.push(z, z, 16)
	if h := l.Health(); !h.Collapsed {
		t.Fatalf("collapsed sample not flagged: %+v", h)
	}
}
