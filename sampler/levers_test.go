package sampler

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// markTargeted writes the marker curate leaves in a lake curated with a
// target sample.
func markTargeted(tb testing.TB, store lake.Store) {
	tb.Helper()
	if err := store.Put(context.Background(), "_curate/target.json",
		[]byte(`{"version":1,"file":"target.jsonl","texts":100,"sha256":"00","fitted_at":"2026-01-01T00:00:00Z"}`)); err != nil {
		tb.Fatal(err)
	}
}

// domainShares draws n batches and returns each domain's share of the
// fresh examples.
func domainShares(tb testing.TB, s *Sampler, n int) (map[string]float64, float64) {
	tb.Helper()
	got := map[string]float64{}
	total := 0.0
	for range n {
		for _, e := range next(tb, s).Examples {
			got[e.Domain]++
			total++
		}
	}
	for d := range got {
		got[d] /= total
	}
	return got, total
}

// TestTargetMixture: on a lake curated with a target sample, each record
// counts exp(β × target_similarity) in its domain's size; without the
// marker, or with the weight off, the mixture is the plain one.
func TestTargetMixture(t *testing.T) {
	shared, rows := sharedLake(t)
	last, err := curate.CommittedWindow(context.Background(), shared)
	if err != nil {
		t.Fatal(err)
	}
	counts, mass := map[string]float64{}, map[string]float64{}
	const beta = 1.5
	for _, r := range rows {
		counts[r.Domain]++
		mass[r.Domain] += math.Exp(beta * math.Max(-8, math.Min(8, float64(r.TargetSimilarity))))
	}
	for _, c := range []struct {
		name     string
		marked   bool
		weight   float64
		want     map[string]float64
		targeted bool
	}{
		{"targeted", true, beta, mass, true},
		{"weight off", true, -1, counts, false},
		{"no target", false, beta, counts, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := lake.NewMem()
			copyWindows(t, shared, store, last)
			if c.marked {
				markTargeted(t, store)
			}
			cfg := Config{Seed: 3, Pacing: PacingNone, ReplayRatio: -1, Strength: -1, Negatives: -1, TargetWeight: c.weight, NoveltyBoost: -1}
			s := newSampler(t, cfg, store)
			got, n := domainShares(t, s, 40)
			// Within a domain, records are drawn in proportion to their
			// capped weights: the drawn records are more like the target
			// than their domain's average when targeted, not otherwise.
			sim := map[string]float32{}
			var domMean float64
			var domN int
			for i := range rows {
				sim[rowKey(&rows[i])] = rows[i].TargetSimilarity
				if rows[i].Domain == "lexicon" {
					domMean += float64(rows[i].TargetSimilarity)
					domN++
				}
			}
			domMean /= float64(domN)
			var drawn float64
			var drawnN int
			for range 20 {
				for _, e := range next(t, s).Examples {
					if e.Domain == "lexicon" {
						drawn += float64(sim[key(&e)])
						drawnN++
					}
				}
			}
			drawn /= float64(drawnN)
			t.Logf("lexicon: mean target similarity %.3f, of the drawn records %.3f", domMean, drawn)
			if lift := drawn - domMean; c.targeted != (lift > 0.1) {
				t.Errorf("lexicon: drawn records' mean target similarity %.3f against the domain's %.3f (targeted %v)", drawn, domMean, c.targeted)
			}
			var total float64
			for _, v := range c.want {
				total += v
			}
			st := s.Status()
			if st.Targeted != c.targeted {
				t.Errorf("status targeted %v, want %v", st.Targeted, c.targeted)
			}
			for d, v := range c.want {
				p := v / total
				tol := 0.01 + 4*math.Sqrt(p*(1-p)/n)
				if q := got[d]; math.Abs(q-p) > tol {
					t.Errorf("domain %s: share %.4f, want %.4f ± %.4f", d, q, p, tol)
				}
				if math.Abs(st.Mixture[d]-p) > 1e-9 {
					t.Errorf("domain %s: status mixture %.6f, want %.6f", d, st.Mixture[d], p)
				}
				if b := counts[d] / float64(len(rows)); math.Abs(st.BaseMixture[d]-b) > 1e-9 {
					t.Errorf("domain %s: status base mixture %.6f, want %.6f", d, st.BaseMixture[d], b)
				}
			}
		})
	}
}

