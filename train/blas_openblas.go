//go:build openblas

package train

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// BLAS names the sgemm behind the learner's matrix products in this build:
// OpenBLAS's cblas_sgemm through cgo (`-tags openblas`; the default build
// uses gonum's pure-Go sgemm).
const BLAS = "openblas"

// gemmTileM and gemmTileN are the fixed output tiles that matmul hands to
// sgemm, one call each; OpenBLAS runs single-threaded (the learner's
// workers share the tiles), so every output element is computed the same
// way whatever their number.
const gemmTileM, gemmTileN = 64, 2048

func init() {
	// The workers are the concurrency: OpenBLAS's own threads would compete
	// with them for the same cores and make results depend on its split.
	C.openblas_set_num_threads(1)
}

// sgemm sets c (m x n, row stride ldc) to op(a) op(b), where op(a) is m x k
// (a stored k x m when ta) and op(b) is k x n (b stored n x k when tb). It
// runs on the calling goroutine.
func sgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	tA, tB := C.CBLAS_TRANSPOSE(C.CblasNoTrans), C.CBLAS_TRANSPOSE(C.CblasNoTrans)
	if ta {
		tA = C.CblasTrans
	}
	if tb {
		tB = C.CblasTrans
	}
	// The bounds gonum checks, so that a bad call panics in Go rather than
	// reading out of range in C. matmul never passes an empty product.
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	_ = a[(ar-1)*lda+ac-1]
	_ = b[(br-1)*ldb+bc-1]
	_ = c[(m-1)*ldc+n-1]
	C.cblas_sgemm(C.CblasRowMajor, uint32(tA), uint32(tB),
		C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb), 0,
		(*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
