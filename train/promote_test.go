package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

func score(task string, labels int, metric string, v float64) EvalScore {
	return EvalScore{Task: task, Features: "encoder", Classifier: "linear", LabelsPerClass: labels, Metric: metric, Value: v, Draws: 3}
}

func TestGate(t *testing.T) {
	base := []EvalScore{score("a", 16, MetricAccuracy, 0.60), score("a", 64, MetricAccuracy, 0.70), score("b", 16, MetricAccuracy, 0.50),
		score("a", 16, MetricMacroF1, 0.40)}
	for _, tc := range []struct {
		name     string
		baseline []EvalScore
		cand     []EvalScore
		promoted bool
		worst    float64
		reason   string
	}{
		{"first", nil, []EvalScore{score("a", 16, MetricAccuracy, 0.1)}, true, 0, "first evaluated checkpoint"},
		{"better", base, []EvalScore{score("a", 16, MetricAccuracy, 0.62), score("a", 64, MetricAccuracy, 0.71), score("b", 16, MetricAccuracy, 0.55)}, true, 0.01, "no regression beyond 0.0100"},
		{"within tolerance", base, []EvalScore{score("a", 16, MetricAccuracy, 0.591), score("a", 64, MetricAccuracy, 0.70), score("b", 16, MetricAccuracy, 0.50)}, true, -0.009, "worst a/encoder/linear@16 accuracy"},
		{"one task regresses", base, []EvalScore{score("a", 16, MetricAccuracy, 0.65), score("a", 64, MetricAccuracy, 0.75), score("b", 16, MetricAccuracy, 0.48)}, false, -0.02, "b/encoder/linear@16 accuracy 0.4800 < promoted 0.5000"},
		{"macro-F1 is not gated", base, []EvalScore{score("a", 16, MetricAccuracy, 0.60), score("a", 16, MetricMacroF1, 0.1)}, true, 0, "over 1 scores"},
		{"NaN regresses", base, []EvalScore{score("a", 16, MetricAccuracy, math.NaN())}, false, math.Inf(-1), "regressed against step 10"},
		{"no common score", base, []EvalScore{score("c", 16, MetricAccuracy, 0.01)}, true, 0, "no gated score in common"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Gate(tc.baseline, 10, tc.cand, 0.01)
			if d.Promoted != tc.promoted || math.Abs(d.Worst-tc.worst) > 1e-9 && !(math.IsInf(tc.worst, -1) && math.IsInf(d.Worst, -1)) || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Gate = %+v, want promoted %v, worst %v, reason containing %q", d, tc.promoted, tc.worst, tc.reason)
			}
			if want := int64(10); tc.baseline == nil && d.Baseline != -1 || tc.baseline != nil && d.Baseline != want {
				t.Fatalf("baseline %d", d.Baseline)
			}
		})
	}
}

// fakeEvaluator scores checkpoints by step from a table, and checks that
// the encoder it is given is that of the checkpoint CURRENT names.
type fakeEvaluator struct {
	t      *testing.T
	store  lake.Store
	scores map[int64]float64
	mu     sync.Mutex
	steps  []int64
}

var probeTexts = []string{"the lord is my shepherd", "libc6-dev: GNU C Library development files", "a small dog barks"}

func (f *fakeEvaluator) Evaluate(ctx context.Context, enc *Encoder, step int64) ([]EvalScore, error) {
	f.mu.Lock()
	f.steps = append(f.steps, step)
	f.mu.Unlock()
	ck, key, err := NewCheckpointStore(f.store, 1, nil).Load(ctx)
	if err != nil {
		return nil, err
	}
	if key != CheckpointKey(step) {
		f.t.Errorf("evaluating step %d while CURRENT names %s", step, key)
	}
	sameEncoder(f.t, enc, ck.Learner, fmt.Sprintf("evaluated encoder of step %d", step))
	v, ok := f.scores[step]
	if !ok {
		return nil, errors.New("no score for this step")
	}
	return []EvalScore{score("fake", 16, MetricAccuracy, v), score("fake", 16, MetricMacroF1, v/2)}, nil
}

