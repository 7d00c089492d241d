//go:build !openblas

package train

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS names the sgemm behind the learner's matrix products in this build
// and on this CPU: "avx2", the package's own packed AVX2/FMA kernel
// (sgemm_amd64.s), where the CPU has AVX2 and FMA, and "gonum", gonum's
// pure-Go sgemm, elsewhere and with the `purego` tag; `-tags openblas`
// selects OpenBLAS through cgo ("openblas").
var BLAS = defaultBLAS()

func defaultBLAS() string {
	if haveAVX2 {
		return "avx2"
	}
	return "gonum"
}

// gemmTileM and gemmTileN are the fixed output tiles that matmul hands to
// sgemm, one call each, which the workers share. For the AVX2 kernel a tile
// is large enough that packing its panels costs little beside its
// multiply-adds, while the learner's largest products (256 rows by 128 or
// queue+256 columns) still split into two or more tiles for two workers;
// the kernel's result does not depend on the tiling anyway.
const gemmTileM, gemmTileN = 128, 512

// gonumBlock is the block that gonum's sgemm computes serially: at four
// such blocks or more it would start goroutines of its own. sgemm hands it
// one block at a time, so that the workers are the only concurrency and
// every output element is computed the same way whatever their number (and
// as when matmul's tiles were these blocks).
const gonumBlock = 64

var gonumBLAS gonum.Implementation

// sgemm sets c (m x n, row stride ldc) to op(a) op(b), where op(a) is m x k
// (a stored k x m when ta) and op(b) is k x n (b stored n x k when tb). It
// runs on the calling goroutine: the AVX2 kernel where haveAVX2 holds,
// gonum's otherwise.
func sgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if haveAVX2 {
		sgemmAVX2(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
		return
	}
	sgemmGonum(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
}

// sgemmGonum is sgemm through gonum, in gonumBlock x gonumBlock blocks of c.
func sgemmGonum(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	tA, tB := blas.NoTrans, blas.NoTrans
	if ta {
		tA = blas.Trans
	}
	if tb {
		tB = blas.Trans
	}
	if (m <= gonumBlock && n <= gonumBlock) || k == 0 {
		gonumBLAS.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		return
	}
	for i := 0; i < m; i += gonumBlock {
		mm := min(gonumBlock, m-i)
		ao := i * lda
		if ta {
			ao = i
		}
		for j := 0; j < n; j += gonumBlock {
			nn := min(gonumBlock, n-j)
			bo := j
			if tb {
				bo = j * ldb
			}
			gonumBLAS.Sgemm(tA, tB, mm, nn, k, 1, a[ao:], lda, b[bo:], ldb, 0, c[i*ldc+j:], ldc)
		}
	}
}
