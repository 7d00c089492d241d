package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// Evaluator scores a frozen encoder on labeled tasks. The trainer calls it
// on Run's goroutine with a snapshot of the encoder of the checkpoint at
// step (training waits for it); it returns when ctx is done with ctx's
// error. Package eval implements it (eval.Periodic); package train cannot
// import eval, so the seam is this interface.
type Evaluator interface {
	Evaluate(ctx context.Context, enc *Encoder, step int64) ([]EvalScore, error)
}

// EvalScore is one figure of an evaluation: a metric of one task, feature
// set and classifier at one label budget, averaged over Draws label draws.
type EvalScore struct {
	Task           string  `json:"task"`
	Features       string  `json:"features"`
	Classifier     string  `json:"classifier"`
	LabelsPerClass int     `json:"labels_per_class"` // 0 means all
	Metric         string  `json:"metric"`           // MetricAccuracy, MetricMacroF1, ...
	Value          float64 `json:"value"`
	Std            float64 `json:"std"`
	Draws          int     `json:"draws"`
}

// Metric names of EvalScore; the promotion gate reads MetricAccuracy.
const (
	MetricAccuracy = "accuracy"
	MetricMacroF1  = "macro_f1"
	// MetricDecision names the row of an eval object that holds the
	// promotion decision.
	MetricDecision = "decision"
)

func (s EvalScore) key() string {
	return s.Task + "\x00" + s.Features + "\x00" + s.Classifier + "\x00" + strconv.Itoa(s.LabelsPerClass) + "\x00" + s.Metric
}

func (s EvalScore) label() string {
	l := "all"
	if s.LabelsPerClass > 0 {
		l = strconv.Itoa(s.LabelsPerClass)
	}
	return fmt.Sprintf("%s/%s/%s@%s %s", s.Task, s.Features, s.Classifier, l, s.Metric)
}

// Option configures NewTrainer.
type Option func(*Trainer)

// WithEvaluator makes the trainer evaluate a checkpoint every EvalEvery
// optimiser steps with ev and promote it when it passes the gate.
func WithEvaluator(ev Evaluator) Option { return func(t *Trainer) { t.promo.ev = ev } }

// Decision is the outcome of the promotion gate for one checkpoint.
type Decision struct {
	Promoted bool
	// Baseline is the step of the promoted checkpoint the candidate was
	// compared with (-1: there was none).
	Baseline int64
	// Worst is the smallest difference, candidate minus promoted, over the
	// gated scores both have (0 when there is no baseline or no common
	// score).
	Worst  float64
	Reason string
}

// Gate decides whether a candidate checkpoint's scores may replace the
// promoted checkpoint's (baseline; nil when none is promoted): it may
// unless some gated score (metric accuracy) that both have falls below
// the promoted one's by more than tolerance. The first evaluated
// checkpoint is promoted; scores present on one side only are not
// compared; a candidate that shares no gated score with the baseline (the
// tasks were changed) is promoted and says so. A non-finite candidate
// score is a regression.
func Gate(baseline []EvalScore, baselineStep int64, candidate []EvalScore, tolerance float64) Decision {
	if baseline == nil {
		return Decision{Promoted: true, Baseline: -1, Reason: "first evaluated checkpoint"}
	}
	base := map[string]EvalScore{}
	for _, s := range baseline {
		if s.Metric == MetricAccuracy {
			base[s.key()] = s
		}
	}
	d := Decision{Baseline: baselineStep, Worst: math.Inf(1)}
	var worstLabel string
	var regressions []string
	compared := 0
	for _, c := range candidate {
		b, ok := base[c.key()]
		if !ok || c.Metric != MetricAccuracy {
			continue
		}
		compared++
		diff := c.Value - b.Value
		if math.IsNaN(diff) {
			diff = math.Inf(-1)
		}
		if diff < d.Worst {
			d.Worst, worstLabel = diff, c.label()
		}
		if diff < -tolerance {
			regressions = append(regressions, fmt.Sprintf("%s %.4f < promoted %.4f - %.4f", c.label(), c.Value, b.Value, tolerance))
		}
	}
	switch {
	case compared == 0:
		d.Promoted, d.Worst = true, 0
		d.Reason = fmt.Sprintf("no gated score in common with the promoted checkpoint of step %d", baselineStep)
	case len(regressions) > 0:
		d.Reason = fmt.Sprintf("regressed against step %d: %s", baselineStep, strings.Join(regressions, "; "))
	default:
		d.Promoted = true
		d.Reason = fmt.Sprintf("no regression beyond %.4f against step %d over %d scores (worst %s %+.4f)", tolerance, baselineStep, compared, worstLabel, d.Worst)
	}
	return d
}

