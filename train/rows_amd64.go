//go:build !purego

package train

// Kernels of the embedding-row work (rows_amd64.s): pooling, sparse
// gradient accumulation and the sparse optimiser updates. Each walks a whole
// list of rows in one call and gives the bits of its Go reference. A kernel
// that meets a row it does not take returns how many it finished, and the
// caller does that row in Go.

// poolAVX2 adds the rows ids of table (rows rows of width len(dst)) to dst
// in order, and multiplies dst by inv when it has added them all. It stops
// at the first id >= rows and returns the number of ids added.
//
//go:noescape
func poolAVX2(dst, table []float32, ids []uint32, rows int, inv float32) int

// poolKeyAVX2 adds to dst, in order, the momentum rows ids brought to step
// (poolKeyRow), and multiplies dst by inv when it has added them all. It
// stops at the first id >= rows or whose age step-sync[id] is negative or
// not below len(powM), and returns the number of ids added.
//
//go:noescape
func poolKeyAVX2(dst, on, key []float32, sync []int64, powM []float32, ids []uint32, rows int, step int64, inv float32) int

// gradAddAVX2 is sparseGrad.add(coef, vec) for every id of ids with
// id % w == k (mod = 2^64/w rounded up), in order. rows[:n] and grad[:n*len(vec)]
// hold the shard's rows; the rest of their length is room for new ones. It
// stops at an id beyond slot (or at a full shard) and returns the number of
// ids done and the shard's new row count.
//
//go:noescape
func gradAddAVX2(slot []int32, rows []uint32, grad []float32, n int, ids []uint32, vec []float32, mod, w, k uint64, coef float32) (done, count int)

// emaRowsAVX2 is updateEmbRow for rows (width d, gradient rows in grad) of
// tables with nrows rows, prev = step-1; acc is empty for SGD. It stops at
// a row >= nrows or whose age prev-sync[row] is positive and not below
// len(powM), and returns the number of rows done.
//
//go:noescape
func emaRowsAVX2(on, key, acc []float32, sync []int64, powM []float32, rows []uint32, grad []float32, d, nrows int, prev, step int64, lr, eps, m float32) int

// adagradRowsAVX2 is rowUpdate for rows (width d, gradient rows in grad) of
// a table of nrows rows; acc is empty for SGD. It stops at a row >= nrows
// and returns the number of rows done.
//
//go:noescape
func adagradRowsAVX2(w, acc []float32, rows []uint32, grad []float32, d, nrows int, lr, eps float32) int
