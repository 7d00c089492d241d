package eval

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/sampler"
	"github.com/thresher-ml/thresher/schemas"
	"github.com/thresher-ml/thresher/train"
)

// TestSubsample: a seeded subsample keeps n examples in file order, the
// same for the same seed.
func TestSubsample(t *testing.T) {
	s := Split{IDs: []string{"a", "b", "c", "d", "e", "f"}, Texts: []string{"A", "B", "C", "D", "E", "F"}, Labels: []int{0, 1, 2, 3, 4, 5}}
	a, b := subsample(s, 3, 7), subsample(s, 3, 7)
	if a.Len() != 3 || !slices.Equal(a.Texts, b.Texts) || !slices.IsSorted(a.Labels) {
		t.Fatalf("subsample %+v and %+v", a, b)
	}
	for i := range a.Texts {
		if a.Texts[i] != strings.ToUpper(a.IDs[i]) || a.Labels[i] != int(a.IDs[i][0]-'a') {
			t.Fatalf("rows mixed up: %+v", a)
		}
	}
	if all := subsample(s, 10, 7); all.Len() != 6 {
		t.Fatalf("subsample larger than the split: %d rows", all.Len())
	}
}

// evaluatorFunc is a train.Evaluator made of a function.
type evaluatorFunc func(ctx context.Context, enc *train.Encoder, step int64) ([]train.EvalScore, error)

func (f evaluatorFunc) Evaluate(ctx context.Context, enc *train.Encoder, step int64) ([]train.EvalScore, error) {
	return f(ctx, enc, step)
}