// servedEncoder is a frozen encoder /v1/embed serves, with its step.
type servedEncoder struct {
	enc  *Encoder
	step int64
	key  string
}

// promoState is the evaluation and promotion state of Run's goroutine.
type promoState struct {
	ev           Evaluator
	lastEvalStep int64       // step of the newest evaluation attempted (0: none)
	baseline     []EvalScore // scores of the promoted checkpoint (nil: none)
	baselineStep int64       // its step (-1: none)
}

// PromotedStatus names the promoted checkpoint in TrainerStatus.
type PromotedStatus struct {
	Step int64  `json:"step"` // -1 while none is promoted
	Key  string `json:"key,omitempty"`
}

// EvalStatus is the last evaluation in TrainerStatus.
type EvalStatus struct {
	Step       int64       `json:"step"`
	Checkpoint string      `json:"checkpoint"`
	Time       time.Time   `json:"time"`
	Seconds    float64     `json:"seconds"`
	Promoted   bool        `json:"promoted"`
	Baseline   int64       `json:"baseline_step"`
	Reason     string      `json:"reason"`
	Scores     []EvalScore `json:"scores"`
}

// evalDue reports whether the checkpoint at step is to be evaluated.
func (t *Trainer) evalDue(step int64) bool {
	return t.promo.ev != nil && step-t.promo.lastEvalStep >= t.cfg.EvalEvery
}

// evaluate scores the checkpoint just written at step (t.run.ckptStep ==
// step), records the scores and the gate's decision in eval/<step>.parquet
// and, when it passes, points PROMOTED at it. Failures are logged and
// counted; training goes on. It runs on Run's goroutine, so the weights
// cannot change under it; it still evaluates a frozen copy, the object
// that becomes the promoted encoder.
func (t *Trainer) evaluate(ctx context.Context, step int64) {
	t.promo.lastEvalStep = step
	key := CheckpointKey(step)
	began := time.Now()
	enc := t.learner.Encoder()
	scores, err := t.promo.ev.Evaluate(ctx, enc, step)
	secs := time.Since(began).Seconds()
	if err != nil {
		if ctx.Err() != nil {
			t.log.Info("evaluation stopped", "step", step)
			return
		}
		t.metrics.evalFailures.Inc()
		t.log.Error("evaluation failed; checkpoint not promoted", "step", step, "err", err)
		return
	}
	t.metrics.evalSeconds.Observe(secs)
	d := Gate(t.promo.baseline, t.promo.baselineStep, scores, t.cfg.PromoteTolerance)
	now := time.Now().UTC()
	rows := evalRows(step, key, now, scores, d)
	data, err := lake.EncodeRows(schemas.TableEval, schemas.EvalVersion, rows)
	if err == nil {
		err = putStepObject(context.WithoutCancel(ctx), t.store, EvalKey(step), data, t.log)
	}
	if err != nil {
		// Without its record a promotion could not be explained or
		// restored: the checkpoint is not promoted.
		t.metrics.evalFailures.Inc()
		t.log.Error("cannot record the evaluation; checkpoint not promoted", "step", step, "err", err)
		return
	}
	if d.Promoted {
		if err := t.ckpts.Promote(context.WithoutCancel(ctx), key); err != nil {
			// The eval object says promoted; the next resume completes it.
			t.log.Error("cannot point PROMOTED at the checkpoint", "key", key, "err", err)
		}
		t.promo.baseline, t.promo.baselineStep = scores, step
		t.promoted.Store(&servedEncoder{enc: enc, step: step, key: key})
		t.metrics.promotions.Inc()
		t.metrics.promotedStep.Set(float64(step))
		t.log.Info("checkpoint promoted", "key", key, "baseline_step", d.Baseline, "worst_delta", d.Worst, "reason", d.Reason, "eval_seconds", secs)
	} else {
		t.metrics.rejections.Inc()
		t.log.Warn("checkpoint not promoted", "key", key, "baseline_step", d.Baseline, "worst_delta", d.Worst, "reason", d.Reason, "eval_seconds", secs)
	}
	t.exportScores(step, scores)
	t.mu.Lock()
	t.st.LastEval = &EvalStatus{Step: step, Checkpoint: key, Time: now, Seconds: secs, Promoted: d.Promoted, Baseline: d.Baseline, Reason: d.Reason, Scores: scores}
	t.mu.Unlock()
}

