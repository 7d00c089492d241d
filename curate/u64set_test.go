package curate

import (
	"math/rand/v2"
	"testing"
)

// TestU64Set checks the hash set of window summaries against a map.
func TestU64Set(t *testing.T) {
	var s u64set
	want := map[uint64]struct{}{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50_000 {
		h := r.Uint64() % 20_000
		if i%7 == 0 {
			h = r.Uint64()
		}
		s.add(h)
		want[h] = struct{}{}
		if !s.has(h) {
			t.Fatalf("has(%d) false after add", h)
		}
	}
	if s.len() != len(want) {
		t.Fatalf("len %d, want %d", s.len(), len(want))
	}
	seen := map[uint64]bool{}
	for h := range s.all() {
		if _, ok := want[h]; !ok || seen[h] {
			t.Fatalf("all yields %d (in set %v, again %v)", h, ok, seen[h])
		}
		seen[h] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("all yields %d, want %d", len(seen), len(want))
	}
	for range 10_000 {
		h := r.Uint64()
		if _, ok := want[h]; ok != s.has(h) {
			t.Fatalf("has(%d) = %v, want %v", h, !ok, ok)
		}
	}
}
