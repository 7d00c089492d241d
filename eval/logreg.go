package eval

import (
	"math"
	"runtime"
	"sync"
)

// DefaultCs is the grid of inverse regularisation strengths the linear
// probe chooses from on the dev split.
var DefaultCs = []float64{0.01, 0.1, 1, 10, 100}

// LogReg is a multinomial logistic regression over frozen features. It
// minimises
//
//	(1/n) sum_i -log softmax(W x_i + b)_{y_i} + 1/(2 C n) |W|^2
//
// (the bias is not penalised; C is scikit-learn's C) with L-BFGS. On a
// sparse matrix only the columns the training rows use get weights: every
// other column's optimum is exactly zero under the L2 penalty.
type LogReg struct {
	Classes    int
	C          float64
	Iterations int       // L-BFGS iterations of the last fit
	Losses     []float64 // objective after each iteration of the last fit (the first is at the start point)

	cols  int     // columns of the matrices it scores
	local int     // weighted feature columns
	colOf []int32 // sparse: global column -> local column or -1; nil when dense
	w     []float64
	dual  []float64 // the kernel-form solution, when fitted in that form (warm starts)
}

// problem is a training set with its columns remapped to local indexes.
type problem struct {
	x       *Matrix // local columns
	y       []int
	classes int
	colOf   []int32
	cols    int

	gramOnce sync.Once
	gram     []float64 // X X^T, for the kernel form
}

func newProblem(x *Matrix, y []int, classes int) *problem {
	p := &problem{x: x, y: y, classes: classes, cols: x.Cols}
	if !x.Sparse() {
		return p
	}
	p.colOf = make([]int32, x.Cols)
	for i := range p.colOf {
		p.colOf[i] = -1
	}
	local := &Matrix{Rows: x.Rows, Ptr: x.Ptr, Val: x.Val, Idx: make([]int32, len(x.Idx))}
	next := int32(0)
	for i, c := range x.Idx {
		if p.colOf[c] < 0 {
			p.colOf[c] = next
			next++
		}
		local.Idx[i] = p.colOf[c]
	}
	local.Cols = int(next)
	p.x = local
	return p
}

// FitLogReg fits a logistic regression with inverse regularisation c on
// the rows of x labeled y (class indexes below classes).
func FitLogReg(x *Matrix, y []int, classes int, c float64) *LogReg {
	return newProblem(x, y, classes).fit(c, nil)
}

// fit fits with inverse regularisation c, starting from init (a fit on the
// same problem) when not nil.
func (p *problem) fit(c float64, init *LogReg) *LogReg {
	d, k := p.x.Cols, p.classes
	m := &LogReg{Classes: k, C: c, cols: p.cols, local: d, colOf: p.colOf}
	n := max(p.x.Rows, 1)
	lambda := 1 / (c * float64(n))
	if p.useKernel() {
		m.dual = make([]float64, (p.x.Rows+1)*k)
		if init != nil && init.dual != nil {
			copy(m.dual, init.dual)
		}
		f := func(a, g []float64) float64 { return p.kernelObjective(a, g, lambda) }
		m.Losses, m.Iterations = lbfgs(f, m.dual, lbfgsMemory, lbfgsMaxIter, lbfgsGradTol)
		m.w = p.primal(m.dual)
		return m
	}
	m.w = make([]float64, (d+1)*k)
	if init != nil {
		copy(m.w, init.w)
	}
	f := func(w, g []float64) float64 { return p.objective(w, g, lambda) }
	m.Losses, m.Iterations = lbfgs(f, m.w, lbfgsMemory, lbfgsMaxIter, lbfgsGradTol)
	return m
}

// kernelMaxRows bounds the rows of a problem solved in its kernel form
// (the Gram matrix is rows x rows).
const kernelMaxRows = 4096

// useKernel reports whether the problem is solved in its kernel form:
// sparse rows, and rows^2 at most ten times the weighted columns (an
// evaluation costs about 2 rows^2 classes multiply-adds there, against
// about 32 columns x classes for the L-BFGS vector work of the primal
// form, which also converges in fewer iterations). By the representer
// theorem the optimal W is X^T A for some rows x classes matrix A (the
// penalty is |W|^2 and the bias is free), so the same objective,
//
//	(1/n) sum_i CE(G_i A + b, y_i) + lambda/2 tr(A^T G A),  G = X X^T,
//
// is minimised over A and b: rows x classes parameters instead of
// columns x classes, which for a few hundred tf-idf rows over tens of
// thousands of columns is what makes the fit fast.
func (p *problem) useKernel() bool {
	n := p.x.Rows
	return p.x.Sparse() && n*n <= 10*p.x.Cols && n <= kernelMaxRows
}

