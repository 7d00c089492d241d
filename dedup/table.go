package dedup

import (
	"math"
	"unsafe"
)

// table is an open-addressing hash table (linear probing) from non-zero keys
// that are already hashes to uint32 values; key 0 marks an empty slot. It
// serves as a map (put) or as a multimap (insert, next). It never deletes:
// a generation of the index is dropped whole. Its load stays at most 3/4,
// so every probe sequence ends at an empty slot.
type table[K uint32 | uint64] struct {
	keys []K
	vals []uint32
	n    int
}

const minTableCap = 64

func (t *table[K]) home(k K) int {
	return int((uint64(k)*0x9e3779b97f4a7c15)>>32) & (len(t.keys) - 1)
}

// get returns the value of k.
func (t *table[K]) get(k K) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.keys) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			return t.vals[i], true
		case 0:
			return 0, false
		}
	}
}

// put sets the value of k (k != 0).
func (t *table[K]) put(k K, v uint32) {
	if (t.n+1)*4 > len(t.keys)*3 {
		t.grow()
	}
	mask := len(t.keys) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			t.vals[i] = v
			return
		case 0:
			t.keys[i], t.vals[i] = k, v
			t.n++
			return
		}
	}
}

// insert adds the pair (k, v) (k != 0) unless k is there limit times
// already, and reports whether it did. A key's entries lie along its probe
// sequence in the order they were added.
func (t *table[K]) insert(k K, v uint32, limit int) bool {
	if (t.n+1)*4 > len(t.keys)*3 {
		t.grow()
	}
	mask := len(t.keys) - 1
	i := t.home(k)
	for same := 0; t.keys[i] != 0; i = (i + 1) & mask {
		if t.keys[i] == k {
			if same++; same >= limit {
				return false
			}
		}
	}
	t.keys[i], t.vals[i] = k, v
	t.n++
	return true
}

// next returns the first slot at or after probe position i (start with
// home(k)) holding key k, and -1 at the end of k's probe sequence.
func (t *table[K]) next(k K, i int) int {
	if t.n == 0 {
		return -1
	}
	mask := len(t.keys) - 1
	for ; ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			return i
		case 0:
			return -1
		}
	}
}

func (t *table[K]) grow() {
	c := 2 * len(t.keys)
	if c < minTableCap {
		c = minTableCap
	}
	old, oldv := t.keys, t.vals
	t.keys, t.vals, t.n = make([]K, c), make([]uint32, c), 0
	for i, k := range old {
		if k != 0 {
			t.insert(k, oldv[i], math.MaxInt)
		}
	}
}

func (t *table[K]) bytes() int64 {
	var k K
	return int64(cap(t.keys))*int64(unsafe.Sizeof(k)) + int64(cap(t.vals))*4
}
