package dedup

import (
	"fmt"
	"math"
	"testing"
)

func TestXCurve(t *testing.T) {
	d := loadDevPairs(t)

	for _, c := range []Config{{Bands: 12, Rows: 2}, {Bands: 16, Rows: 2}, {Bands: 20, Rows: 3}, {Bands: 24, Rows: 2}} {
		for _, o := range []bool{true} {
			_ = o
			s, _ := NewSigner(c)
			cfg := s.cfg
			var cnt, hit [10]int
			var sa, sb Signature
			for _, p := range d.pairs {
				s.Sign(&sa, d.texts[p.a])
				s.Sign(&sb, d.texts[p.b])
				if sa.Exact == sb.Exact {
					continue
				}
				var set u32set
				q := newQuery(sa.sketch, cfg.SketchSize, &set)
				j := q.similarity(sb.sketch, 0)
				b := min(int(j*10), 9)
				cnt[b]++
				for i := range sa.bands {
					if sa.bands[i] == sb.bands[i] {
						hit[b]++
						break
					}
				}
			}
			line := fmt.Sprintf("oph=%-5v b=%2d r=%d:", o, c.Bands, c.Rows)
			for b := 3; b < 10; b++ {
				jm := float64(b)/10 + 0.05
				th := 1 - math.Pow(1-math.Pow(jm, float64(c.Rows)), float64(c.Bands))
				line += fmt.Sprintf(" J%.1f %.3f(%.3f,n=%d)", float64(b)/10, float64(hit[b])/float64(max(cnt[b], 1)), th, cnt[b])
			}
			t.Log(line)
		}
	}
}
