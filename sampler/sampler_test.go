package sampler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

func batches(tb testing.TB, s Source, n int) []*Batch {
	tb.Helper()
	out := make([]*Batch, n)
	for i := range out {
		out[i] = next(tb, s)
	}
	return out
}

func key(e *Example) string { return fmt.Sprintf("%s/%d/%d", e.Topic, e.Partition, e.Offset) }

func rowKey(r *schemas.Curated) string {
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}

// resumeConfig exercises everything a cursor must carry: eviction from the
// pool, replay, negatives, curriculum stages opening, passes ending.
var resumeConfig = Config{
	Seed: 7, BatchSize: 128, PoolRecords: 1500, ReplayRatio: 0.2, ReplayPerDomain: 60,
	Negatives: 16, NegativePool: 300, Pacing: curate.PacingLinear, CurriculumExamples: 2000,
	NoveltyBoost: 2, NoveltyExamples: 1000, // the recent shares are restored too
}

func TestDeterminism(t *testing.T) {
	store, _ := sharedLake(t)
	a := batches(t, newSampler(t, resumeConfig, store), 25)
	b := batches(t, newSampler(t, resumeConfig, store), 25)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two samplers with the same seed made different batches")
	}
	other := resumeConfig
	other.Seed = 8
	c := batches(t, newSampler(t, other, store), 2)
	if reflect.DeepEqual(a[0], c[0]) || reflect.DeepEqual(a[1], c[1]) {
		t.Fatal("another seed made the same batches")
	}
}

func TestCursorResume(t *testing.T) {
	store, _ := sharedLake(t)
	const total = 40
	whole := newSampler(t, resumeConfig, store)
	want := batches(t, whole, total)
	if want[total-1].Epoch < 1 || want[total-1].Stage != 3 {
		t.Fatalf("the run does not end a pass and open every stage: epoch %d, stage %d", want[total-1].Epoch, want[total-1].Stage)
	}
	for _, at := range []int{0, 1, 9, 33} {
		t.Run(fmt.Sprint("at=", at), func(t *testing.T) {
			s := newSampler(t, resumeConfig, store)
			got := batches(t, s, at)
			cur, err := s.Cursor()
			if err != nil {
				t.Fatal(err)
			}
			r := newSampler(t, resumeConfig, store)
			if err := r.Restore(cur); err != nil {
				t.Fatal(err)
			}
			again, err := r.Cursor()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cur, again) {
				t.Error("the cursor of a restored sampler differs from the one it was restored from")
			}
			got = append(got, batches(t, r, total-at)...)
			for i := range want {
				if !reflect.DeepEqual(want[i], got[i]) {
					t.Fatalf("batch %d differs after a restore at %d", i, at)
				}
			}
			st, ws := r.Status(), whole.Status()
			if !reflect.DeepEqual(st, ws) {
				t.Errorf("restored status %+v, original %+v", st, ws)
			}
		})
	}
}

func TestRestoreErrors(t *testing.T) {
	store, _ := sharedLake(t)
	s := newSampler(t, resumeConfig, store)
	batches(t, s, 3)
	cur, err := s.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(cur); !errors.Is(err, ErrRestore) {
		t.Errorf("Restore after Next: %v, want ErrRestore", err)
	}
	flipped := bytes.Clone(cur)
	flipped[len(flipped)/2] ^= 1
	for name, c := range map[string][]byte{
		"empty": nil, "garbage": []byte("not a cursor at all"), "flipped": flipped, "truncated": cur[:len(cur)-5],
	} {
		if err := newSampler(t, resumeConfig, store).Restore(c); !errors.Is(err, ErrCursor) {
			t.Errorf("%s: %v, want ErrCursor", name, err)
		}
	}
	// A lake that holds fewer windows than the cursor loaded.
	small := lake.NewMem()
	copyWindows(t, store, small, 2)
	r := newSampler(t, resumeConfig, small)
	if err := r.Restore(cur); !errors.Is(err, ErrCursor) {
		t.Fatalf("a cursor of 4 windows on a lake of 2: %v, want ErrCursor", err)
	}
	// The failed Restore leaves a sampler that starts fresh.
	if b := next(t, r); b.Seq != 0 || r.Status().Window != 2 {
		t.Errorf("after a failed Restore: batch %d, window %d", b.Seq, r.Status().Window)
	}
}

