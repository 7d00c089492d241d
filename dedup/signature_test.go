package dedup

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSelectSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 1; n < 3000; n += 1 + n/7 {
		for k := 1; k <= n; k += 1 + k/3 {
			seen := map[uint32]bool{}
			var a []uint32
			for len(a) < n {
				if v := rng.Uint32() % uint32(4*n+1); !seen[v] {
					seen[v] = true
					a = append(a, v)
				}
			}
			want := slices.Sorted(slices.Values(a))[:k]
			selectSmallest(a, k)
			if got := slices.Sorted(slices.Values(a[:k])); !slices.Equal(got, want) {
				t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got, want)
			}
		}
	}
}

// TestSimilarityEstimate: texts with more shingles than SketchSize get an
// estimate whose error stays within a few standard errors of the truth.
func TestSimilarityEstimate(t *testing.T) {
	cfg := DefaultConfig()
	s := newSigner(cfg)
	rng := rand.New(rand.NewPCG(2, 2))
	word := func(i int) string { return fmt.Sprintf("w%d", i) }
	var worst float64
	for trial := range 40 {
		n := 200 + rng.IntN(800)
		a := make([]string, n)
		for i := range a {
			a[i] = word(trial*100000 + i)
		}
		b := slices.Clone(a)
		for i := range b { // replace about a quarter of the words
			if rng.IntN(4) == 0 {
				b[i] = word(-1 - trial*100000 - i)
			}
		}
		ta, tb := strings.Join(a, " "), strings.Join(b, " ")
		want := refJaccard(cfg, ta, tb)
		var sa, sb Signature
		s.Sign(&sa, ta)
		s.Sign(&sb, tb)
		if len(sa.sketch) != cfg.SketchSize || len(sb.sketch) != cfg.SketchSize {
			t.Fatalf("sketches of %d and %d values", len(sa.sketch), len(sb.sketch))
		}
		var set u32set
		q := newQuery(sa.sketch, cfg.SketchSize, &set)
		got := q.similarity(sb.sketch, 0)
		se := math.Sqrt(want * (1 - want) / float64(cfg.SketchSize))
		if dev := math.Abs(got-want) / se; dev > 4 {
			t.Errorf("trial %d: estimate %.3f, Jaccard %.3f (%.1f standard errors off)", trial, got, want, dev)
		} else {
			worst = max(worst, dev)
		}
	}
	t.Logf("worst estimate %.1f standard errors off", worst)
}
