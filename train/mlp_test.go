package train

import "testing"

// TestMLPGradient checks the backward pass of the projection MLP and the L2
// normalisation (input rows and all four parameters) against central
// differences, for both activations.
func TestMLPGradient(t *testing.T) {
	for _, gelu := range []bool{false, true} {
		name := "relu"
		if gelu {
			name = "gelu"
		}
		t.Run(name, func(t *testing.T) {
			r := rng{s: 3}
			n, in, hid, out := 4, 5, 7, 3
			m := newMLP(in, hid, out, gelu)
			m.init(&r)
			randFill(&r, m.b1.Float32s(), 0.3)
			randFill(&r, m.b2.Float32s(), 0.3)
			x := make([]float32, n*in)
			randFill(&r, x, 1)
			w := make([]float32, n*out) // loss = sum w*z + sum v*y
			v := make([]float32, n*out)
			randFill(&r, w, 1)
			randFill(&r, v, 0.5)
			loss := func() float64 {
				var c mlpCache
				m.forward(x, n, &c)
				var s float64
				for i := range w {
					s += float64(w[i]*c.z[i]) + float64(v[i]*c.y[i])
				}
				return s
			}
			var c mlpCache
			m.forward(x, n, &c)
			g := newMLPGrads(m)
			var sb mlpBack
			dx := append([]float32(nil), m.backward(x, &c, w, v, &g, &sb)...)
			check := func(what string, p, an []float32) {
				t.Helper()
				a, nm := make([]float64, len(p)), make([]float64, len(p))
				for i := range p {
					a[i] = float64(an[i])
					nm[i] = numGrad(p, i, 1e-3, loss)
				}
				if e := relErr(a, nm); e > 2e-2 {
					t.Errorf("%s: relative error %.3g\nanalytic %v\nnumeric  %v", what, e, a, nm)
				}
			}
			check("x", x, dx)
			ps := m.params()
			for k, nm := range []string{"W1", "b1", "W2", "b2"} {
				check(nm, ps[k], g[k])
			}
		})
	}
}