// copyWindows copies the curate commit markers and tables of windows
// 1..n.
func copyWindows(tb testing.TB, from, to lake.Store, n int64) {
	tb.Helper()
	copyWindowRange(tb, from, to, 1, n)
}

// copyWindowRange copies windows first..last and moves the commit point to
// last.
func copyWindowRange(tb testing.TB, from, to lake.Store, first, last int64) {
	tb.Helper()
	ctx := context.Background()
	for w := first; w <= last; w++ {
		for _, k := range []string{curate.WindowKey(schemas.TableCurated, w), curate.WindowKey(schemas.TableCurriculum, w)} {
			data, err := from.Get(ctx, k)
			if err != nil {
				tb.Fatal(err)
			}
			if err := to.Put(ctx, k, data); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := to.Put(ctx, fmt.Sprintf("_curate/state/%012d.state", last), []byte("x")); err != nil {
		tb.Fatal(err)
	}
}

func TestFollowsNewWindows(t *testing.T) {
	lines := realtest.CorpusLines(t, 8000)
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	curatetest.WriteRaw(t, store, lines[:4000], 2, 2000)
	curatetest.Curate(t, dir, store, 2000)
	s := newSampler(t, Config{Seed: 1, BatchSize: 64, Poll: 10 * time.Millisecond, Pacing: PacingNone}, store)
	first := batches(t, s, 3)
	if w := s.Status().Window; w != 2 {
		t.Fatalf("window %d loaded, want 2", w)
	}
	old := map[string]bool{}
	for _, r := range allRows(t, store) {
		old[rowKey(&r)] = true
	}
	for _, b := range first {
		for i := range b.Examples {
			if !old[key(&b.Examples[i])] {
				t.Fatalf("example %s is not in the lake", key(&b.Examples[i]))
			}
		}
	}
	// More records arrive and are curated while the sampler runs.
	done := make(chan struct{})
	go func() {
		defer close(done)
		curatetest.WriteRaw(t, store, lines, 2, 2000)
		curatetest.Curate(t, dir, store, 2000)
	}()
	deadline := time.Now().Add(60 * time.Second)
	newSeen := false
	for !newSeen {
		if time.Now().After(deadline) {
			t.Fatalf("no record of the new windows within 60 s; status %+v", s.Status())
		}
		b := next(t, s)
		for i := range b.Examples {
			if !old[key(&b.Examples[i])] {
				newSeen = true
			}
		}
		select {
		case <-done:
		default:
			time.Sleep(5 * time.Millisecond)
		}
	}
	<-done
	committed, err := curate.CommittedWindow(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	for s.Status().Window < committed {
		if time.Now().After(deadline) {
			t.Fatalf("window %d loaded, %d committed", s.Status().Window, committed)
		}
		next(t, s)
	}
	// A curated file above the commit point (as a crash leaves it) is
	// never read.
	rows := allRows(t, store)[:50]
	for i := range rows {
		rows[i].Domain = "uncommitted"
	}
	data, err := lake.EncodeRows(schemas.TableCurated, schemas.CuratedVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), curate.WindowKey(schemas.TableCurated, committed+1), data); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		b := next(t, s)
		for i := range b.Examples {
			if b.Examples[i].Domain == "uncommitted" {
				t.Fatal("a record of an uncommitted window was sampled")
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if w := s.Status().Window; w != committed {
		t.Fatalf("window %d loaded, %d committed", w, committed)
	}
}

func TestCurriculum(t *testing.T) {
	store, rows := sharedLake(t)
	stages := map[int32]int{}
	for _, r := range rows {
		stages[r.CurriculumStage]++
	}
	if len(stages) != 4 {
		t.Fatalf("stages of the lake: %v, want 4", stages)
	}
	for _, pacing := range []string{curate.PacingLinear, curate.PacingRoot, curate.PacingStep} {
		t.Run("pacing="+pacing, func(t *testing.T) {
			cfg := Config{Seed: 3, BatchSize: 128, Pacing: pacing, CurriculumExamples: 30 * 128, ReplayRatio: 0.2, Strength: -1}
			s := newSampler(t, cfg, store)
			var prev *Batch
			seen := map[int32]bool{}
			for i := range 40 {
				b := next(t, s)
				for _, e := range b.Examples {
					if e.Stage > b.Stage {
						t.Fatalf("batch %d (stage %d) holds a record of stage %d", i, b.Stage, e.Stage)
					}
					seen[e.Stage] = true
				}
				if prev != nil && (b.Stage < prev.Stage || b.Competence < prev.Competence) {
					t.Fatalf("batch %d: stage %d competence %v after %d %v", i, b.Stage, b.Competence, prev.Stage, prev.Competence)
				}
				tt := float64(i*cfg.BatchSize) / float64(cfg.CurriculumExamples)
				if pacing == curate.PacingStep {
					if want := int32(min(3, math.Floor(tt*4))); b.Stage != want {
						t.Fatalf("step pacing, t=%.3f: stage %d, want %d", tt, b.Stage, want)
					}
				}
				if i == 0 && b.Stage >= 3 {
					t.Fatalf("the first batch opens stage %d", b.Stage)
				}
				if tt >= 1 && (b.Stage != 3 || b.Competence != 1) {
					t.Fatalf("t=%.2f: stage %d competence %v, want all open", tt, b.Stage, b.Competence)
				}
				prev = b
			}
			if !seen[3] || !seen[0] {
				t.Errorf("stages sampled: %v", seen)
			}
		})
	}
	s := newSampler(t, Config{Seed: 3, Pacing: PacingNone, Strength: -1}, store)
	if b := next(t, s); b.Stage != 3 || b.Competence != 1 {
		t.Errorf("pacing none: stage %d competence %v", b.Stage, b.Competence)
	}
}

func TestMixture(t *testing.T) {
	store, rows := sharedLake(t)
	counts := map[string]float64{}
	for _, r := range rows {
		counts[r.Domain]++
	}
	cases := []struct {
		name   string
		cfg    Config
		weight func(d string) float64
	}{
		{"proportional", Config{Mixture: MixtureProportional}, func(d string) float64 { return counts[d] }},
		{"temperature", Config{Mixture: MixtureTemperature, Temperature: 3}, func(d string) float64 { return math.Pow(counts[d], 1.0/3) }},
		{"fixed", Config{Mixture: MixtureFixed, Weights: map[string]float64{"lexicon": 1, "religion": 2, "*": 0.25}}, func(d string) float64 {
			switch d {
			case "lexicon":
				return 1
			case "religion":
				return 2
			}
			return 0.25
		}},
	}
	for _, c := range cases {
		t.Run("mixture="+c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Seed, cfg.Pacing, cfg.ReplayRatio, cfg.Strength, cfg.Negatives = 5, PacingNone, -1, -1, -1
			s := newSampler(t, cfg, store)
			got := map[string]float64{}
			n := 0.0
			for range 40 {
				for _, e := range next(t, s).Examples {
					got[e.Domain]++
					n++
				}
			}
			var total float64
			for d := range counts {
				total += c.weight(d)
			}
			for d := range counts {
				p := c.weight(d) / total
				tol := 0.01 + 4*math.Sqrt(p*(1-p)/n)
				if q := got[d] / n; math.Abs(q-p) > tol {
					t.Errorf("domain %s: share %.4f, want %.4f ± %.4f", d, q, p, tol)
				}
			}
		})
	}
}

func TestReplay(t *testing.T) {
	store, rows := sharedLake(t)
	const pool, quota = 2000, 40
	cfg := Config{Seed: 9, BatchSize: 200, PoolRecords: pool, ReplayRatio: 0.25, ReplayPerDomain: quota, Pacing: PacingNone, Strength: -1}
	s := newSampler(t, cfg, store)
	inPool := map[string]bool{}
	for _, r := range rows[len(rows)-pool:] {
		inPool[rowKey(&r)] = true
	}
	perDomain := map[string]map[string]bool{}
	outside := 0
	for range 30 {
		b := next(t, s)
		replayed := 0
		keys := map[string]bool{}
		for _, e := range b.Examples {
			k := key(&e)
			if !e.Replay {
				if !inPool[k] {
					t.Fatalf("fresh example %s is not in the pool", k)
				}
				continue
			}
			replayed++
			if keys[k] {
				t.Fatalf("replayed example %s twice in a batch", k)
			}
			keys[k] = true
			if perDomain[e.Domain] == nil {
				perDomain[e.Domain] = map[string]bool{}
			}
			perDomain[e.Domain][k] = true
			if !inPool[k] {
				outside++
			}
		}
		if replayed != 50 {
			t.Fatalf("batch %d: %d replayed examples, want 50", b.Seq, replayed)
		}
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Domain]++
	}
	want := 0
	for d, n := range counts {
		want += min(n, quota)
		if len(perDomain[d]) > quota {
			t.Errorf("domain %s: %d distinct replayed records, quota %d", d, len(perDomain[d]), quota)
		}
		if len(perDomain[d]) == 0 {
			t.Errorf("domain %s never replayed", d)
		}
	}
	if got := s.Status().ReservoirRecords; got != int64(want) {
		t.Errorf("reservoir holds %d records, want %d", got, want)
	}
	if outside == 0 {
		t.Error("no replayed record came from outside the pool")
	}
}

// reconstruct puts the masked words back into a view.
func reconstruct(view string, masked []string, token string) []string {
	w := strings.Fields(view)
	j := 0
	for i := range w {
		if w[i] == token && j < len(masked) {
			w[i] = masked[j]
			j++
		}
	}
	return w
}

func isSubsequence(sub, of []string) bool {
	j := 0
	for _, x := range of {
		if j < len(sub) && sub[j] == x {
			j++
		}
	}
	return j == len(sub)
}

func isWindow(sub, of []string) bool {
	for i := 0; i+len(sub) <= len(of); i++ {
		if reflect.DeepEqual(sub, of[i:i+len(sub)]) {
			return true
		}
	}
	return false
}

func TestViews(t *testing.T) {
	store, _ := sharedLake(t)
	cases := []struct {
		name               string
		cfg                Config
		keep, maskShare    float64 // expected shares of the words
		exact, window, sub bool
		minKeep            float64
	}{
		{"mask only", Config{Dropout: -1, CropMin: 1, MaskFraction: 0.3}, 1, 0.3, true, false, false, 1},
		{"crop only", Config{Dropout: -1, MaskFraction: -1, CropMin: 0.5}, 0.75, 0, false, true, false, 0.5},
		{"dropout only", Config{Dropout: 0.3, MaskFraction: -1, CropMin: 1}, 0.7, 0, false, false, true, 0},
		{"half strength", Config{Strength: 0.5, Dropout: 0.3, MaskFraction: 0.3, CropMin: 1}, 0.85, 0.15, false, false, true, 0},
		{"off", Config{Strength: -1}, 1, 0, true, false, false, 1},
		{"defaults", Config{}, 0.8 * 0.9, 0.15, false, false, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Seed, cfg.Pacing, cfg.Views = 11, PacingNone, ViewsAugment
			s := newSampler(t, cfg, store)
			var words, kept, masked float64
			for range 8 {
				for _, e := range next(t, s).Examples {
					orig := strings.Fields(e.Text)
					if int(e.Words) != len(orig) {
						t.Fatalf("words %d, want %d", e.Words, len(orig))
					}
					for _, v := range []struct {
						view   string
						masked []string
					}{{e.ViewA, e.MaskedA}, {e.ViewB, e.MaskedB}} {
						if v.masked != nil && len(v.masked) == 0 {
							t.Fatal("empty non-nil masked list")
						}
						got := reconstruct(v.view, v.masked, DefaultMaskToken)
						switch {
						case c.exact && !reflect.DeepEqual(got, orig):
							t.Fatalf("view %q + %q does not give back %q", v.view, v.masked, e.Text)
						case c.window && !isWindow(got, orig):
							t.Fatalf("view %q is not a window of %q", v.view, e.Text)
						case !isSubsequence(got, orig):
							t.Fatalf("view %q + %q is not a subsequence of %q", v.view, v.masked, e.Text)
						}
						if len(orig) > 1 && len(v.masked) >= len(got) {
							t.Fatalf("view %q masks every word", v.view)
						}
						if len(got) < int(math.Ceil(c.minKeep*float64(len(orig))-1e-9)) && !(c.minKeep == 0) {
							t.Fatalf("view keeps %d of %d words, want >= %.2f", len(got), len(orig), c.minKeep)
						}
						words += float64(len(orig))
						kept += float64(len(got))
						masked += float64(len(v.masked))
					}
				}
			}
			if k := kept / words; math.Abs(k-c.keep) > 0.04 {
				t.Errorf("kept %.3f of the words, want %.2f", k, c.keep)
			}
			if m := masked / kept; math.Abs(m-c.maskShare) > 0.03 {
				t.Errorf("masked %.3f of the kept words, want %.2f", m, c.maskShare)
			}
		})
	}
}

// TestSplitViews: views "split" deal a record's words into two disjoint
// halves, in order, about evenly, neither empty (for two words or more);
// each view's targets are the other view's words.
func TestSplitViews(t *testing.T) {
	store, _ := sharedLake(t)
	s := newSampler(t, Config{Seed: 5, Pacing: PacingNone, Views: ViewsSplit}, store)
	var words, inA float64
	for range 8 {
		for _, e := range next(t, s).Examples {
			orig := strings.Fields(e.Text)
			a, b := strings.Fields(e.ViewA), strings.Fields(e.ViewB)
			if len(orig) < 2 {
				if e.ViewA != e.ViewB {
					t.Fatalf("a record of %d words: views %q and %q", len(orig), e.ViewA, e.ViewB)
				}
				continue
			}
			if len(a) == 0 || len(b) == 0 || len(a)+len(b) != len(orig) {
				t.Fatalf("views %q and %q do not split %q", e.ViewA, e.ViewB, e.Text)
			}
			if !isSubsequence(a, orig) || !isSubsequence(b, orig) {
				t.Fatalf("views %q and %q are not in the order of %q", e.ViewA, e.ViewB, e.Text)
			}
			// Every word of the record is in exactly one view: merging the
			// two subsequences back gives the record's multiset of words.
			count := map[string]int{}
			for _, w := range orig {
				count[w]++
			}
			for _, w := range append(append([]string(nil), a...), b...) {
				count[w]--
			}
			for w, n := range count {
				if n != 0 {
					t.Fatalf("word %q is %d times too often in the views of %q", w, -n, e.Text)
				}
			}
			if !reflect.DeepEqual(e.MaskedA, b) || !reflect.DeepEqual(e.MaskedB, a) {
				t.Fatalf("targets %q / %q are not the other view's words %q / %q", e.MaskedA, e.MaskedB, b, a)
			}
			words += float64(len(orig))
			inA += float64(len(a))
		}
	}
	if f := inA / words; math.Abs(f-0.5) > 0.03 {
		t.Errorf("view A holds %.3f of the words, want about half", f)
	}
}

func TestNegatives(t *testing.T) {
	store, _ := sharedLake(t)
	s := newSampler(t, Config{Seed: 13, BatchSize: 64, Negatives: 48, NegativePool: 2000, Strength: -1}, store)
	var same, all int
	for i := range 20 {
		b := next(t, s)
		if len(b.Negatives) != 48 {
			t.Fatalf("batch %d: %d negatives, want 48", i, len(b.Negatives))
		}
		clusters, domains := map[string]bool{}, map[string]bool{}
		for _, e := range b.Examples {
			clusters[e.ClusterID] = true
			domains[e.Domain] = true
		}
		negs := map[string]bool{}
		for _, n := range b.Negatives {
			if clusters[n.ClusterID] {
				t.Fatalf("batch %d: negative %s shares a cluster with an example", i, n.ClusterID)
			}
			if negs[n.ClusterID] {
				t.Fatalf("batch %d: negative %s twice", i, n.ClusterID)
			}
			negs[n.ClusterID] = true
			if n.Text == "" || n.Domain == "" || n.ViewA != "" {
				t.Fatalf("negative %+v", n)
			}
			if domains[n.Domain] {
				same++
			}
			all++
		}
	}
	if float64(same)/float64(all) < 0.95 {
		t.Errorf("%d of %d negatives share a domain with their batch", same, all)
	}
}

func TestEpochs(t *testing.T) {
	store, rows := sharedLake(t)
	const pool = 3000
	s := newSampler(t, Config{Seed: 17, BatchSize: 250, PoolRecords: pool, Pacing: PacingNone, ReplayRatio: -1, Strength: -1, Negatives: -1}, store)
	size := map[string]int{}
	for _, r := range rows[len(rows)-pool:] {
		size[r.Domain]++
	}
	pass := map[string]map[string]bool{}
	var epoch int64
	for i := range 3 * pool / 250 {
		b := next(t, s)
		if b.Epoch < epoch {
			t.Fatalf("epoch went back from %d to %d", epoch, b.Epoch)
		}
		epoch = b.Epoch
		for _, e := range b.Examples {
			p := pass[e.Domain]
			if p == nil {
				p = map[string]bool{}
				pass[e.Domain] = p
			}
			k := key(&e)
			if len(p) < size[e.Domain] {
				// Within the first pass over the domain no record repeats.
				if p[k] {
					t.Fatalf("batch %d: %s repeated before its domain %s was exhausted (%d of %d)", i, k, e.Domain, len(p), size[e.Domain])
				}
				p[k] = true
			}
		}
	}
	for d, n := range size {
		if len(pass[d]) != n {
			t.Errorf("domain %s: first pass covered %d of %d records", d, len(pass[d]), n)
		}
	}
	if epoch < 2 {
		t.Errorf("after 3 pools' worth of examples: epoch %d, want >= 2", epoch)
	}
}

func TestStatusConcurrent(t *testing.T) {
	store, _ := sharedLake(t)
	s := newSampler(t, Config{Seed: 1, BatchSize: 32, Strength: -1}, store)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = s.Status()
		}
	}()
	batches(t, s, 20)
	<-done
	st := s.Status()
	var sum int64
	for _, v := range st.Domains {
		sum += v
	}
	if st.Batches != 20 || st.Examples != 640 || sum != 640 || st.Window != 4 {
		t.Errorf("status %+v", st)
	}
	if st.Drift.Window != 4 || st.Drift.DomainTV <= 0 || st.Drift.DomainTV > 1 || st.Drift.EntropyPSI <= 0 || st.Drift.LengthPSI <= 0 {
		t.Errorf("drift %+v", st.Drift)
	}
}