// TestPeriodicInTrainer runs the trainer on a lake curated from the real
// stream with the real evaluator on two real tasks (dev and test cut to
// 200 examples, 16 labels per class, 2 draws, C in {1, 10}): the eval table holds the
// scores of every evaluated checkpoint, readable by DuckDB; the first is
// promoted; the scores are exported as metrics; and scoring the promoted
// checkpoint's encoder again gives exactly the recorded figures (the
// evaluated snapshot is the checkpoint).
func TestPeriodicInTrainer(t *testing.T) {
	began := time.Now()
	sotuDir := realtest.Data(t, "tasks/sotu_party")
	sotu, err := LoadTask(sotuDir)
	if err != nil {
		t.Fatal(err)
	}
	tasks := []*Task{debianTask(t, 0), sotu}
	dir, store := curatetest.Lake(t, 3000, 3000)
	ev, err := NewPeriodicTasks(tasks, PeriodicConfig{LabelsPerClass: []LabelsPerClass{16}, Draws: 2, Seed: 1, MaxExamples: 200, Cs: []float64{1, 10}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if debianTask(t, 0).Test.Len() == 200 {
		t.Fatal("NewPeriodicTasks cut the caller's task")
	}
	t.Logf("tasks and lake ready in %v", time.Since(began))
	if got := ev.Tasks(); len(got) != 2 || got[0].Test.Len() != 200 || got[1].Dev.Len() != 200 {
		t.Fatalf("tasks %d", len(got))
	}

	cfg := train.ServiceConfig{
		Lake: dir, MaxSteps: 40, Deterministic: true, CheckpointSteps: 1000, HealthEvery: 10, EvalEvery: 20,
		Learner: train.Config{Buckets: 1 << 14, EmbedDim: 32, HiddenDim: 64, OutDim: 32, QueueSize: 256, WarmupSteps: 10, HealthSample: 64},
		Sampler: sampler.Config{BatchSize: 32, Poll: 20 * time.Millisecond},
	}
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	var evalTime time.Duration
	timed := evaluatorFunc(func(ctx context.Context, enc *train.Encoder, step int64) ([]train.EvalScore, error) {
		defer func(t0 time.Time) { evalTime += time.Since(t0) }(time.Now())
		return ev.Evaluate(ctx, enc, step)
	})
	tr, err := train.NewTrainer(ctx, cfg, store, nil, reg, train.WithEvaluator(timed))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	began = time.Now()
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("40 steps with 2 evaluations in %v (%v evaluating)", time.Since(began), evalTime)

	rows, err := lake.ReadTable[schemas.Eval](ctx, store, schemas.TableEval)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]float64{}
	var decisions []string
	for _, r := range rows {
		if r.Metric == train.MetricDecision {
			decisions = append(decisions, fmt.Sprintf("%d:%v", r.Step, r.Promoted))
			continue
		}
		t.Logf("step %d %s %s@%d %s %.3f ± %.3f", r.Step, r.Task, r.Classifier, r.LabelsPerClass, r.Metric, r.Value, r.Std)
		if r.Features != FeaturesEncoder || r.Classifier != ClassifierLinear || r.LabelsPerClass != 16 || r.Draws != 2 ||
			r.Value <= 0 || r.Value > 1 || r.Checkpoint != train.CheckpointKey(r.Step) {
			t.Errorf("row %+v", r)
		}
		recorded[fmt.Sprintf("%d/%s/%s", r.Step, r.Task, r.Metric)] = r.Value
	}
	if len(recorded) != 2*2*2 || len(decisions) != 2 || decisions[0] != "20:true" {
		t.Fatalf("%d scores, decisions %v", len(recorded), decisions)
	}
	for _, task := range ev.Tasks() {
		if acc := recorded["40/"+task.Name+"/accuracy"]; acc <= 1/float64(len(task.Classes)) {
			t.Errorf("%s: accuracy %.3f is not above chance (%d classes)", task.Name, acc, len(task.Classes))
		}
	}

	// The promoted checkpoint, scored again, gives the recorded figures.
	st := tr.Status()
	ckpts := train.NewCheckpointStore(store, 3, nil)
	ck, err := ckpts.Read(ctx, st.Promoted.Key)
	if err != nil {
		t.Fatalf("promoted %+v: %v", st.Promoted, err)
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ev.Evaluate(ctx, enc, ck.Meta.Step)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range again {
		if got := recorded[fmt.Sprintf("%d/%s/%s", ck.Meta.Step, s.Task, s.Metric)]; got != s.Value {
			t.Errorf("step %d %s %s: recorded %v, scored again %v", ck.Meta.Step, s.Task, s.Metric, got, s.Value)
		}
	}

	srv := httptest.NewServer(tr.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`thresher_train_eval_accuracy{classifier="linear",labels_per_class="16",task="debian_section"} %v`, recorded["40/debian_section/accuracy"])
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	// DuckDB reads both tables.
	q := fmt.Sprintf(`SELECT task, count(*) AS n, min(step) AS lo, max(step) AS hi FROM read_parquet('%s')
		WHERE metric = 'accuracy' GROUP BY task ORDER BY task`, filepath.Join(dir, "eval", "*.parquet"))
	got := realtest.DuckDB(t, q)
	if fmt.Sprint(got) != "[map[hi:40 lo:20 n:2 task:debian_section] map[hi:40 lo:20 n:2 task:sotu_party]]" {
		t.Errorf("DuckDB over eval: %v", got)
	}
	q = fmt.Sprintf(`SELECT count(*) AS n, count(DISTINCT step) AS steps, max(step) AS hi, bool_or(collapsed) AS collapsed
		FROM read_parquet('%s')`, filepath.Join(dir, "train", "history", "*.parquet"))
	if got := realtest.DuckDB(t, q); fmt.Sprint(got) != "[map[collapsed:false hi:40 n:40 steps:40]]" {
		t.Errorf("DuckDB over train/history: %v", got)
	}
}

// BenchmarkPeriodicEvaluate measures one periodic evaluation at the
// trainer's defaults (dev and test cut to 2000 examples, 16 and 64 labels
// per class, 3 draws, the full C grid) of an encoder of the default shape,
// per real task; b.N is the number of evaluations.
//
//	go test -run '^$' -bench PeriodicEvaluate -benchtime 2x -count 3 ./eval/ | tee new.txt; benchstat new.txt
func BenchmarkPeriodicEvaluate(b *testing.B) {
	var cfg train.Config
	cfg.SetDefaults()
	l, err := train.NewLearner(cfg)
	if err != nil {
		b.Fatal(err)
	}
	enc := l.Encoder()
	for _, name := range []string{"debian_section", "sotu_party", "fortune_cat", "bible_genre", "wordnet_lexname"} {
		b.Run("task="+name, func(b *testing.B) {
			ev, err := NewPeriodic(PeriodicConfig{Tasks: []string{realtest.Data(b, "tasks/"+name)}, Seed: 1, MaxExamples: 2000}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := ev.Evaluate(context.Background(), enc, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/eval")
		})
	}
}
