package curate

import (
	"encoding/json"
	"sort"
	"testing"

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
	return cov / sqrt(vx*vy)
}
