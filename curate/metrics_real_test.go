package curate

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// realRecord is one record of the real stream.
type realRecord struct {
	Text   string `json:"text"`
	Source string `json:"source"`
	Domain string `json:"domain"`
}

// realRecords decodes the first n records of the real stream (skipping, or
// failing under CI=true, when it is absent).
func realRecords(t testing.TB, n int) []realRecord {
	t.Helper()
	lines := realtest.CorpusLines(t, n)
	out := make([]realRecord, 0, len(lines))
	for i, l := range lines {
		var r realRecord
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		out = append(out, r)
	}
	return out
}

// ranks returns the ranks of xs (1-based, ties sharing their mean rank).
func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && xs[idx[j+1]] == xs[idx[i]] {
			j++
		}
		mean := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = mean
		}
		i = j + 1
	}
	return r
}

// spearman returns Spearman's rank correlation of xs and ys.
func spearman(xs, ys []float64) float64 {
	return pearson(ranks(xs), ranks(ys))
}

func pearson(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var cov, vx, vy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		cov += dx * dy
		vx += dx * dx
		vy += dy * dy
	}
	if vx == 0 || vy == 0 {
		return 0
	}
	return cov / math.Sqrt(vx*vy)
}

// realCount is the number of records the real-data tests read:
// CURATE_REAL_RECORDS when set (0 for the whole stream), else 20000.
func realCount() int {
	if s := os.Getenv("CURATE_REAL_RECORDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return 20000
}

// TestMetricsRealStream analyses the real stream: per-source means and
// quality-flag rates are logged (go test -run RealStream -v), and sanity
// checks hold: orderings between domains that any reader of the sources
// expects, plausible PII and flag rates, a language guess of English for
// an English stream.
func TestMetricsRealStream(t *testing.T) {
	recs := realRecords(t, realCount())
	a := NewAnalyzer(MetricsConfig{})
	type agg struct {
		n                                                        int
		chars, words, charEnt, wordEnt, ratio, alpha, stop, top2 float64
		flags                                                    [numQualityFlags]int
		flagged, pii, en                                         int
	}
	by := map[string]*agg{}
	total := &agg{}
	for _, r := range recs {
		m := a.Analyze(r.Text)
		checkInvariants(t, r.Text, m)
		for _, g := range []*agg{by[r.Source], total} {
			if g == nil {
				g = &agg{}
				by[r.Source] = g
			}
			g.n++
			g.chars += float64(m.LengthChars)
			g.words += float64(m.LengthWords)
			g.charEnt += float64(m.CharEntropy)
			g.wordEnt += float64(m.WordEntropy)
			g.ratio += float64(m.CompressionRatio)
			g.alpha += float64(m.AlphaWordFrac)
			g.stop += float64(m.StopWords)
			g.top2 += float64(m.Top2GramFrac)
			for k := range numQualityFlags {
				if m.QualityFlags&(1<<k) != 0 {
					g.flags[k]++
				}
			}
			if m.QualityFlags != 0 {
				g.flagged++
			}
			if m.PII != 0 {
				g.pii++
			}
			if m.Lang == "en" {
				g.en++
			}
		}
	}
	srcs := slices.Sorted(maps.Keys(by))
	pct := func(c, n int) string { return strconv.FormatFloat(100*float64(c)/float64(n), 'f', 2, 64) + "%" }
	t.Logf("%-12s %7s %6s %6s %5s %5s %5s %5s %5s %5s %7s %7s %7s", "source", "records", "chars", "words", "charH", "wordH", "ratio", "alpha", "stops", "top2", "flagged", "pii", "en")
	for _, s := range append(srcs, "ALL") {
		g := by[s]
		if s == "ALL" {
			g = total
		}
		n := float64(g.n)
		t.Logf("%-12s %7d %6.0f %6.1f %5.2f %5.2f %5.2f %5.2f %5.1f %5.3f %7s %7s %7s", s, g.n, g.chars/n, g.words/n, g.charEnt/n, g.wordEnt/n,
			g.ratio/n, g.alpha/n, g.stop/n, g.top2/n, pct(g.flagged, g.n), pct(g.pii, g.n), pct(g.en, g.n))
	}
	t.Logf("quality-flag rates per source (flags with no record are left out):")
	for _, s := range append(srcs, "ALL") {
		g := by[s]
		if s == "ALL" {
			g = total
		}
		var parts []string
		for k, c := range g.flags {
			if c > 0 {
				parts = append(parts, qualityNames[k]+" "+pct(c, g.n))
			}
		}
		t.Logf("  %-12s %s", s, strings.Join(parts, ", "))
	}

	mean := func(src string, f func(*agg) float64) float64 {
		g := by[src]
		if g == nil || g.n < 50 {
			t.Skipf("too few %s records in the first %d", src, len(recs))
		}
		return f(g) / float64(g.n)
	}
	charH := func(g *agg) float64 { return g.charEnt }
	wordH := func(g *agg) float64 { return g.wordEnt }
	ratio := func(g *agg) float64 { return g.ratio }
	// Prose paragraphs use more distinct words than dictionary glosses.
	if f, l := mean("austen", wordH), mean("wordnet", wordH); f <= l+1 {
		t.Errorf("word entropy: fiction (austen) %.2f not well above lexicon (wordnet) %.2f", f, l)
	}
	// Package descriptions (identifiers, digits, punctuation) spread over
	// more characters than Bible verses.
	if d, b := mean("debian", charH), mean("bible-KJV", charH); d <= b {
		t.Errorf("char entropy: debian %.2f not above bible-KJV %.2f", d, b)
	}
	// Long State of the Union passages compress better than short glosses.
	if s, w := mean("sotu", ratio), mean("wordnet", ratio); s <= w {
		t.Errorf("compression ratio: sotu %.2f not above wordnet %.2f", s, w)
	}
	// The stream is English, and mostly clean.
	if f := float64(total.en) / float64(total.n); f < 0.85 {
		t.Errorf("only %.1f%% guessed English", 100*f)
	}
	if f := float64(total.flagged) / float64(total.n); f > 0.02 {
		t.Errorf("%.2f%% of a clean stream flagged", 100*f)
	}
	// PII is rare here (FOLDOC entries give contact addresses).
	if f := float64(total.pii) / float64(total.n); f > 0.01 {
		t.Errorf("%.2f%% of records with PII: implausible for this stream", 100*f)
	}
}

// TestCompressionEstimateRealCorrelation checks the compression estimate
// against real zstd (klauspost/compress, SpeedDefault, as the curate stage
// would use) on the real stream: Spearman rank correlation of the ratio and
// of the size, overall and within bands of similar length (where length no
// longer explains the ratio), and the mean relative error of the size.
func TestCompressionEstimateRealCorrelation(t *testing.T) {
	recs := realRecords(t, realCount())
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		t.Fatal(err)
	}
	var est, real, estR, realR []float64
	var relErr float64
	exact, raw := 0, 0
	var buf []byte
	for _, r := range recs {
		buf = enc.EncodeAll([]byte(r.Text), buf[:0])
		z, e := len(buf), EstimateCompressedSize(r.Text)
		est, real = append(est, float64(e)), append(real, float64(z))
		estR, realR = append(estR, float64(len(r.Text))/float64(e)), append(realR, float64(len(r.Text))/float64(z))
		relErr += math.Abs(float64(e-z)) / float64(z)
		if z == len(r.Text)+13 && len(r.Text) < 256 { // stored raw
			raw++
			if e == z {
				exact++
			}
		}
	}
	n := float64(len(recs))
	rhoRatio, rhoSize := spearman(estR, realR), spearman(est, real)
	t.Logf("%d records: Spearman ratio %.4f, size %.4f; mean relative size error %.3f; %d of %d raw-stored texts exact",
		len(recs), rhoRatio, rhoSize, relErr/n, exact, raw)
	if rhoRatio < 0.9 || rhoSize < 0.9 {
		t.Errorf("Spearman ratio %.3f size %.3f, want both > 0.9", rhoRatio, rhoSize)
	}
	if relErr/n > 0.15 {
		t.Errorf("mean relative error %.3f, want < 0.15", relErr/n)
	}
	if raw > 0 && float64(exact) < 0.95*float64(raw) {
		t.Errorf("only %d of %d texts zstd stores raw estimated exactly", exact, raw)
	}
	for _, band := range [][2]int{{0, 100}, {100, 300}, {300, 1000}, {1000, 1 << 30}} {
		var e, r []float64
		for i, rec := range recs {
			if len(rec.Text) >= band[0] && len(rec.Text) < band[1] {
				e, r = append(e, estR[i]), append(r, realR[i])
			}
		}
		if len(e) < 100 {
			continue
		}
		rho := spearman(e, r)
		t.Logf("  length %d-%d bytes: %d records, Spearman ratio %.4f", band[0], band[1], len(e), rho)
		if rho < 0.8 {
			t.Errorf("length %d-%d: Spearman %.3f, want > 0.8", band[0], band[1], rho)
		}
	}
}