// sameEncoder fails unless enc embeds probeTexts exactly as the learner
// state blob does.
func sameEncoder(t *testing.T, enc *Encoder, blob []byte, what string) {
	t.Helper()
	want, err := LoadEncoder(blob)
	if err != nil {
		t.Fatal(err)
	}
	sameVectors(t, enc.Embed(probeTexts), want.Embed(probeTexts), what)
}

func sameVectors(t *testing.T, got, want [][]float32, what string) {
	t.Helper()
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("%s differs at text %d", what, i)
		}
	}
}

func embedVia(t *testing.T, h http.Handler, query string) (EmbedResponse, string) {
	t.Helper()
	body, _ := json.Marshal(EmbedRequest{Texts: probeTexts})
	req := strings.NewReader(string(body))
	rec := doRecorder(t, h, "POST", "/v1/embed"+query, req)
	if rec.Code != 200 {
		t.Fatalf("/v1/embed%s: %d %s", query, rec.Code, rec.Body.String())
	}
	var resp EmbedResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp, rec.Header().Get(WeightsHeader)
}

func doRecorder(t *testing.T, h http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func historySteps(t *testing.T, store lake.Store) []int64 {
	t.Helper()
	rows, err := lake.ReadTable[schemas.TrainHistory](context.Background(), store, schemas.TableTrainHistory)
	if err != nil {
		t.Fatal(err)
	}
	steps := make([]int64, len(rows))
	for i, r := range rows {
		steps[i] = r.Step
		if r.ExamplesSeen != r.Step*32 || r.Loss <= 0 || r.LR <= 0 || r.Time.IsZero() {
			t.Fatalf("history row %+v", r)
		}
	}
	return steps
}

func stepsUpTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

// TestPromotionRealLake trains on a lake curated from the real stream
// with an evaluator faked at its seam: a checkpoint that regresses is not
// promoted, PROMOTED survives retention, /v1/embed serves the promoted
// weights, the decisions are rows of the eval table, and a restart (after
// a crash that left rows of an abandoned run) keeps PROMOTED and a history
// with one row per step.
func TestPromotionRealLake(t *testing.T) {
	src, _ := curatetest.Lake(t, 6000, 3000)
	dir := copyLake(t, src)
	store := openLake(t, dir)
	cfg := testServiceConfig(dir, 30)
	cfg.KeepCheckpoints = 1
	cfg.CheckpointSteps, cfg.EvalEvery = 1000, 10
	ev := &fakeEvaluator{t: t, store: store, scores: map[int64]float64{10: 0.50, 20: 0.45, 30: 0.30}}
	reg := prometheus.NewRegistry()
	tr, err := NewTrainer(context.Background(), cfg, store, nil, reg, WithEvaluator(ev))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.steps, []int64{10, 20, 30}) {
		t.Fatalf("evaluated steps %v", ev.steps)
	}
	ckpts := NewCheckpointStore(store, 1, nil)
	ctx := context.Background()
	promoted, err := ckpts.Promoted(ctx)
	if err != nil || promoted != CheckpointKey(10) {
		t.Fatalf("PROMOTED = %q, %v; want %s", promoted, err, CheckpointKey(10))
	}
	keys, _ := ckpts.Keys(ctx)
	if !slices.Equal(keys, []string{CheckpointKey(10), CheckpointKey(30)}) {
		t.Fatalf("checkpoints after retention (keep 1): %v", keys)
	}

	// The eval table: the scores and one decision per evaluated checkpoint.
	rows, err := lake.ReadTable[schemas.Eval](ctx, store, schemas.TableEval)
	if err != nil {
		t.Fatal(err)
	}
	type dec struct {
		step     int64
		promoted bool
		baseline int64
	}
	var decs []dec
	for _, r := range rows {
		if r.Checkpoint != CheckpointKey(r.Step) {
			t.Errorf("row %+v names another checkpoint", r)
		}
		if r.Metric == MetricDecision {
			decs = append(decs, dec{r.Step, r.Promoted, r.Baseline})
			if r.Reason == "" {
				t.Errorf("decision without a reason: %+v", r)
			}
		} else if r.Metric == MetricAccuracy && (r.Value != ev.scores[r.Step] || r.Task != "fake" || r.LabelsPerClass != 16) {
			t.Errorf("score row %+v", r)
		}
	}
	if want := []dec{{10, true, -1}, {20, false, 10}, {30, false, 10}}; !slices.Equal(decs, want) {
		t.Fatalf("decisions %v, want %v", decs, want)
	}

	// Metrics and status.
	_, body := do(t, tr.Handler(), "GET", "/metrics", "", "")
	for _, series := range []string{
		`thresher_train_eval_accuracy{classifier="linear",labels_per_class="16",task="fake"} 0.3` + "\n",
		`thresher_train_eval_macro_f1{classifier="linear",labels_per_class="16",task="fake"} 0.15` + "\n",
		"thresher_train_promoted_step 10\n", "thresher_train_eval_step 30\n",
		"thresher_train_promotions_total 1\n", "thresher_train_promotion_rejections_total 2\n",
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %q", series)
		}
	}
	st := tr.Status()
	if st.Promoted.Step != 10 || st.LastEval == nil || st.LastEval.Step != 30 || st.LastEval.Promoted || !strings.Contains(st.LastEval.Reason, "regressed") {
		b, _ := json.Marshal(st)
		t.Fatalf("status: %s", b)
	}

	// /v1/embed: promoted weights by default, live ones on request.
	ck10, err := ckpts.Read(ctx, CheckpointKey(10))
	if err != nil {
		t.Fatal(err)
	}
	ck30, err := ckpts.Read(ctx, CheckpointKey(30))
	if err != nil {
		t.Fatal(err)
	}
	checkEmbed := func(tr *Trainer) {
		t.Helper()
		want10, _ := LoadEncoder(ck10.Learner)
		resp, hdr := embedVia(t, tr.Handler(), "")
		if resp.Step != 10 || resp.Weights != WeightsPromoted || hdr != WeightsPromoted {
			t.Fatalf("default /v1/embed: step %d, weights %q, header %q", resp.Step, resp.Weights, hdr)
		}
		sameVectors(t, resp.Embeddings, want10.Embed(probeTexts), "/v1/embed against checkpoint 10")
		want30, _ := LoadEncoder(ck30.Learner)
		resp, hdr = embedVia(t, tr.Handler(), "?weights=current")
		if resp.Step != 30 || resp.Weights != WeightsCurrent || hdr != WeightsCurrent {
			t.Fatalf("/v1/embed?weights=current: step %d, weights %q, header %q", resp.Step, resp.Weights, hdr)
		}
		sameVectors(t, resp.Embeddings, want30.Embed(probeTexts), "/v1/embed?weights=current against checkpoint 30")
	}
	checkEmbed(tr)
	if code, body := do(t, tr.Handler(), "POST", "/v1/embed?weights=best", "application/json", `{"texts":["a"]}`); code != 400 || !strings.Contains(body, "weights") {
		t.Fatalf("?weights=best: %d %s", code, body)
	}
	if got := historySteps(t, store); !slices.Equal(got, stepsUpTo(30)) {
		t.Fatalf("history steps %v", got)
	}

	// A crash of a later run: it had written history for steps 31-35, an
	// eval object promoting step 35 and PROMOTED naming it, but never the
	// checkpoint. The resume must delete those rows and point PROMOTED
	// back at the promotion the eval table records for its past.
	orphan := []schemas.TrainHistory{{Step: 31, LossMLM: 99}, {Step: 35, LossMLM: 99}}
	data, err := lake.EncodeRows(schemas.TableTrainHistory, schemas.TrainHistoryVersion, orphan)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, HistoryKey(31), data); err != nil {
		t.Fatal(err)
	}
	data, _ = lake.EncodeRows(schemas.TableEval, schemas.EvalVersion, evalRows(35, CheckpointKey(35), ck30.Meta.Time, nil, Decision{Promoted: true, Baseline: 10, Reason: "abandoned"}))
	if err := store.Put(ctx, EvalKey(35), data); err != nil {
		t.Fatal(err)
	}
	if err := ckpts.Promote(ctx, CheckpointKey(35)); err != nil {
		t.Fatal(err)
	}

	cfg.MaxSteps = 50
	ev2 := &fakeEvaluator{t: t, store: store, scores: map[int64]float64{40: 0.495, 50: 0.2}}
	tr2, err := NewTrainer(ctx, cfg, store, nil, nil, WithEvaluator(ev2))
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if err := tr2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := ckpts.Promoted(ctx); err != nil || p != CheckpointKey(10) || tr2.Status().Promoted.Step != 10 {
		t.Fatalf("after resume PROMOTED = %q, %v; status %+v", p, err, tr2.Status().Promoted)
	}
	if _, err := store.Get(ctx, EvalKey(35)); !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("eval object of the abandoned run: %v", err)
	}
	checkEmbed(tr2)
	if err := tr2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev2.steps, []int64{40, 50}) {
		t.Fatalf("evaluated steps after resume %v", ev2.steps)
	}
	if p, _ := ckpts.Promoted(ctx); p != CheckpointKey(40) {
		t.Fatalf("PROMOTED after step 40 (0.495 within 0.01 of 0.50): %q", p)
	}
	if got := historySteps(t, store); !slices.Equal(got, stepsUpTo(50)) {
		t.Fatalf("history steps after a resume %v", got)
	}

	// PROMOTED lost (a crash between the eval object and PROMOTED's
	// replacement): the resume restores it from the eval table.
	if err := ckpts.Unpromote(ctx); err != nil {
		t.Fatal(err)
	}
	tr3, err := NewTrainer(ctx, cfg, store, nil, nil, WithEvaluator(ev2))
	if err != nil {
		t.Fatal(err)
	}
	defer tr3.Close()
	if err := tr3.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := ckpts.Promoted(ctx); err != nil || p != CheckpointKey(40) {
		t.Fatalf("PROMOTED restored as %q, %v", p, err)
	}
	if st := tr3.Status(); st.LastEval == nil || st.LastEval.Step != 50 || st.Promoted.Step != 40 {
		b, _ := json.Marshal(st)
		t.Fatalf("status after resume: %s", b)
	}
}