// gramMatrix returns X X^T (rows x rows, row-major), computed once.
func (p *problem) gramMatrix() []float64 {
	p.gramOnce.Do(func() {
		x, n := p.x, p.x.Rows
		g := make([]float64, n*n)
		dense := make([]float64, x.Cols)
		for i := range n {
			for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
				dense[x.Idx[t]] = float64(x.Val[t])
			}
			for j := i; j < n; j++ {
				s := 0.0
				for t := x.Ptr[j]; t < x.Ptr[j+1]; t++ {
					s += dense[x.Idx[t]] * float64(x.Val[t])
				}
				g[i*n+j], g[j*n+i] = s, s
			}
			for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
				dense[x.Idx[t]] = 0
			}
		}
		p.gram = g
	})
	return p.gram
}

// kernelObjective is objective in the kernel form: a holds A (rows x
// classes, row-major) then b. With Q = G A: Z = Q + b, the penalty is
// lambda/2 tr(A^T Q), and dA = G R + lambda Q, R = (softmax(Z) - Y) / n.
func (p *problem) kernelObjective(a, g []float64, lambda float64) float64 {
	gram := p.gramMatrix()
	n, k := p.x.Rows, p.classes
	A, b := a[:n*k], a[n*k:]
	q := gramTimes(gram, A, n, k, make([]float64, n*k))
	r := make([]float64, n*k)
	loss, reg := 0.0, 0.0
	for i := range n {
		z, qi := r[i*k:(i+1)*k], q[i*k:(i+1)*k]
		reg += dot(A[i*k:(i+1)*k], qi)
		for c := range z {
			z[c] = qi[c] + b[c]
		}
		loss += softmaxResidual(z, p.y[i])
	}
	inv := 1 / float64(max(n, 1))
	loss = loss*inv + 0.5*lambda*reg
	gb := g[n*k:]
	clear(gb)
	for i := range r {
		r[i] *= inv
		gb[i%k] += r[i]
	}
	gA := gramTimes(gram, r, n, k, g[:n*k])
	axpy(lambda, q, gA)
	return loss
}

// gramTimes writes G M (G n x n symmetric, M n x k, both row-major) into
// out: each entry is a dot product of a row of G with a column of M, which
// is transposed first so that both run contiguously.
func gramTimes(gram, m []float64, n, k int, out []float64) []float64 {
	mt := make([]float64, k*n)
	for j := range n {
		for c := range k {
			mt[c*n+j] = m[j*k+c]
		}
	}
	for i := range n {
		gi := gram[i*n : (i+1)*n]
		for c := range k {
			out[i*k+c] = dot(gi, mt[c*n:(c+1)*n])
		}
	}
	return out
}

// primal turns a kernel-form solution into the weights W = X^T A, b.
func (p *problem) primal(a []float64) []float64 {
	x, n, k := p.x, p.x.Rows, p.classes
	w := make([]float64, (x.Cols+1)*k)
	for i := range n {
		ai := a[i*k : (i+1)*k]
		for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
			axpy(float64(x.Val[t]), ai, w[int(x.Idx[t])*k:(int(x.Idx[t])+1)*k])
		}
	}
	copy(w[x.Cols*k:], a[n*k:])
	return w
}

// L-BFGS settings: accuracy on held-out rows does not move once the
// largest gradient component of the mean loss is below 1e-4.
const (
	lbfgsMemory  = 6
	lbfgsMaxIter = 200
	lbfgsGradTol = 1e-4
	lbfgsFTol    = 1e-8 // stop after three iterations that lower the objective by less than this, relatively
)

// chunksFor is the fixed partition of n rows for the objective: large
// problems are split in four chunks (run on up to GOMAXPROCS goroutines,
// summed in chunk order, so the result does not depend on GOMAXPROCS).
func chunksFor(n int) int {
	if n >= 8192 {
		return 4
	}
	return 1
}

