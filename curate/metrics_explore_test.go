package curate

import (
	"math"
	"os"
	"sort"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func sqrt(x float64) float64 { return math.Sqrt(x) }

func TestExploreCompression(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	recs := realRecords(t, 20000)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	var est, real, estR, realR []float64
	var absErr float64
	for _, r := range recs {
		z := len(enc.EncodeAll([]byte(r.Text), nil))
		e := EstimateCompressedSize(r.Text)
		est = append(est, float64(e))
		real = append(real, float64(z))
		estR = append(estR, float64(len(r.Text))/float64(e))
		realR = append(realR, float64(len(r.Text))/float64(z))
		absErr += math.Abs(float64(e-z)) / float64(z)
	}
	t.Logf("size spearman %.4f ratio spearman %.4f pearson ratio %.4f mean rel err %.3f", spearman(est, real), spearman(estR, realR), pearson(estR, realR), absErr/float64(len(recs)))
	// by length band
	type band struct{ lo, hi int }
	for _, b := range []band{{0, 100}, {100, 300}, {300, 1000}, {1000, 1 << 30}} {
		var a, c []float64
		for i, r := range recs {
			if len(r.Text) >= b.lo && len(r.Text) < b.hi {
				a = append(a, estR[i])
				c = append(c, realR[i])
			}
		}
		t.Logf("band %v n=%d ratio spearman %.4f", b, len(a), spearman(a, c))
	}
	// worst
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		return math.Abs(est[idx[a]]-real[idx[a]]) > math.Abs(est[idx[b]]-real[idx[b]])
	})
	for _, i := range idx[:5] {
		t.Logf("len %d est %v real %v", len(recs[i].Text), est[i], real[i])
	}
}

func TestExploreMetrics(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	recs := realRecords(t, 0)
	nm, _ := strconv.Atoi(os.Getenv("NGRAM_MIN"))
	a := NewAnalyzer(MetricsConfig{NgramMinWords: nm})
	type agg struct {
		n                                        int
		words, alpha, ce, we, cr, stop, top2, dl []float64
		flags                                    [numQualityFlags]int
		lang                                     map[string]int
		pii                                      [numPIIKinds]int
	}
	by := map[string]*agg{}
	piiShown := map[PIIFlags]int{}
	for _, r := range recs {
		m := a.Analyze(r.Text)
		g := by[r.Source]
		if g == nil {
			g = &agg{lang: map[string]int{}}
			by[r.Source] = g
		}
		g.n++
		g.words = append(g.words, float64(m.LengthWords))
		g.alpha = append(g.alpha, float64(m.AlphaWordFrac))
		g.ce = append(g.ce, float64(m.CharEntropy))
		g.we = append(g.we, float64(m.WordEntropy))
		g.cr = append(g.cr, float64(m.CompressionRatio))
		g.stop = append(g.stop, float64(m.StopWords))
		g.top2 = append(g.top2, float64(m.Top2GramFrac))
		g.dl = append(g.dl, float64(m.DupLineFrac))
		for k := range numQualityFlags {
			if m.QualityFlags&(1<<k) != 0 {
				g.flags[k]++
			}
		}
		g.lang[m.Lang+"/"+m.Script]++
		for _, sp := range a.PIISpans() {
			g.pii[bitsTZ(sp.Kind)]++
			if piiShown[sp.Kind] < 12 {
				piiShown[sp.Kind]++
				lo, hi := max(0, sp.Start-30), min(len(r.Text), sp.End+30)
				t.Logf("PII %v [%s]: %q in %q", sp.Kind, r.Source, r.Text[sp.Start:sp.End], r.Text[lo:hi])
			}
		}
	}
	pct := func(xs []float64, p float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[int(p*float64(len(s)-1))]
	}
	srcs := make([]string, 0, len(by))
	for s := range by {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		g := by[s]
		t.Logf("%-12s n=%6d words p1/p5/p50/p99 %v/%v/%v/%v alpha p1/p5 %.2f/%.2f ce p1/p5/p50 %.2f/%.2f/%.2f cr p50/p99/max %.2f/%.2f/%.2f stop p5/p50 %v/%v top2 p50/p99 %.2f/%.2f dl p99 %.2f",
			s, g.n, pct(g.words, .01), pct(g.words, .05), pct(g.words, .5), pct(g.words, .99), pct(g.alpha, .01), pct(g.alpha, .05),
			pct(g.ce, .01), pct(g.ce, .05), pct(g.ce, .5), pct(g.cr, .5), pct(g.cr, .99), pct(g.cr, 1), pct(g.stop, .05), pct(g.stop, .5), pct(g.top2, .5), pct(g.top2, .99), pct(g.dl, .99))
		var fl []string
		for k, c := range g.flags {
			if c > 0 {
				fl = append(fl, qualityNames[k]+"="+strconv.FormatFloat(100*float64(c)/float64(g.n), 'f', 2, 64)+"%")
			}
		}
		t.Logf("   flags %v pii %v lang %v", fl, g.pii, g.lang)
	}
}

func bitsTZ(f PIIFlags) int {
	for k := range numPIIKinds {
		if f&(1<<k) != 0 {
			return k
		}
	}
	return 0
}

func TestExploreFlags(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	recs := realRecords(t, 0)
	nm, _ := strconv.Atoi(os.Getenv("NGRAM_MIN"))
	a := NewAnalyzer(MetricsConfig{NgramMinWords: nm})
	shown := map[QualityFlags]int{}
	for _, r := range recs {
		m := a.Analyze(r.Text)
		for k := range numQualityFlags {
			f := QualityFlags(1 << k)
			if m.QualityFlags&f != 0 && shown[f] < 6 && (os.Getenv("SRC") == "" || os.Getenv("SRC") == r.Source) {
				shown[f]++
				t.Logf("%s [%s] w=%d ce=%.2f cr=%.2f t2=%.2f t3=%.2f t4=%.2f alpha=%.2f: %q", f, r.Source, m.LengthWords, m.CharEntropy, m.CompressionRatio, m.Top2GramFrac, m.Top3GramFrac, m.Top4GramFrac, m.AlphaWordFrac, r.Text[:min(len(r.Text), 1200)])
			}
		}
	}
}