func TestConfigValidate(t *testing.T) {
	var good Config
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Config{
		BatchSize: -1, Poll: -time.Second, PoolRecords: -5, Mixture: "zipf", Temperature: -1,
		Pacing: "fast", CurriculumExamples: -1, ReplayRatio: 2, Dropout: 1.5, MaskFraction: 1,
		MaskSpan: 0.5, CropMin: 1.5, MaskToken: "two words", Negatives: 10, NegativePool: -2,
	}
	bad.SetDefaults()
	err := bad.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
	for _, want := range []string{"batch_size", "poll", "pool_records", "mixture", "temperature", "pacing",
		"curriculum_examples", "replay_ratio", "dropout", "mask_fraction", "mask_span", "crop_min", "mask_token",
		"negative_pool", "negatives"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	stray := Config{Weights: map[string]float64{"a": 1}}
	stray.SetDefaults()
	if err := stray.Validate(); err == nil || !strings.Contains(err.Error(), "weights: only used by the fixed mixture") {
		t.Errorf("weights without the fixed mixture: %v", err)
	}
	fixed := Config{Mixture: MixtureFixed, Weights: map[string]float64{"a": 0, "b": -1}}
	fixed.SetDefaults()
	if err := fixed.Validate(); err == nil || !strings.Contains(err.Error(), `"b" has weight -1`) || !strings.Contains(err.Error(), "at least one weight") {
		t.Errorf("fixed weights: %v", err)
	}
}