func (t *Trainer) exportScores(step int64, scores []EvalScore) {
	t.metrics.evalStep.Set(float64(step))
	for _, s := range scores {
		l := "all"
		if s.LabelsPerClass > 0 {
			l = strconv.Itoa(s.LabelsPerClass)
		}
		switch s.Metric {
		case MetricAccuracy:
			t.metrics.evalAccuracy.WithLabelValues(s.Task, l, s.Classifier).Set(s.Value)
		case MetricMacroF1:
			t.metrics.evalMacroF1.WithLabelValues(s.Task, l, s.Classifier).Set(s.Value)
		}
	}
}

// evalRows are the rows of one eval object: every score, then the
// decision row; every row carries the decision's Promoted and Reason.
func evalRows(step int64, key string, now time.Time, scores []EvalScore, d Decision) []schemas.Eval {
	rows := make([]schemas.Eval, 0, len(scores)+1)
	for _, s := range scores {
		rows = append(rows, schemas.Eval{
			Step: step, Time: now, Checkpoint: key, Task: s.Task, Features: s.Features, Classifier: s.Classifier,
			LabelsPerClass: int32(s.LabelsPerClass), Metric: s.Metric, Value: s.Value, Std: s.Std, Draws: int32(s.Draws),
			Promoted: d.Promoted, Reason: d.Reason, Baseline: d.Baseline,
		})
	}
	return append(rows, schemas.Eval{
		Step: step, Time: now, Checkpoint: key, Metric: MetricDecision, Value: d.Worst,
		Promoted: d.Promoted, Reason: d.Reason, Baseline: d.Baseline,
	})
}

// scoresOf turns the score rows of an eval object back into EvalScores.
func scoresOf(rows []schemas.Eval) []EvalScore {
	var out []EvalScore
	for _, r := range rows {
		if r.Metric == MetricDecision {
			continue
		}
		out = append(out, EvalScore{Task: r.Task, Features: r.Features, Classifier: r.Classifier, LabelsPerClass: int(r.LabelsPerClass),
			Metric: r.Metric, Value: r.Value, Std: r.Std, Draws: int(r.Draws)})
	}
	return out
}

