package train

// keyQueue is the MoCo queue: a FIFO ring of past keys (momentum-encoder
// outputs of view B), each with the hashes of its dedup cluster and record
// (0: unknown) and the optimiser step at which it was enqueued.
//
// The key vectors live in the first cap rows of buf; the rows after them
// hold the current micro-batch's keys while a loss is computed, so
// [queue rows; batch keys] is one contiguous candidate matrix.
type keyQueue struct {
	dim, cap int
	n, head  int // entries held; next row to overwrite once full
	buf      []float32
	cluster  []uint64
	record   []uint64
	enq      []int64
}

func newKeyQueue(capacity, dim int) keyQueue {
	return keyQueue{
		dim: dim, cap: capacity,
		buf:     make([]float32, capacity*dim),
		cluster: make([]uint64, capacity),
		record:  make([]uint64, capacity),
		enq:     make([]int64, capacity),
	}
}

// candidates returns the candidate matrix with room for b batch keys after
// the n queued rows; the batch keys are written at rows n..n+b-1.
func (q *keyQueue) candidates(b int) []float32 {
	need := (q.cap + b) * q.dim
	if cap(q.buf) < need {
		nb := make([]float32, need, need+need/4)
		copy(nb, q.buf[:q.cap*q.dim])
		q.buf = nb
	}
	q.buf = q.buf[:need]
	return q.buf[:(q.n+b)*q.dim]
}

// push enqueues keys (rows of dim floats) with their hashes at step.
func (q *keyQueue) push(keys []float32, cluster, record []uint64, step int64) {
	if q.cap == 0 {
		return
	}
	rows := len(cluster)
	start := 0
	if rows > q.cap {
		start = rows - q.cap
	}
	for i := start; i < rows; i++ {
		var at int
		if q.n < q.cap {
			at = q.n
			q.n++
		} else {
			at = q.head
			q.head = (q.head + 1) % q.cap
		}
		copy(q.buf[at*q.dim:(at+1)*q.dim], keys[i*q.dim:(i+1)*q.dim])
		q.cluster[at], q.record[at], q.enq[at] = cluster[i], record[i], step
	}
}

// staleness is the mean age of the queued keys in optimiser steps.
func (q *keyQueue) staleness(step int64) float64 {
	if q.n == 0 {
		return 0
	}
	var s float64
	for _, e := range q.enq[:q.n] {
		s += float64(step - e)
	}
	return s / float64(q.n)
}
