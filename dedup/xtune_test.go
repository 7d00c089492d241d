package dedup

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestXTune(t *testing.T) {
	d := loadDevPairs(t)
	type bc struct{ b, r int }
	for _, br := range []bc{{20, 3}, {16, 2}, {12, 2}, {24, 3}, {16, 3}, {32, 4}, {10, 3}, {8, 2}} {
		for _, thr := range []float64{0.5, 0.55, 0.6} {
			for _, sk := range []int{64, 128} {
				cfg := Config{Bands: br.b, Rows: br.r, Threshold: thr, SketchSize: sk}
				sum := make([]float64, len(kindOrder))
				worst := make([]float64, len(kindOrder))
				for i := range worst {
					worst[i] = -1
				}
				const orders = 5
				for seed := range orders {
					o := identity(len(d.texts))
					if seed > 0 {
						rand.New(rand.NewPCG(uint64(seed), 1)).Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
					}
					s := scorePairs(d, clusterOf(t, cfg, d.texts, o))
					for i, k := range s {
						sum[i] += k.rate()
						w := k.rate()
						if k.label == 1 {
							w = 1 - w
						}
						if w > worst[i] {
							worst[i] = w
						}
					}
				}
				line := fmt.Sprintf("b=%2d r=%d thr=%.2f k=%3d:", br.b, br.r, thr, sk)
				for i := range sum {
					line += fmt.Sprintf(" %s=%.4f", kindOrder[i][:7], sum[i]/orders)
				}
				t.Log(line)
			}
		}
	}
}
