package report

import "math"

// pca projects the rows of x (n rows of width d) on their first k
// principal components. It returns the n x k coordinates and the share of
// the total variance each component explains. The components come from
// power iteration with deflation on the d x d covariance matrix, started
// from a fixed vector, so the result is deterministic; each component's
// sign is chosen so that its largest coefficient is positive.
func pca(x [][]float32, k int) ([][]float64, []float64) {
	n := len(x)
	if n == 0 || k < 1 {
		return nil, nil
	}
	d := len(x[0])
	mean := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	cov := make([]float64, d*d)
	c := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			c[j] = float64(v) - mean[j]
		}
		for a := 0; a < d; a++ {
			ca := c[a]
			if ca == 0 {
				continue
			}
			row := cov[a*d : a*d+d]
			for b := a; b < d; b++ {
				row[b] += ca * c[b]
			}
		}
	}
	trace := 0.0
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			cov[a*d+b] /= float64(max(n-1, 1))
			cov[b*d+a] = cov[a*d+b]
		}
		trace += cov[a*d+a]
	}
	k = min(k, d)
	comps := make([][]float64, k)
	explained := make([]float64, k)
	for ci := 0; ci < k; ci++ {
		v := make([]float64, d)
		for j := range v {
			v[j] = 1 / math.Sqrt(float64(d)) * (1 + 0.01*float64(j%7))
		}
		lambda := 0.0
		w := make([]float64, d)
		for it := 0; it < 500; it++ {
			for a := 0; a < d; a++ {
				s := 0.0
				row := cov[a*d : a*d+d]
				for b, vb := range v {
					s += row[b] * vb
				}
				w[a] = s
			}
			// Orthogonal to the components found so far.
			for _, p := range comps[:ci] {
				dot := 0.0
				for j := range w {
					dot += w[j] * p[j]
				}
				for j := range w {
					w[j] -= dot * p[j]
				}
			}
			norm := 0.0
			for _, wv := range w {
				norm += wv * wv
			}
			norm = math.Sqrt(norm)
			if norm == 0 {
				break
			}
			delta := 0.0
			for j := range w {
				nv := w[j] / norm
				delta += math.Abs(nv - v[j])
				v[j] = nv
			}
			lambda = norm
			if delta < 1e-10 {
				break
			}
		}
		big := 0
		for j := range v {
			if math.Abs(v[j]) > math.Abs(v[big]) {
				big = j
			}
		}
		if v[big] < 0 {
			for j := range v {
				v[j] = -v[j]
			}
		}
		comps[ci] = v
		if trace > 0 {
			explained[ci] = lambda / trace
		}
	}
	out := make([][]float64, n)
	for i, r := range x {
		p := make([]float64, k)
		for ci, v := range comps {
			s := 0.0
			for j, xv := range r {
				s += (float64(xv) - mean[j]) * v[j]
			}
			p[ci] = s
		}
		out[i] = p
	}
	return out, explained
}