// objective returns the loss at w and writes its gradient into g.
func (p *problem) objective(w, g []float64, lambda float64) float64 {
	n := p.x.Rows
	nc := chunksFor(n)
	losses := make([]float64, nc)
	grads := make([][]float64, nc)
	grads[0] = g
	for i := 1; i < nc; i++ {
		grads[i] = make([]float64, len(g))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for ci := range nc {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			losses[ci] = p.partial(w, grads[ci], ci*n/nc, (ci+1)*n/nc)
		}()
	}
	wg.Wait()
	loss := 0.0
	for ci := range nc {
		loss += losses[ci]
		if ci > 0 {
			for j, v := range grads[ci] {
				g[j] += v
			}
		}
	}
	inv := 1 / float64(max(n, 1))
	loss *= inv
	d, k := p.x.Cols, p.classes
	for j := range g {
		g[j] *= inv
	}
	for j := 0; j < d*k; j++ {
		loss += 0.5 * lambda * w[j] * w[j]
		g[j] += lambda * w[j]
	}
	return loss
}

// partial returns the summed cross-entropy of rows lo..hi and writes its
// gradient (summed, not averaged) into g.
func (p *problem) partial(w, g []float64, lo, hi int) float64 {
	clear(g)
	x, d, k := p.x, p.x.Cols, p.classes
	z := make([]float64, k)
	bias := w[d*k:]
	gb := g[d*k:]
	loss := 0.0
	for i := lo; i < hi; i++ {
		copy(z, bias)
		if x.Sparse() {
			for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
				j, v := int(x.Idx[t]), float64(x.Val[t])
				wj := w[j*k : (j+1)*k]
				for c := range z {
					z[c] += v * wj[c]
				}
			}
		} else {
			for j, v32 := range x.Dense[i*d : (i+1)*d] {
				v := float64(v32)
				wj := w[j*k : (j+1)*k]
				for c := range z {
					z[c] += v * wj[c]
				}
			}
		}
		loss += softmaxResidual(z, p.y[i])
		for c := range z {
			gb[c] += z[c]
		}
		if x.Sparse() {
			for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
				j, v := int(x.Idx[t]), float64(x.Val[t])
				gj := g[j*k : (j+1)*k]
				for c := range z {
					gj[c] += v * z[c]
				}
			}
		} else {
			for j, v32 := range x.Dense[i*d : (i+1)*d] {
				v := float64(v32)
				gj := g[j*k : (j+1)*k]
				for c := range z {
					gj[c] += v * z[c]
				}
			}
		}
	}
	return loss
}

// softmaxResidual turns logits z into p - onehot(y) in place and returns
// -log p_y.
func softmaxResidual(z []float64, y int) float64 {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	s := 0.0
	for c, v := range z {
		z[c] = math.Exp(v - mx)
		s += z[c]
	}
	loss := math.Log(s) - (math.Log(z[y]))
	for c := range z {
		z[c] /= s
	}
	z[y] -= 1
	return loss
}

// Scores returns the logits of every row of x (Rows x Classes).
func (m *LogReg) Scores(x *Matrix) [][]float64 {
	k := m.Classes
	out := make([][]float64, x.Rows)
	bias := m.w[m.local*k:]
	for i := range out {
		z := append([]float64(nil), bias...)
		add := func(j int, v float64) {
			wj := m.w[j*k : (j+1)*k]
			for c := range z {
				z[c] += v * wj[c]
			}
		}
		if x.Sparse() {
			for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
				if l := m.colOf[x.Idx[t]]; l >= 0 {
					add(int(l), float64(x.Val[t]))
				}
			}
		} else {
			for j, v := range x.Dense[i*x.Cols : (i+1)*x.Cols] {
				add(j, float64(v))
			}
		}
		out[i] = z
	}
	return out
}

// Weights returns the fitted model as rows of class weights: w holds one
// row of Classes weights per weighted column, then the bias row, and cols
// names the matrix column of each weighted row (nil for a dense fit, whose
// rows are the columns in order). Columns of a sparse matrix that no
// training row used have no row: their weights are zero.
func (m *LogReg) Weights() (cols []int32, w []float64) {
	if m.colOf != nil {
		cols = make([]int32, m.local)
		for g, l := range m.colOf {
			if l >= 0 {
				cols[l] = int32(g)
			}
		}
	}
	return cols, m.w
}

