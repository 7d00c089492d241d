package report

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// TestPCA checks the components against a covariance whose eigenvectors
// are known: points spread 10 along (1,1,0)/√2, 1 along (1,-1,0)/√2 and
// 0.1 along z.
func TestPCA(t *testing.T) {
	var x [][]float32
	r := uint64(7)
	next := func() float64 { // uniform in [-1, 1)
		r = r*6364136223846793005 + 1442695040888963407
		return float64(r>>11)/float64(1<<53)*2 - 1
	}
	for range 2000 {
		a, b, c := 10*next(), next(), 0.1*next()
		x = append(x, []float32{float32((a + b) / math.Sqrt2), float32((a - b) / math.Sqrt2), float32(c + 3)})
	}
	proj, explained := pca(x, 2)
	if len(proj) != len(x) || len(proj[0]) != 2 {
		t.Fatalf("projection shape %dx%d", len(proj), len(proj[0]))
	}
	// Variances 100/3, 1/3, 0.01/3: shares 0.9898, 0.0099.
	if math.Abs(explained[0]-0.9898) > 0.005 || math.Abs(explained[1]-0.0099) > 0.002 {
		t.Errorf("explained %v, want about [0.990 0.010]", explained)
	}
	// PC1 is (1,1,0)/√2 with a positive largest coefficient: a point's
	// first coordinate is (x+y)/√2 minus the mean's.
	var mx, my float64
	for _, p := range x {
		mx += float64(p[0])
		my += float64(p[1])
	}
	mx, my = mx/float64(len(x)), my/float64(len(x))
	for i := 0; i < len(x); i += 97 {
		want := (float64(x[i][0]) - mx + float64(x[i][1]) - my) / math.Sqrt2
		if math.Abs(proj[i][0]-want) > 0.05 {
			t.Fatalf("point %d: PC1 %v, want %v", i, proj[i][0], want)
		}
	}
	if p, e := pca(nil, 2); p != nil || e != nil {
		t.Error("no rows: want nothing")
	}
}

func TestNiceRange(t *testing.T) {
	for _, tc := range []struct {
		lo, hi         float64
		wantLo, wantHi float64
		ticks          int
	}{
		{0, 97, 0, 100, 6},
		{0.013, 0.87, 0, 1, 6},
		{-0.47, 0.49, -0.6, 0.6, 7},
		{5, 5, 4.4, 5.6, 7},
		{0, 0, -1, 1, 5},
		{math.NaN(), 1, 0, 1, 6},
	} {
		lo, hi, ticks := niceRange(tc.lo, tc.hi, 5)
		if math.Abs(lo-tc.wantLo) > 1e-9 || math.Abs(hi-tc.wantHi) > 1e-9 || len(ticks) != tc.ticks {
			t.Errorf("niceRange(%v, %v) = %v, %v, %v; want %v, %v and %d ticks", tc.lo, tc.hi, lo, hi, ticks, tc.wantLo, tc.wantHi, tc.ticks)
		}
	}
	if _, _, ticks := niceRangeMin(0, 2, 5, 1); fmt.Sprint(ticks) != "[0 1 2]" {
		t.Errorf("whole-number ticks %v", ticks)
	}
}

func TestFormatNum(t *testing.T) {
	for _, tc := range []struct {
		v, step float64
		pct     bool
		want    string
	}{
		{1500, 500, false, "1500"},
		{20000, 5000, false, "20k"},
		{2500000, 500000, false, "2.5M"},
		{0.25, 0.05, true, "25%"},
		{0.125, 0.025, true, "12.5%"},
		{-1e-17, 0.2, false, "0.0"},
		{0.001, 0.0005, false, "1.0e-03"},
		{0.0015, 0.0005, false, "1.5e-03"},
		{0.3, 0.1, false, "0.3"},
	} {
		if got := formatNum(tc.v, tc.step, tc.pct); got != tc.want {
			t.Errorf("formatNum(%v, %v, %v) = %q, want %q", tc.v, tc.step, tc.pct, got, tc.want)
		}
	}
}

// TestSampleCurated: the sample takes an equal share of each domain, a
// small domain gives all it has and the rest goes to the others; only
// committed windows count; the same seed gives the same sample.
func TestSampleCurated(t *testing.T) {
	ctx := context.Background()
	store := lake.NewMem()
	put := func(window int64, domain string, n int, first int64) {
		var rows []schemas.Curated
		for i := range n {
			rows = append(rows, schemas.Curated{Topic: "t", Offset: first + int64(i), Domain: domain, Text: fmt.Sprintf("%s %d", domain, i)})
		}
		data, err := lake.EncodeRows(schemas.TableCurated, schemas.CuratedVersion, rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, fmt.Sprintf("curated/%012d.parquet", window), data); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "a", 5, 0)
	put(2, "b", 100, 100)
	put(3, "c", 100, 200)
	put(4, "d", 100, 300) // not committed
	got, err := sampleCurated(ctx, store, 3, 45, 1)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, s := range got {
		counts[s.domain]++
	}
	if len(got) != 45 || counts["a"] != 5 || counts["b"] != 20 || counts["c"] != 20 || counts["d"] != 0 {
		t.Errorf("sample of 45: %v", counts)
	}
	again, _ := sampleCurated(ctx, store, 3, 45, 1)
	other, _ := sampleCurated(ctx, store, 3, 45, 2)
	if fmt.Sprint(again) != fmt.Sprint(got) || fmt.Sprint(other) == fmt.Sprint(got) {
		t.Error("the sample does not depend on the seed alone")
	}
}