// resumePromotion restores the evaluation state of a run resumed at step
// (0 for a fresh start): eval objects after step are from an abandoned run
// and deleted; the newest remaining decision that promoted a checkpoint
// which still exists is the promoted one, and PROMOTED is made to name it
// (completing a promotion a crash interrupted between the eval object and
// PROMOTED, or undoing one of an abandoned run), or deleted when there is
// none. learner is the resumed checkpoint's learner blob, reused when that
// checkpoint is the promoted one.
func (t *Trainer) resumePromotion(ctx context.Context, step int64, resumedKey string, learner []byte) error {
	if err := dropStepObjectsAfter(ctx, t.store, schemas.TableEval, step, t.log); err != nil {
		return err
	}
	steps, keys, err := stepObjects(ctx, t.store, schemas.TableEval)
	if err != nil {
		return err
	}
	ckKeys, err := t.ckpts.Keys(ctx)
	if err != nil {
		return err
	}
	t.promo.baselineStep = -1
	if len(steps) > 0 {
		t.promo.lastEvalStep = steps[len(steps)-1]
	}
	var found *servedEncoder
	for i := len(keys) - 1; i >= 0 && found == nil; i-- {
		data, err := t.store.Get(ctx, keys[i])
		if err != nil {
			return fmt.Errorf("train: read %s: %w", keys[i], err)
		}
		rows, err := lake.ReadRows[schemas.Eval](data)
		if err != nil {
			t.log.Warn("skipping unreadable eval object", "key", keys[i], "err", err)
			continue
		}
		if i == len(keys)-1 {
			t.setLastEval(rows)
		}
		dec := slices.IndexFunc(rows, func(r schemas.Eval) bool { return r.Metric == MetricDecision })
		if dec < 0 || !rows[dec].Promoted {
			continue
		}
		ck := CheckpointKey(steps[i])
		if !slices.Contains(ckKeys, ck) {
			t.log.Warn("a promoted checkpoint is gone; looking further back", "key", ck)
			continue
		}
		blob := learner
		if ck != resumedKey {
			c, err := t.ckpts.Read(ctx, ck)
			if err != nil {
				t.log.Warn("cannot read a promoted checkpoint; looking further back", "key", ck, "err", err)
				continue
			}
			blob = c.Learner
		}
		enc, err := LoadEncoder(blob)
		if err != nil {
			t.log.Warn("cannot load a promoted checkpoint's encoder; looking further back", "key", ck, "err", err)
			continue
		}
		found = &servedEncoder{enc: enc, step: steps[i], key: ck}
		t.promo.baseline, t.promo.baselineStep = scoresOf(rows), steps[i]
	}
	cur, err := t.ckpts.Promoted(ctx)
	if err != nil && !errors.Is(err, lake.ErrNotExist) {
		t.log.Warn("unreadable "+PromotedKey+"; rewriting it", "err", err)
	}
	switch {
	case found == nil:
		if err := t.ckpts.Unpromote(ctx); err != nil {
			return err
		}
		if cur != "" {
			t.log.Warn("no evaluation record promotes a checkpoint of this run; "+PromotedKey+" deleted", "was", cur)
		}
	case cur != found.key:
		t.log.Warn("pointing "+PromotedKey+" at the newest promoted checkpoint of the eval table", "key", found.key, "was", cur)
		if err := t.ckpts.Promote(ctx, found.key); err != nil {
			return err
		}
	}
	if found != nil {
		t.promoted.Store(found)
		t.metrics.promotedStep.Set(float64(found.step))
		t.log.Info("promoted checkpoint", "key", found.key)
	}
	return nil
}

// setLastEval fills the status's last evaluation from an eval object.
func (t *Trainer) setLastEval(rows []schemas.Eval) {
	if len(rows) == 0 {
		return
	}
	r := rows[len(rows)-1]
	for _, x := range rows {
		if x.Metric == MetricDecision {
			r = x
		}
	}
	scores := scoresOf(rows)
	t.exportScores(r.Step, scores)
	t.mu.Lock()
	t.st.LastEval = &EvalStatus{Step: r.Step, Checkpoint: r.Checkpoint, Time: r.Time.UTC(), Promoted: r.Promoted, Baseline: r.Baseline, Reason: r.Reason, Scores: scores}
	t.mu.Unlock()
}
