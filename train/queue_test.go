package train

import "testing"

// TestQueueFIFO: the queue keeps the newest keys, overwriting the oldest,
// and reports their mean age.
func TestQueueFIFO(t *testing.T) {
	q := newKeyQueue(3, 2)
	push := func(v float32, step int64) {
		q.push([]float32{v, -v}, []uint64{uint64(v)}, []uint64{uint64(v) + 100}, step)
	}
	push(1, 0)
	push(2, 1)
	if q.n != 2 || q.staleness(2) != 1.5 {
		t.Fatalf("n %d, staleness %g", q.n, q.staleness(2))
	}
	push(3, 2)
	push(4, 3) // overwrites 1
	held := map[float32]bool{}
	for i := 0; i < q.n; i++ {
		held[q.buf[i*2]] = true
		if q.cluster[i] != uint64(q.buf[i*2]) || q.record[i] != uint64(q.buf[i*2])+100 {
			t.Fatalf("row %d: ids do not follow the key", i)
		}
	}
	if q.n != 3 || held[1] || !held[2] || !held[3] || !held[4] {
		t.Fatalf("queue holds %v", held)
	}
	if got := q.staleness(4); got != 2 {
		t.Fatalf("staleness %g, want 2", got)
	}
	// More keys than the capacity at once: the last ones win.
	q.push([]float32{5, 0, 6, 0, 7, 0, 8, 0}, []uint64{5, 6, 7, 8}, []uint64{0, 0, 0, 0}, 5)
	held = map[float32]bool{}
	for i := 0; i < q.n; i++ {
		held[q.buf[i*2]] = true
	}
	if !held[6] || !held[7] || !held[8] || held[5] {
		t.Fatalf("queue holds %v", held)
	}
	// The candidate matrix puts the batch keys right after the queue.
	c := q.candidates(2)
	if len(c) != (3+2)*2 {
		t.Fatalf("candidates %d floats", len(c))
	}
	empty := newKeyQueue(0, 2)
	empty.push([]float32{1, 2}, []uint64{1}, []uint64{1}, 0)
	if empty.n != 0 || len(empty.candidates(1)) != 2 {
		t.Fatal("a disabled queue holds keys")
	}
}