// TestTargetRealStream fits a target on Bible verses and streams the rest:
// held-out verses must score above everything else (AUC), and without a
// target, typicality must rank the stream's bulk above its oddities.
func TestTargetRealStream(t *testing.T) {
	recs := realRecords(t, realCount())
	isBible := func(r realRecord) bool { return strings.HasPrefix(r.Source, "bible-") }
	var sample []string
	var rest []realRecord
	for _, r := range recs {
		if isBible(r) && len(sample) < 1000 {
			sample = append(sample, r.Text)
		} else {
			rest = append(rest, r)
		}
	}
	tg := NewTarget(0)
	tg.FitTarget(sample)
	plain := NewTarget(0)
	a := NewAnalyzer(MetricsConfig{})
	var pos, neg []float64
	bySrc := map[string][2]float64{}
	for _, r := range rest {
		a.Analyze(r.Text)
		f := a.Features()
		s := float64(tg.SimilarityFeatures(f))
		tg.ObserveFeatures(f)
		typ := plain.SimilarityFeatures(f)
		plain.ObserveFeatures(f)
		if isBible(r) {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
		v := bySrc[r.Source]
		bySrc[r.Source] = [2]float64{v[0] + s, v[1] + float64(typ)}
	}
	counts := map[string]int{}
	for _, r := range rest {
		counts[r.Source]++
	}
	for _, s := range slices.Sorted(maps.Keys(bySrc)) {
		v := bySrc[s]
		t.Logf("%-12s mean similarity to Bible target %+.3f, typicality (no target) %+.3f", s, v[0]/float64(counts[s]), v[1]/float64(counts[s]))
	}
	auc := aucOf(pos, neg)
	t.Logf("AUC of held-out Bible verses against the rest: %.4f (%d vs %d)", auc, len(pos), len(neg))
	if auc < 0.95 {
		t.Errorf("AUC %.3f, want > 0.95", auc)
	}
}

// aucOf returns the probability that a random positive scores above a
// random negative (ties count half), from the ranks.
func aucOf(pos, neg []float64) float64 {
	all := append(append([]float64(nil), pos...), neg...)
	r := ranks(all)
	var sum float64
	for i := range pos {
		sum += r[i]
	}
	np, nn := float64(len(pos)), float64(len(neg))
	return (sum - np*(np+1)/2) / (np * nn)
}
