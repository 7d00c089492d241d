//go:build openblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

func init() {
	// The callers' goroutines are the concurrency: OpenBLAS's own threads
	// would compete with them for the same cores and make results depend
	// on its split.
	C.openblas_set_num_threads(1)
}

// Sgemm sets c (m x n, row stride ldc) to op(a) op(b), where op(a) is m x k
// (a stored k x m when ta) and op(b) is k x n (b stored n x k when tb), with
// one OpenBLAS thread on the calling goroutine. m, n and k are positive; a
// bad shape panics in Go, before C could read out of range.
func Sgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	tA, tB := C.CBLAS_TRANSPOSE(C.CblasNoTrans), C.CBLAS_TRANSPOSE(C.CblasNoTrans)
	if ta {
		tA = C.CblasTrans
	}
	if tb {
		tB = C.CblasTrans
	}
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
