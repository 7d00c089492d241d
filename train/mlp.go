package train

import (
	"math"
	"sync"

	"gorgonia.org/tensor"
)

// mlp is the dense projection: y = act(x W1 + b1) W2 + b2. Its weights are
// gorgonia tensors; the matrix products run through matmulPar over their
// backing slices (the sgemm seam, see BLAS), the element-wise parts are
// plain loops over the same slices.
type mlp struct {
	in, hid, out int
	gelu         bool
	workers      int           // goroutines of the matrix products (0 or 1: the caller's)
	w1, b1       *tensor.Dense // in x hid, hid
	w2, b2       *tensor.Dense // hid x out, out
}

func newMLP(in, hid, out int, gelu bool) *mlp {
	return &mlp{
		in: in, hid: hid, out: out, gelu: gelu,
		w1: tensor.New(tensor.WithShape(in, hid), tensor.Of(tensor.Float32)),
		b1: tensor.New(tensor.WithShape(hid), tensor.Of(tensor.Float32)),
		w2: tensor.New(tensor.WithShape(hid, out), tensor.Of(tensor.Float32)),
		b2: tensor.New(tensor.WithShape(out), tensor.Of(tensor.Float32)),
	}
}

// params lists the backing slices in a fixed order: W1, b1, W2, b2.
func (m *mlp) params() [4][]float32 {
	return [4][]float32{m.w1.Float32s(), m.b1.Float32s(), m.w2.Float32s(), m.b2.Float32s()}
}

func (m *mlp) clone() *mlp {
	c := newMLP(m.in, m.hid, m.out, m.gelu)
	c.workers = m.workers
	src, dst := m.params(), c.params()
	for i := range src {
		copy(dst[i], src[i])
	}
	return c
}

// init draws He-uniform weights and zero biases.
func (m *mlp) init(r *rng) {
	p := m.params()
	a1 := float32(math.Sqrt(6 / float64(m.in)))
	for i := range p[0] {
		p[0][i] = a1 * (2*r.float32() - 1)
	}
	a2 := float32(math.Sqrt(6 / float64(m.hid)))
	for i := range p[2] {
		p[2][i] = a2 * (2*r.float32() - 1)
	}
}

// matmul sets c (m x n) to op(a) op(b), where op(a) is m x k (a is stored
// k x m when ta) and op(b) is k x n (b is stored n x k when tb), on the
// calling goroutine.
func matmul(c, a, b []float32, m, k, n int, ta, tb bool) {
	matmulPar(c, a, b, m, k, n, ta, tb, 1)
}

// matmulPar is matmul on up to workers goroutines. The output is cut into
// fixed gemmTileM x gemmTileN tiles, one sgemm call each; a tile's result
// does not depend on which goroutine computes it, so neither does c.
func matmulPar(c, a, b []float32, m, k, n int, ta, tb bool, workers int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	tm, tn := (m+gemmTileM-1)/gemmTileM, (n+gemmTileN-1)/gemmTileN
	tiles := tm * tn
	tile := func(t int) {
		i0, j0 := (t/tn)*gemmTileM, (t%tn)*gemmTileN
		mm, nn := min(gemmTileM, m-i0), min(gemmTileN, n-j0)
		var ao, bo int
		if ta {
			ao = i0
		} else {
			ao = i0 * lda
		}
		if tb {
			bo = j0 * ldb
		} else {
			bo = j0
		}
		sgemm(ta, tb, mm, nn, k, a[ao:], lda, b[bo:], ldb, c[i0*n+j0:], n)
	}
	// Small products are not worth a goroutine.
	if workers <= 1 || tiles == 1 || m*n*k < 1<<18 {
		for t := 0; t < tiles; t++ {
			tile(t)
		}
		return
	}
	workers = min(workers, tiles)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := w; t < tiles; t += workers {
				tile(t)
			}
		}()
	}
	for t := 0; t < tiles; t += workers {
		tile(t)
	}
	wg.Wait()
}

// mlpCache holds the activations of a forward pass over n rows.
type mlpCache struct {
	n             int
	hpre, h, y, z []float32
	norm          []float32
}

func (c *mlpCache) size(n int, m *mlp) {
	c.n = n
	c.hpre = grow(c.hpre, n*m.hid)
	c.h = grow(c.h, n*m.hid)
	c.y = grow(c.y, n*m.out)
	c.z = grow(c.z, n*m.out)
	c.norm = grow(c.norm, n)
}

const sqrt2OverPi = 0.7978845608028654

// minNorm is the output norm below which the normalisation passes no
// gradient.
const minNorm = 1e-4

