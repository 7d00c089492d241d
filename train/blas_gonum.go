//go:build !openblas

package train

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS names the sgemm behind the learner's matrix products in this build:
// gonum's pure-Go implementation (the default build; `-tags openblas`
// selects OpenBLAS through cgo).
const BLAS = "gonum"

// gemmTileM and gemmTileN are the fixed output tiles that matmul hands to
// sgemm, one call each. At 64 x 64 gonum computes a tile serially (its own
// parallel split starts at four 64 x 64 blocks), so the workers are the only
// concurrency and every output element is computed the same way whatever
// their number.
const gemmTileM, gemmTileN = 64, 64

var gonumBLAS gonum.Implementation

// sgemm sets c (m x n, row stride ldc) to op(a) op(b), where op(a) is m x k
// (a stored k x m when ta) and op(b) is k x n (b stored n x k when tb). It
// runs on the calling goroutine.
func sgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	tA, tB := blas.NoTrans, blas.NoTrans
	if ta {
		tA = blas.Trans
	}
	if tb {
		tB = blas.Trans
	}
	gonumBLAS.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
}
