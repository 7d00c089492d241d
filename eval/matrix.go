package eval

import "math"

// Matrix holds one feature row per text, dense or sparse.
//
// Dense (Ptr == nil): Dense is Rows x Cols, row-major. Sparse (compressed
// sparse rows): row i holds the columns Idx[Ptr[i]:Ptr[i+1]] (ascending,
// distinct) with the values Val[Ptr[i]:Ptr[i+1]]; len(Ptr) == Rows+1.
type Matrix struct {
	Rows, Cols int
	Dense      []float32
	Ptr        []int
	Idx        []int32
	Val        []float32
}

// Sparse reports whether m is stored as compressed sparse rows.
func (m *Matrix) Sparse() bool { return m.Ptr != nil }

// NewDense returns a dense matrix of the rows (each of length cols).
func NewDense(rows [][]float32, cols int) *Matrix {
	m := &Matrix{Rows: len(rows), Cols: cols, Dense: make([]float32, len(rows)*cols)}
	for i, r := range rows {
		copy(m.Dense[i*cols:(i+1)*cols], r)
	}
	return m
}

// Select returns the rows of m at the given indexes, in that order.
func (m *Matrix) Select(rows []int) *Matrix {
	out := &Matrix{Rows: len(rows), Cols: m.Cols}
	if !m.Sparse() {
		out.Dense = make([]float32, len(rows)*m.Cols)
		for i, r := range rows {
			copy(out.Dense[i*m.Cols:(i+1)*m.Cols], m.Dense[r*m.Cols:(r+1)*m.Cols])
		}
		return out
	}
	out.Ptr = make([]int, 1, len(rows)+1)
	for _, r := range rows {
		lo, hi := m.Ptr[r], m.Ptr[r+1]
		out.Idx = append(out.Idx, m.Idx[lo:hi]...)
		out.Val = append(out.Val, m.Val[lo:hi]...)
		out.Ptr = append(out.Ptr, len(out.Idx))
	}
	return out
}

// normalizeRows scales every non-zero row to unit L2 norm, in place.
func (m *Matrix) normalizeRows() {
	for i := 0; i < m.Rows; i++ {
		var v []float32
		if m.Sparse() {
			v = m.Val[m.Ptr[i]:m.Ptr[i+1]]
		} else {
			v = m.Dense[i*m.Cols : (i+1)*m.Cols]
		}
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		if s == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range v {
			v[j] *= inv
		}
	}
}

// normalized returns a copy of m with unit-norm rows.
func (m *Matrix) normalized() *Matrix {
	c := &Matrix{Rows: m.Rows, Cols: m.Cols, Ptr: m.Ptr, Idx: m.Idx}
	if m.Sparse() {
		c.Val = append([]float32(nil), m.Val...)
	} else {
		c.Dense = append([]float32(nil), m.Dense...)
	}
	c.normalizeRows()
	return c
}