// Predict returns the most probable class of every row of x (ties: the
// lower class index).
func (m *LogReg) Predict(x *Matrix) []int {
	scores := m.Scores(x)
	pred := make([]int, len(scores))
	for i, z := range scores {
		best := 0
		for c, v := range z {
			if v > z[best] {
				best = c
			}
		}
		pred[i] = best
	}
	return pred
}

// SelectC fits one model per value of cs (ascending, each warm-started
// from the previous one) on the training rows and returns the one with
// the highest accuracy on the dev rows (ties: the smaller C), with the
// dev accuracy of every C.
func SelectC(x *Matrix, y []int, classes int, devX *Matrix, devY []int, cs []float64) (*LogReg, []float64) {
	p := newProblem(x, y, classes)
	var best, prev *LogReg
	accs := make([]float64, len(cs))
	bestAcc := -1.0
	for i, c := range cs {
		m := p.fit(c, prev)
		accs[i] = Accuracy(devY, m.Predict(devX))
		if accs[i] > bestAcc {
			best, bestAcc = m, accs[i]
		}
		prev = m
	}
	return best, accs
}

// lbfgs minimises f from x (updated in place) with limited-memory BFGS
// (mem pairs, backtracking Armijo line search) until the gradient's
// largest component is at most gtol, the objective stops decreasing, or
// maxIter iterations. It returns the objective after each iteration
// (starting with the start point) and the number of iterations.
func lbfgs(f func(x, g []float64) float64, x []float64, mem, maxIter int, gtol float64) ([]float64, int) {
	n := len(x)
	g := make([]float64, n)
	fx := f(x, g)
	losses := []float64{fx}
	var ss, ys [][]float64
	var rhos []float64
	dir := make([]float64, n)
	xNew := make([]float64, n)
	gNew := make([]float64, n)
	alpha := make([]float64, mem)
	stall := 0
	iter := 0
	for ; iter < maxIter; iter++ {
		if normInf(g) <= gtol {
			break
		}
		// Two-loop recursion: dir = -H g.
		copy(dir, g)
		for i := len(ss) - 1; i >= 0; i-- {
			alpha[i] = rhos[i] * dot(ss[i], dir)
			axpy(-alpha[i], ys[i], dir)
		}
		gamma := 1.0
		if l := len(ss); l > 0 {
			gamma = dot(ss[l-1], ys[l-1]) / dot(ys[l-1], ys[l-1])
		} else {
			gamma = 1 / math.Max(norm2(g), 1e-12)
		}
		scale(gamma, dir)
		for i := range ss {
			b := rhos[i] * dot(ys[i], dir)
			axpy(alpha[i]-b, ss[i], dir)
		}
		scale(-1, dir)
		slope := dot(g, dir)
		if slope >= 0 { // not a descent direction: restart from steepest descent
			ss, ys, rhos = ss[:0], ys[:0], rhos[:0]
			copy(dir, g)
			scale(-1/math.Max(norm2(g), 1e-12), dir)
			slope = dot(g, dir)
		}
		step := 1.0
		var fNew float64
		ok := false
		for try := 0; try < 40; try++ {
			for i := range x {
				xNew[i] = x[i] + step*dir[i]
			}
			fNew = f(xNew, gNew)
			if fNew <= fx+1e-4*step*slope {
				ok = true
				break
			}
			step *= 0.5
		}
		if !ok {
			break
		}
		var s, y []float64
		if len(ss) == mem {
			s, y = ss[0], ys[0]
			ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
		} else {
			s, y = make([]float64, n), make([]float64, n)
		}
		for i := range x {
			s[i] = xNew[i] - x[i]
			y[i] = gNew[i] - g[i]
		}
		if sy := dot(s, y); sy > 1e-12 {
			ss, ys, rhos = append(ss, s), append(ys, y), append(rhos, 1/sy)
		}
		copy(x, xNew)
		copy(g, gNew)
		if fx-fNew <= lbfgsFTol*math.Max(1, math.Abs(fx)) {
			stall++
		} else {
			stall = 0
		}
		fx = fNew
		losses = append(losses, fx)
		if stall >= 3 {
			iter++
			break
		}
	}
	return losses, iter
}

// dot and axpy run over the whole parameter vector several times per
// L-BFGS iteration; four independent accumulators keep the FPU busy.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpy(a float64, x, y []float64) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

func norm2(x []float64) float64 { return math.Sqrt(dot(x, x)) }

func normInf(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}