// TestEmbedWithoutPromotion: with no promoted checkpoint /v1/embed serves
// the live weights and says so.
func TestEmbedWithoutPromotion(t *testing.T) {
	tr := handlerTrainer(t, true)
	resp, hdr := embedVia(t, tr.Handler(), "")
	if resp.Weights != WeightsCurrent || hdr != WeightsCurrent {
		t.Fatalf("weights %q, header %q", resp.Weights, hdr)
	}
	sameVectors(t, resp.Embeddings, tr.Embed(probeTexts), "/v1/embed against the live weights")
	if st := tr.Status(); st.Promoted.Step != -1 || st.LastEval != nil {
		t.Fatalf("status without an evaluation: promoted %+v, last eval %+v", st.Promoted, st.LastEval)
	}
}

// TestEvalTasksNeedEvaluator: eval_tasks without an evaluator is a
// configuration error, not a silently skipped evaluation.
func TestEvalTasksNeedEvaluator(t *testing.T) {
	cfg := testServiceConfig(t.TempDir(), 1)
	cfg.EvalTasks = []string{"somewhere"}
	_, err := NewTrainer(context.Background(), cfg, lake.NewMem(), nil, nil)
	if !errors.Is(err, ErrServiceConfig) || !strings.Contains(err.Error(), "evaluator") {
		t.Fatalf("err %v", err)
	}
}
