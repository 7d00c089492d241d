//go:build openblas

package train

import "github.com/thresher-ml/thresher/internal/openblas"

// BLAS names the sgemm behind the learner's matrix products in this build:
// OpenBLAS's cblas_sgemm through cgo (`-tags openblas`, package
// internal/openblas; the default build uses the package's AVX2 kernel,
// "avx2", or gonum's pure-Go sgemm, "gonum"). It is a variable only because
// the default build's depends on the CPU.
var BLAS = "openblas"

// gemmTileM and gemmTileN are the fixed output tiles that matmul hands to
// sgemm, one call each; OpenBLAS runs single-threaded (the learner's
// workers share the tiles), so every output element is computed the same
// way whatever their number.
const gemmTileM, gemmTileN = 64, 2048

// sgemm sets c (m x n, row stride ldc) to op(a) op(b), where op(a) is m x k
// (a stored k x m when ta) and op(b) is k x n (b stored n x k when tb). It
// runs on the calling goroutine.
func sgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	openblas.Sgemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
}