// TestTargetMarkerLater: a marker that appears after windows were loaded
// (the sampler started before curate fitted its target) reweighs the
// records already held.
func TestTargetMarkerLater(t *testing.T) {
	shared, _ := sharedLake(t)
	store := lake.NewMem()
	copyWindows(t, shared, store, 1)
	cfg := Config{Seed: 3, Pacing: PacingNone, ReplayRatio: -1, Strength: -1, Negatives: -1, Poll: 1}
	cfg.SetDefaults()
	s := newSampler(t, cfg, store)
	next(t, s)
	if s.Status().Targeted {
		t.Fatal("targeted before the marker")
	}
	markTargeted(t, store)
	last, err := curate.CommittedWindow(context.Background(), shared)
	if err != nil {
		t.Fatal(err)
	}
	copyWindowRange(t, shared, store, 2, last)
	for i := 0; !s.Status().Targeted || s.Status().Window < last; i++ {
		if i > 2000 {
			t.Fatalf("the sampler never took in the marker and windows: %+v", s.Status())
		}
		next(t, s)
	}
	// Every held record's weight counts: the domain masses match a
	// fresh sampler that saw the marker from the start.
	fresh := newSampler(t, cfg, store)
	next(t, fresh)
	for d, p := range fresh.Status().BaseMixture {
		if q := s.Status().BaseMixture[d]; math.Abs(p-q) > 1e-9 {
			t.Fatalf("domain %s: base mixture %v, fresh sampler %v", d, q, p)
		}
	}
	for _, d := range s.order {
		var want float64
		for _, q := range d.queues {
			if q == nil {
				continue
			}
			for _, e := range q.members {
				if !e.r.dead {
					want += s.targetWeightOf(e.r)
				}
			}
		}
		if got := d.mass(0, true); math.Abs(got-want) > 1e-6*want {
			t.Errorf("domain %s: mass %v, want %v", d.name, got, want)
		}
	}
}

// putWindow writes rows as curated window w with the given plan, and moves
// the commit point to w.
func putWindow(tb testing.TB, store lake.Store, w int64, rows []schemas.Curated, plan []byte) {
	tb.Helper()
	ctx := context.Background()
	data, err := lake.EncodeRows(schemas.TableCurated, schemas.CuratedVersion, rows)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range map[string][]byte{
		curate.WindowKey(schemas.TableCurated, w):    data,
		curate.WindowKey(schemas.TableCurriculum, w): plan,
		fmt.Sprintf("_curate/state/%012d.state", w):  []byte("x"),
	} {
		if err := store.Put(ctx, k, v); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestNoveltyBoost: a domain that appears after training started is
// sampled above its mixture share until its recent share catches up, then
// at its share; without the boost it gets its share from the start.
func TestNoveltyBoost(t *testing.T) {
	shared, rows := sharedLake(t)
	plan, err := shared.Get(context.Background(), curate.WindowKey(schemas.TableCurriculum, 1))
	if err != nil {
		t.Fatal(err)
	}
	const late = "religion"
	var old, arrived []schemas.Curated
	for _, r := range rows {
		if r.Domain == late {
			arrived = append(arrived, r)
		} else {
			old = append(old, r)
		}
	}
	if len(arrived) < 500 {
		t.Fatalf("%d %s records in the shared lake", len(arrived), late)
	}
	share := func(boost float64) (first, later, base float64) {
		store := lake.NewMem()
		putWindow(t, store, 1, old, plan)
		cfg := Config{Seed: 9, BatchSize: 128, Pacing: PacingNone, ReplayRatio: -1, Strength: -1, Negatives: -1,
			NoveltyBoost: boost, NoveltyExamples: 20_000, Poll: 1}
		s := newSampler(t, cfg, store)
		for range 200 { // 25,600 examples of the old domains
			next(t, s)
		}
		putWindow(t, store, 2, arrived, plan)
		for i := 0; s.Status().Window < 2; i++ {
			if i > 2000 {
				t.Fatal("the new window never arrived")
			}
			next(t, s)
		}
		base = s.Status().BaseMixture[late]
		got, _ := domainShares(t, s, 40) // 5,120 examples
		first = got[late]
		for range 400 {
			next(t, s)
		}
		got, _ = domainShares(t, s, 40)
		return first, got[late], base
	}
	offFirst, offLater, base := share(-1)
	onFirst, onLater, _ := share(3)
	t.Logf("%s: base share %.3f; off %.3f then %.3f; boost 3: %.3f then %.3f", late, base, offFirst, offLater, onFirst, onLater)
	tol := 0.02 + 4*math.Sqrt(base*(1-base)/5120)
	if math.Abs(offFirst-base) > tol || math.Abs(offLater-base) > tol {
		t.Errorf("without the boost the new domain's share is %.3f then %.3f, want %.3f", offFirst, offLater, base)
	}
	if onFirst < base*1.8 {
		t.Errorf("with the boost the new domain's first share is %.3f, want well above its mixture share %.3f", onFirst, base)
	}
	if math.Abs(onLater-base) > tol+0.02 {
		t.Errorf("once caught up the boosted domain's share is %.3f, want %.3f", onLater, base)
	}
}
