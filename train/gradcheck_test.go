package train

import "math"

// relErr is |a-b| / (|a|+|b|) over whole vectors.
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += a[i]*a[i] + b[i]*b[i]
	}
	if den == 0 {
		return 0
	}
	return math.Sqrt(num) / math.Sqrt(den)
}

// numGrad differentiates f with respect to p[i] by central differences.
func numGrad(p []float32, i int, eps float32, f func() float64) float64 {
	old := p[i]
	p[i] = old + eps
	fp := f()
	p[i] = old - eps
	fm := f()
	p[i] = old
	return (fp - fm) / float64(2*eps)
}

func randFill(r *rng, p []float32, scale float32) {
	for i := range p {
		p[i] = scale * (2*r.float32() - 1)
	}
}
