//go:build !amd64 || purego

package train

// Without assembly haveAVX2 is false and these are never called.

func poolAVX2(dst, table []float32, ids []uint32, rows int, inv float32) int {
	panic("train: poolAVX2 without assembly")
}

func poolKeyAVX2(dst, on, key []float32, sync []int64, powM []float32, ids []uint32, rows int, step int64, inv float32) int {
	panic("train: poolKeyAVX2 without assembly")
}

func gradAddAVX2(slot []int32, rows []uint32, grad []float32, n int, ids []uint32, vec []float32, mod, w, k uint64, coef float32) (done, count int) {
	panic("train: gradAddAVX2 without assembly")
}

func emaRowsAVX2(on, key, acc []float32, sync []int64, powM []float32, rows []uint32, grad []float32, d, nrows int, prev, step int64, lr, eps, m float32) int {
	panic("train: emaRowsAVX2 without assembly")
}

func adagradRowsAVX2(w, acc []float32, rows []uint32, grad []float32, d, nrows int, lr, eps float32) int {
	panic("train: adagradRowsAVX2 without assembly")
}
