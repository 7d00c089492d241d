package eval

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/train"
)

var (
	debianOnce sync.Once
	debian     *Task
	debianErr  error
)

// debianTask loads the real debian_section task once per test binary,
// with dev and test cut to their first n examples (0: all).
func debianTask(tb testing.TB, n int) *Task {
	tb.Helper()
	dir := realtest.Data(tb, "tasks/debian_section")
	debianOnce.Do(func() { debian, debianErr = LoadTask(dir) })
	if debianErr != nil {
		tb.Fatal(debianErr)
	}
	t := *debian
	if n > 0 {
		cut := func(s Split) Split {
			m := min(n, s.Len())
			return Split{IDs: s.IDs[:m], Texts: s.Texts[:m], Labels: s.Labels[:m]}
		}
		t.Dev, t.Test = cut(t.Dev), cut(t.Test)
	}
	return &t
}

// renamed is a feature set under another name.
type renamed struct {
	Features
	name string
}

func (r renamed) Name() string { return r.name }

// TestDebianSection runs the protocol on the real debian_section task (dev
// and test cut to 1000 examples each) with 16 labels per class and 2
// draws: tf-idf with the linear probe clearly beats the majority class,
// and a randomly initialised encoder of the default shape is worse than
// tf-idf.
func TestDebianSection(t *testing.T) {
	task := debianTask(t, 1000)
	if len(task.Classes) != 27 || task.Train.Len() != 18547 {
		t.Fatalf("%d classes, %d train examples", len(task.Classes), task.Train.Len())
	}
	var cfg train.Config
	cfg.SetDefaults()
	began := time.Now()
	random, err := NewRandomFeatures(cfg, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	tfidf := NewTFIDF(task.Train.Texts)
	t.Logf("features built in %v", time.Since(began))
	var stages []string
	began = time.Now()
	res, err := Evaluate(context.Background(), task, []Features{tfidf, random},
		Config{LabelsPerClass: []LabelsPerClass{16}, Draws: 2, Seed: 3}, func(p Progress) {
			if p.Done > p.Total || p.Task != "debian_section" {
				t.Errorf("progress %+v", p)
			}
			if p.Done == p.Total {
				stages = append(stages, p.Stage+":"+p.Features)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("evaluated in %v", time.Since(began))
	if want := []string{"embed:tfidf", "embed:random", "fit:"}; !slices.Equal(stages, want) {
		t.Errorf("completed stages %v, want %v", stages, want)
	}
	if len(res) != 4 {
		t.Fatalf("%d rows", len(res))
	}
	get := func(f, c string) Result {
		for _, r := range res {
			if r.Features == f && r.Classifier == c {
				return r
			}
		}
		t.Fatalf("no row %s %s", f, c)
		return Result{}
	}
	for _, r := range res {
		t.Logf("%s %s: accuracy %.3f ± %.3f, macro-F1 %.3f ± %.3f, chosen %v", r.Features, r.Classifier, r.AccuracyMean, r.AccuracyStd, r.MacroF1Mean, r.MacroF1Std, r.Chosen)
		if r.Task != "debian_section" || r.Draws != 2 || r.LabelsPerClass != 16 || len(r.Chosen) != 2 {
			t.Errorf("row %+v", r)
		}
	}
	majority := task.MajorityRate()
	lin := get(FeaturesTFIDF, ClassifierLinear)
	if lin.AccuracyMean < majority+0.15 {
		t.Errorf("tfidf+linear accuracy %.3f, majority class %.3f", lin.AccuracyMean, majority)
	}
	for _, c := range []string{ClassifierLinear, ClassifierKNN} {
		if r, tf := get(FeaturesRandom, c), get(FeaturesTFIDF, c); r.AccuracyMean >= tf.AccuracyMean-0.05 || r.MacroF1Mean >= tf.MacroF1Mean {
			t.Errorf("%s: random encoder %.3f (F1 %.3f) is not worse than tfidf %.3f (F1 %.3f)", c, r.AccuracyMean, r.MacroF1Mean, tf.AccuracyMean, tf.MacroF1Mean)
		}
	}
	if r := get(FeaturesTFIDF, ClassifierLinear); r.AccuracyStd == 0 && r.MacroF1Std == 0 {
		t.Error("two draws gave exactly the same accuracy and macro-F1: are they the same sample?")
	}

}

// TestEvaluateSameDraws: a second copy of tf-idf under another name
// scores exactly as the first (every feature set sees the same draws), and
// one worker gives the same rows as two.
func TestEvaluateSameDraws(t *testing.T) {
	task := debianTask(t, 300)
	tfidf := NewTFIDF(task.Train.Texts)
	var rows [2][]Result
	for w := range 2 {
		var err error
		rows[w], err = Evaluate(context.Background(), task, []Features{tfidf, renamed{tfidf, "copy"}},
			Config{LabelsPerClass: []LabelsPerClass{4}, Draws: 2, Cs: []float64{1, 10}, Workers: w + 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	same := func(a, b Result) bool {
		return a.Classifier == b.Classifier && a.AccuracyMean == b.AccuracyMean && a.MacroF1Mean == b.MacroF1Mean &&
			a.AccuracyStd == b.AccuracyStd && slices.Equal(a.Chosen, b.Chosen)
	}
	if len(rows[0]) != 4 {
		t.Fatalf("%d rows", len(rows[0]))
	}
	for i := range rows[0] {
		if a, b := rows[0][i], rows[1][i]; !same(a, b) || a.Features != b.Features {
			t.Errorf("workers 1: %+v, workers 2: %+v", a, b)
		}
	}
	for i := range 2 {
		if a, b := rows[1][i], rows[1][i+2]; !same(a, b) || a.Features != FeaturesTFIDF || b.Features != "copy" {
			t.Errorf("the same features under two names: %+v and %+v", a, b)
		}
	}
	if rows[0][0].AccuracyStd == 0 {
		t.Error("two draws gave exactly the same accuracy: are they the same sample?")
	}
}

// TestEvaluateCancel: a cancelled context stops Evaluate with its error.
func TestEvaluateCancel(t *testing.T) {
	task := debianTask(t, 500)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, task, []Features{NewTFIDF(task.Train.Texts)}, Config{LabelsPerClass: []LabelsPerClass{16}, Draws: 1}, nil); err != context.Canceled {
		t.Fatalf("err %v", err)
	}
}

// BenchmarkLogReg fits the linear probe at C=10 on real tf-idf features
// of debian_section, 16 labels per class.
//
//	go test -run '^$' -bench LogReg -count 6 ./eval/ | tee new.txt; benchstat old.txt new.txt
func BenchmarkLogReg(b *testing.B) {
	task := debianTask(b, 0)
	tfidf := NewTFIDF(task.Train.Texts)
	idx := Draw(task.Train.Labels, len(task.Classes), 16, 1, 0)
	var texts []string
	var y []int
	for _, i := range idx {
		texts, y = append(texts, task.Train.Texts[i]), append(y, task.Train.Labels[i])
	}
	x, err := tfidf.Transform(context.Background(), texts, nil)
	if err != nil {
		b.Fatal(err)
	}
	iters := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m := FitLogReg(x, y, len(task.Classes), 10)
		iters += m.Iterations
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fits/s")
	b.ReportMetric(float64(iters)/float64(b.N), "iterations/fit")
	b.ReportMetric(float64(len(y)), "rows")
}

// BenchmarkEvalTask runs the whole protocol on debian_section (full
// splits): tf-idf and a random encoder of the default shape, 16 labels per
// class, 2 draws.
func BenchmarkEvalTask(b *testing.B) {
	task := debianTask(b, 0)
	var cfg train.Config
	cfg.SetDefaults()
	random, err := NewRandomFeatures(cfg, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		feats := []Features{NewTFIDF(task.Train.Texts), random}
		if _, err := Evaluate(context.Background(), task, feats, Config{LabelsPerClass: []LabelsPerClass{16}, Draws: 2}, nil); err != nil {
			b.Fatal(err)
		}
	}
	texts := task.Dev.Len() + task.Test.Len()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/task")
	b.ReportMetric(float64(b.N*texts*2)/b.Elapsed().Seconds(), "texts/s")
}
