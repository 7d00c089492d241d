package train

import (
	"math"
)

// Health summarises the learner's state without labels, on a rolling sample
// of the most recent online embeddings (view A) and their positive keys.
type Health struct {
	Step    int64 // optimiser updates so far
	Samples int   // embeddings in the rolling sample
	// Std is the mean over dimensions of the per-dimension standard deviation
	// of the normalised embeddings: about 1/sqrt(OutDim) when they spread
	// over the sphere, near 0 when they collapse to a point.
	Std float64
	// Alignment is the mean squared distance between an anchor embedding and
	// its positive key (lower: views agree).
	Alignment float64
	// Uniformity is log mean exp(-2 |u-v|^2) over pairs of sample
	// embeddings (lower: more uniform on the sphere; -4 is the floor).
	Uniformity float64
	// RankMe is the effective rank of the sample: exp of the entropy of its
	// normalised singular values (1..OutDim).
	RankMe float64
	// QueueStaleness is the mean age of the queued keys in optimiser steps.
	QueueStaleness float64
	QueueLen       int
	// Collapsed is set when Std < CollapseStd or RankMe < CollapseRank
	// (only once the sample holds at least min(64, HealthSample) rows).
	Collapsed bool
}

// healthRing is the rolling sample: the last cap anchor embeddings and
// their positive keys.
type healthRing struct {
	dim, cap, n, pos int
	q, k             []float32
}

func newHealthRing(capacity, dim int) healthRing {
	return healthRing{dim: dim, cap: capacity, q: make([]float32, capacity*dim), k: make([]float32, capacity*dim)}
}

func (h *healthRing) push(q, k []float32, rows int) {
	start := 0
	if rows > h.cap {
		start = rows - h.cap
	}
	for i := start; i < rows; i++ {
		copy(h.q[h.pos*h.dim:(h.pos+1)*h.dim], q[i*h.dim:(i+1)*h.dim])
		copy(h.k[h.pos*h.dim:(h.pos+1)*h.dim], k[i*h.dim:(i+1)*h.dim])
		h.pos = (h.pos + 1) % h.cap
		h.n = min(h.n+1, h.cap)
	}
}

// Health computes the health figures (about 0.1 s of one core at the
// default sample and width; nothing is cached).
func (l *Learner) Health() Health {
	// Copy the sample under the lock, compute outside it, so Step's update
	// does not wait for the eigenvalues.
	l.mu.RLock()
	r := l.health
	r.q = append([]float32(nil), l.health.q[:r.n*r.dim]...)
	r.k = append([]float32(nil), l.health.k[:r.n*r.dim]...)
	step, qlen, stale := l.step, l.queue.n, l.queue.staleness(l.step)
	cfg := l.cfg
	l.mu.RUnlock()
	h := healthOf(&r)
	h.Step, h.QueueLen, h.QueueStaleness = step, qlen, stale
	if h.Samples >= min(64, cfg.HealthSample) {
		h.Collapsed = h.Std < cfg.CollapseStd || h.RankMe < cfg.CollapseRank
	}
	return h
}

// healthOf computes the sample statistics of a ring.
func healthOf(r *healthRing) Health {
	n, d := r.n, r.dim
	h := Health{Samples: n}
	if n == 0 {
		return h
	}
	q, k := r.q[:n*d], r.k[:n*d]
	h.Std = meanStd(q, n, d)
	var al float64
	for i := 0; i < n*d; i++ {
		x := float64(q[i] - k[i])
		al += x * x
	}
	h.Alignment = al / float64(n)
	h.Uniformity = uniformity(q, n, d)
	h.RankMe = rankMe(q, n, d)
	return h
}

// meanStd is the mean over columns of the population standard deviation of
// the n x d matrix z.
func meanStd(z []float32, n, d int) float64 {
	sum := make([]float64, d)
	sq := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range z[i*d : (i+1)*d] {
			sum[j] += float64(v)
			sq[j] += float64(v) * float64(v)
		}
	}
	var s float64
	for j := range sum {
		mu := sum[j] / float64(n)
		s += math.Sqrt(max(sq[j]/float64(n)-mu*mu, 0))
	}
	return s / float64(d)
}

// uniformity is log mean over pairs i<j of exp(-2 |z_i - z_j|^2).
func uniformity(z []float32, n, d int) float64 {
	if n < 2 {
		return 0
	}
	g := make([]float32, n*n)
	matmul(g, z, z, n, d, n, false, true)
	var acc float64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d2 := float64(g[i*n+i]) + float64(g[j*n+j]) - 2*float64(g[i*n+j])
			acc += math.Exp(-2 * max(d2, 0))
		}
	}
	return math.Log(acc / float64(n*(n-1)/2))
}

// rankMe is the RankMe effective rank of the n x d matrix z: the singular
// values are the square roots of the eigenvalues of z^T z.
func rankMe(z []float32, n, d int) float64 {
	g := make([]float32, d*d)
	matmul(g, z, z, d, n, d, true, false)
	a := make([]float64, d*d)
	for i := range a {
		a[i] = float64(g[i])
	}
	ev := symEigenvalues(a, d)
	var sum float64
	sv := make([]float64, d)
	for i, e := range ev {
		sv[i] = math.Sqrt(max(e, 0))
		sum += sv[i]
	}
	if sum == 0 {
		return 0
	}
	var ent float64
	for _, s := range sv {
		p := s/sum + 1e-7
		ent -= p * math.Log(p)
	}
	return math.Exp(ent)
}

// symEigenvalues returns the eigenvalues of the symmetric n x n matrix a
// (row-major, destroyed) by the cyclic Jacobi method.
func symEigenvalues(a []float64, n int) []float64 {
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := 0; i < n; i++ {
			diag += a[i*n+i] * a[i*n+i]
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off <= 1e-20*diag || off == 0 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if apq == 0 {
					continue
				}
				app, aqq := a[p*n+p], a[q*n+q]
				theta := (aqq - app) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				// Rotate rows and columns p, q.
				for k := 0; k < n; k++ {
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p] = c*akp - s*akq
					a[k*n+q] = s*akp + c*akq
				}
				for k := 0; k < n; k++ {
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k] = c*apk - s*aqk
					a[q*n+k] = s*apk + c*aqk
				}
			}
		}
	}
	ev := make([]float64, n)
	for i := range ev {
		ev[i] = a[i*n+i]
	}
	return ev
}
