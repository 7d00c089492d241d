//go:build !openblas && (!amd64 || purego)

package train

// sgemmAVX2 is not built here: haveAVX2 is false, so sgemm never calls it.
func sgemmAVX2(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	panic("train: sgemmAVX2 without AVX2")
}