// forward computes the activations of x (n x in) into c.
func (m *mlp) forward(x []float32, n int, c *mlpCache) {
	c.size(n, m)
	p := m.params()
	matmulPar(c.hpre, x, p[0], n, m.in, m.hid, false, false, m.workers)
	for r := 0; r < n; r++ {
		row := c.hpre[r*m.hid : (r+1)*m.hid]
		hrow := c.h[r*m.hid : (r+1)*m.hid]
		for j, b := range p[1] {
			v := row[j] + b
			row[j] = v
			hrow[j] = m.act(v)
		}
	}
	matmulPar(c.y, c.h, p[2], n, m.hid, m.out, false, false, m.workers)
	for r := 0; r < n; r++ {
		y := c.y[r*m.out : (r+1)*m.out]
		var ss float32
		for j, b := range p[3] {
			v := y[j] + b
			y[j] = v
			ss += v * v
		}
		nrm := float32(math.Sqrt(float64(ss) + 1e-12))
		c.norm[r] = nrm
		z := c.z[r*m.out : (r+1)*m.out]
		inv := 1 / nrm
		for j, v := range y {
			z[j] = v * inv
		}
	}
}

func (m *mlp) act(v float32) float32 {
	if !m.gelu {
		return max(v, 0)
	}
	x := float64(v)
	return float32(0.5 * x * (1 + math.Tanh(sqrt2OverPi*(x+0.044715*x*x*x))))
}

func (m *mlp) actGrad(v float32) float32 {
	if !m.gelu {
		if v > 0 {
			return 1
		}
		return 0
	}
	x := float64(v)
	u := sqrt2OverPi * (x + 0.044715*x*x*x)
	t := math.Tanh(u)
	du := sqrt2OverPi * (1 + 3*0.044715*x*x)
	return float32(0.5*(1+t) + 0.5*x*(1-t*t)*du)
}

// mlpGrads holds gradient buffers shaped like the parameters.
type mlpGrads [4][]float32

func newMLPGrads(m *mlp) mlpGrads {
	return mlpGrads{make([]float32, m.in*m.hid), make([]float32, m.hid), make([]float32, m.hid*m.out), make([]float32, m.out)}
}

// mlpBack is scratch space of a backward pass.
type mlpBack struct {
	dy, dh, dx []float32
	tmp        []float32
}

// backward takes dz (gradient wrt the normalised output) and dyExtra
// (gradient wrt the raw output y, may be nil), adds the parameter gradients
// into g and returns dx (n x in), the gradient wrt the input rows.
func (m *mlp) backward(x []float32, c *mlpCache, dz, dyExtra []float32, g *mlpGrads, s *mlpBack) []float32 {
	n := c.n
	p := m.params()
	s.dy = grow(s.dy, n*m.out)
	for r := 0; r < n; r++ {
		z := c.z[r*m.out : (r+1)*m.out]
		dzr := dz[r*m.out : (r+1)*m.out]
		var dot float32
		for j, v := range z {
			dot += v * dzr[j]
		}
		dy := s.dy[r*m.out : (r+1)*m.out]
		if c.norm[r] < minNorm {
			// A (near) zero output, e.g. an empty view before the biases
			// moved: its direction is undefined, so it passes no gradient
			// through the normalisation rather than a huge one.
			clear(dy)
		} else {
			inv := 1 / c.norm[r]
			for j, v := range z {
				dy[j] = (dzr[j] - v*dot) * inv
			}
		}
		if dyExtra != nil {
			e := dyExtra[r*m.out : (r+1)*m.out]
			for j := range dy {
				dy[j] += e[j]
			}
		}
	}
	// dW2 += H^T dY, db2 += colsum dY.
	s.tmp = grow(s.tmp, max(m.hid*m.out, m.in*m.hid))
	matmulPar(s.tmp, c.h, s.dy, m.hid, n, m.out, true, false, m.workers)
	addTo(g[2], s.tmp[:m.hid*m.out])
	for r := 0; r < n; r++ {
		addTo(g[3], s.dy[r*m.out:(r+1)*m.out])
	}
	// dH = dY W2^T, through the activation.
	s.dh = grow(s.dh, n*m.hid)
	matmulPar(s.dh, s.dy, p[2], n, m.out, m.hid, false, true, m.workers)
	for i, v := range c.hpre[:n*m.hid] {
		s.dh[i] *= m.actGrad(v)
	}
	// dW1 += X^T dHpre, db1 += colsum dHpre.
	matmulPar(s.tmp, x, s.dh, m.in, n, m.hid, true, false, m.workers)
	addTo(g[0], s.tmp[:m.in*m.hid])
	for r := 0; r < n; r++ {
		addTo(g[1], s.dh[r*m.hid:(r+1)*m.hid])
	}
	// dX = dHpre W1^T.
	s.dx = grow(s.dx, n*m.in)
	matmulPar(s.dx, s.dh, p[0], n, m.hid, m.in, false, true, m.workers)
	return s.dx[:n*m.in]
}

func addTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// grow returns buf resized to n, reallocating when its capacity is short.
// The contents are not cleared.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n, n+n/4)
	}
	return buf[:n]
}
