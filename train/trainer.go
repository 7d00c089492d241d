package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/sampler"
	"github.com/thresher-ml/thresher/schemas"
)

// Trainer is the online trainer service: it takes batches from a sampler,
// steps the learner on them, checkpoints, measures drift and serves its
// state and embeddings over HTTP (Handler).
//
// Life cycle: NewTrainer builds the learner and the sampler; Run resumes
// from the lake's checkpoints/CURRENT (or starts fresh when there is none;
// /readyz answers 200 from then on) and trains until ctx is done,
// MaxSteps or MaxDuration, writing a final checkpoint before it returns
// nil. Handler, Status and Embed are safe to call concurrently with Run;
// Run and Resume must not be called concurrently with each other.
//
// Every step adds its examples to examples_seen and the words of their
// source texts (sampler.Example.Words, once per record, not per view) to
// tokens_seen. Health (std, alignment, uniformity, RankMe, queue
// staleness) and drift are computed every HealthEvery steps. A checkpoint
// (see CheckpointStore) is written every CheckpointSteps steps or
// CheckpointInterval, whichever comes first, and when Run stops.
//
// History: every optimiser step adds a row (schemas.TrainHistory: losses,
// LR, counters, and the figures of the latest health check) to a buffer
// that is written, before each checkpoint, as one object
// train/history/<first step>.parquet (put if absent). A checkpoint is
// committed only after the history of its steps is; a resume deletes the
// history objects whose first step is after the resumed checkpoint (left
// by a run that crashed before checkpointing them) and replays those
// steps. So the rows of steps up to the step CURRENT names are exactly
// one per step; rows after it exist only while a run is live or until a
// crashed run is resumed.
//
// Evaluation and promotion (with WithEvaluator): every EvalEvery steps
// the trainer writes a checkpoint, then, on Run's goroutine, evaluates a
// frozen copy of its encoder (training waits; the evaluator's probes use
// every core, which training would only share on a small machine, and the
// cadence stays exact). The scores and the gate's decision (Gate, with
// PromoteTolerance) go to eval/<step>.parquet; a passing checkpoint is
// then named by checkpoints/PROMOTED (replaced atomically) and served by
// /v1/embed. Retention never deletes the promoted checkpoint. A resume
// deletes eval objects after the resumed checkpoint and points PROMOTED
// at the newest promoted checkpoint the eval table records, so a crash
// between the eval object and PROMOTED loses no promotion.
//
// Metrics (registered on the registerer given to NewTrainer):
//
//	thresher_train_step                       optimiser steps, across restarts
//	thresher_train_steps_total                steps taken by this process
//	thresher_train_batches_total              batches trained on
//	thresher_train_examples_total             examples trained on
//	thresher_train_tokens_total               words of the source texts trained on
//	thresher_train_loss{objective}            total, contrastive, mlm of the last step
//	thresher_train_accuracy                   instance-discrimination accuracy of the last step
//	thresher_train_lr                         learning rate of the last step
//	thresher_train_embedding_std              mean per-dimension std of normalised embeddings
//	thresher_train_alignment                  alignment of positive pairs
//	thresher_train_uniformity                 uniformity of embeddings
//	thresher_train_rankme                     effective rank on a rolling sample
//	thresher_train_queue_staleness            mean age of the momentum queue's keys, in steps
//	thresher_train_queue_len                  keys in the momentum queue
//	thresher_train_collapsed                  1 while the last health check found a collapse
//	thresher_train_collapse_total             health checks that found a collapse (each also logged as an error)
//	thresher_train_drift_domain_tv            domain mix of the newest lake window against what was trained on (total variation)
//	thresher_train_drift_entropy_psi          word entropy, newest window against trained on (population stability index)
//	thresher_train_drift_length_psi           length in words, likewise
//	thresher_train_drift_recent_domain_tv     the same three for the last ~4096 examples against all
//	thresher_train_drift_recent_entropy_psi   trained on by this process (works with a remote sampler)
//	thresher_train_drift_recent_length_psi
//	thresher_train_drift_mix_tv               domain mix of the last ~20 s of examples against the trailing ~10 min (total variation)
//	thresher_train_drift_alert                1 while drift_mix_tv is above drift_alert (until it falls below half of it)
//	thresher_train_drift_alerts_total         alerts raised (each also logged as a warning naming the domains that moved)
//	thresher_train_epoch                      the sampler's epoch
//	thresher_train_curriculum_stage           highest open curriculum stage of the last batch
//	thresher_train_curriculum_competence      pacing competence of the last batch
//	thresher_train_lake_window                newest curated window the sampler loaded
//	thresher_train_pool_records               records the sampler draws from
//	thresher_train_checkpoint_step            step of the last checkpoint written or resumed from (-1: none)
//	thresher_train_checkpoint_bytes           size of its learner state and cursor
//	thresher_train_checkpoint_seconds         histogram of checkpoint write times
//	thresher_train_checkpoint_failures_total  checkpoints that failed
//	thresher_train_step_seconds               histogram of learner step times
//	thresher_train_embed_texts_total          texts embedded through /v1/embed
//	thresher_train_classify_texts_total       texts classified through /v1/classify
//	thresher_train_ready                      1 once resumed or started fresh
//	thresher_train_eval_accuracy{task,labels_per_class,classifier}  test accuracy of the last evaluated checkpoint
//	thresher_train_eval_macro_f1{task,labels_per_class,classifier}  its macro-F1
//	thresher_train_eval_step                  step of the last evaluated checkpoint (-1: none)
//	thresher_train_eval_seconds               histogram of evaluation times
//	thresher_train_eval_failures_total        evaluations that failed or could not be recorded
//	thresher_train_promoted_step              step of the promoted checkpoint (-1: none)
//	thresher_train_promotions_total           checkpoints the gate promoted
//	thresher_train_promotion_rejections_total checkpoints the gate refused
type Trainer struct {
	cfg     ServiceConfig
	log     *slog.Logger
	reg     prometheus.Registerer
	metrics *trainerMetrics
	store   lake.Store
	ckpts   *CheckpointStore
	learner *Learner
	src     sampler.Source
	local   *sampler.Sampler // nil with a remote sampler
	remote  *sampler.Remote  // nil with a local sampler
	hash    string
	started time.Time

	ready   atomic.Bool
	resumed bool // Resume done (Run's goroutine only)

	run   runState   // Run's goroutine only
	hist  history    // Run's goroutine only
	promo promoState // Run's goroutine only

	// promoted is the encoder of the promoted checkpoint (nil while none
	// is), served by /v1/embed.
	promoted atomic.Pointer[servedEncoder]

	// observe, when set (tests only), sees every step's figures on Run's
	// goroutine.
	observe func(StepStats)

	adaptersOnce sync.Once
	adapterCache *adapterCache // heads and encoders of /v1/classify

	mu     sync.Mutex // guards st, runErr
	st     TrainerStatus
	runErr error
	step   atomic.Int64
}

// NewTrainer builds a trainer from cfg (SetDefaults is applied, then
// Validate: an invalid configuration is an error wrapping
// ErrServiceConfig). Batches come from a sampler over store, or from the
// remote sampler at cfg.SamplerAddr. log may be nil; reg may be nil (a
// private registry is used); when reg is a prometheus.Gatherer, Handler
// serves it at /metrics. WithEvaluator turns on the periodic evaluation
// and the promotion gate.
func NewTrainer(ctx context.Context, cfg ServiceConfig, store lake.Store, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Trainer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newTrainerMetrics(reg)
	if err != nil {
		return nil, err
	}
	l, err := NewLearner(cfg.Learner)
	if err != nil {
		return nil, fmt.Errorf("train: learner: %w", err)
	}
	t := &Trainer{
		cfg: cfg, log: log, reg: reg, metrics: m, learner: l, store: store,
		ckpts:   NewCheckpointStore(store, cfg.KeepCheckpoints, log),
		hash:    ConfigHash(cfg.Learner, cfg.Sampler),
		started: time.Now(),
		hist:    history{store: store, log: log},
	}
	for _, o := range opts {
		o(t)
	}
	if len(cfg.EvalTasks) > 0 && t.promo.ev == nil {
		return nil, fmt.Errorf("%w: eval_tasks are set but no evaluator was given (WithEvaluator)", ErrServiceConfig)
	}
	t.promo.baselineStep = -1
	if cfg.SamplerAddr != "" {
		r, err := sampler.Dial(ctx, cfg.SamplerAddr)
		if err != nil {
			return nil, fmt.Errorf("train: remote sampler %s: %w", cfg.SamplerAddr, err)
		}
		t.src, t.remote = r, r
	} else {
		s, err := sampler.New(ctx, cfg.Sampler, store, log)
		if err != nil {
			return nil, fmt.Errorf("train: sampler: %w", err)
		}
		t.src, t.local = s, s
	}
	t.run.ckptStep = -1
	t.run.drift = newDriftTracker()
	t.run.alert = newMixAlert(cfg.DriftAlert, cfg.DriftAlertRecent, cfg.DriftAlertTrailing)
	t.st = TrainerStatus{CheckpointStep: -1, StartedAt: t.started.UTC()}
	return t, nil
}

// Close stops the sampler's background reads of the lake, or closes the
// connection to a remote sampler. Call it after Run has returned.
func (t *Trainer) Close() error {
	if t.remote != nil {
		return t.remote.Close()
	}
	if t.local != nil {
		return t.local.Close()
	}
	return nil
}

// Learner returns the trainer's learner. Only its concurrency-safe methods
// (Embed, Encoder) may be called while Run runs.
func (t *Trainer) Learner() *Learner { return t.learner }

// Ready reports whether the trainer has resumed (or decided to start fresh).
func (t *Trainer) Ready() bool { return t.ready.Load() }

// Resume restores the learner, the sampler cursor and the counters from the
// checkpoint CURRENT names (falling back to the newest valid checkpoint when
// CURRENT is torn), or decides to start fresh when the lake has none; then
// the trainer is ready. Run calls it when it has not been called.
func (t *Trainer) Resume(ctx context.Context) error {
	if t.resumed {
		return nil
	}
	ck, key, err := t.ckpts.Load(ctx)
	var resumedStep int64
	var resumedBlob []byte
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		t.log.Info("no checkpoint; starting fresh", "reason", err)
	case err != nil:
		return err
	default:
		resumedStep, resumedBlob = ck.Meta.Step, ck.Learner
		if ck.Meta.ConfigHash != t.hash {
			t.log.Warn("configuration differs from the checkpoint's", "key", key, "checkpoint_hash", ck.Meta.ConfigHash, "hash", t.hash)
		}
		if err := t.learner.UnmarshalBinary(ck.Learner); err != nil {
			return fmt.Errorf("train: resume from %s: learner: %w", key, err)
		}
		if t.local != nil && len(ck.Cursor) > 0 {
			if err := t.local.Restore(ck.Cursor); err != nil {
				return fmt.Errorf("train: resume from %s: sampler cursor: %w", key, err)
			}
		}
		t.run.batches, t.run.examples, t.run.tokens = ck.Meta.Batches, ck.Meta.ExamplesSeen, ck.Meta.TokensSeen
		t.run.ckptStep, t.run.ckptBatches, t.run.ckptTime = ck.Meta.Step, ck.Meta.Batches, ck.Meta.Time
		t.log.Info("resumed", "key", key, "step", ck.Meta.Step, "examples_seen", ck.Meta.ExamplesSeen, "tokens_seen", ck.Meta.TokensSeen)
	}
	// What a run abandoned after the resumed checkpoint is undone, so the
	// steps it replays are written once: eval objects and PROMOTED first
	// (PROMOTED must name a checkpoint of this run's past before
	// DropAfter, which spares it), then checkpoints and history objects.
	if err := t.resumePromotion(ctx, resumedStep, key, resumedBlob); err != nil {
		return fmt.Errorf("train: resume: evaluation state: %w", err)
	}
	if key != "" {
		if err := t.ckpts.DropAfter(ctx, resumedStep); err != nil {
			t.log.Warn("cannot delete checkpoints newer than the one resumed from", "err", err)
		}
	}
	if err := dropStepObjectsAfter(ctx, t.store, schemas.TableTrainHistory, resumedStep, t.log); err != nil {
		return fmt.Errorf("train: resume: history: %w", err)
	}
	t.resumed = true
	t.step.Store(t.learner.Steps())
	t.mu.Lock()
	t.st.Step = t.learner.Steps()
	t.st.Batches, t.st.ExamplesSeen, t.st.TokensSeen = t.run.batches, t.run.examples, t.run.tokens
	t.st.CheckpointStep = t.run.ckptStep
	t.st.CheckpointTime = t.run.ckptTime
	t.st.ResumedFrom = key
	t.mu.Unlock()
	t.metrics.step.Set(float64(t.learner.Steps()))
	t.metrics.checkpointStep.Set(float64(t.run.ckptStep))
	t.metrics.ready.Set(1)
	t.ready.Store(true)
	return nil
}

// runState is what Run's goroutine keeps.
type runState struct {
	batches, examples, tokens int64
	ckptStep                  int64 // step of the last checkpoint written or resumed from (-1: none)
	ckptBatches               int64 // batches at that checkpoint
	ckptTime                  time.Time
	drift                     *driftTracker
	alert                     *mixAlert
	rateStarted               bool // the status rates' clock runs
}

// stopReason says why Run stops.
type stopReason string

// Run trains until ctx is done, MaxSteps optimiser steps or MaxDuration,
// then writes a final checkpoint and returns nil (or the checkpoint's
// error). A step under way when ctx is cancelled is finished first. Any
// other failure (the sampler's) is returned and /healthz turns 503.
func (t *Trainer) Run(ctx context.Context) error {
	if err := t.Resume(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while resuming: nothing trained, nothing to save
		}
		t.fail(err)
		return err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if t.cfg.MaxDuration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, t.cfg.MaxDuration)
	}
	defer cancel()
	t.run.ckptTime = time.Now() // the interval counts from this process's start
	for {
		if t.cfg.MaxSteps > 0 && t.learner.Steps() >= t.cfg.MaxSteps {
			return t.finish(ctx, "max_steps")
		}
		if runCtx.Err() != nil {
			return t.finish(ctx, t.why(ctx))
		}
		batch, err := t.src.Next(runCtx)
		if err != nil {
			if runCtx.Err() != nil {
				return t.finish(ctx, t.why(ctx))
			}
			err = fmt.Errorf("train: sampler: %w", err)
			t.fail(err)
			return err
		}
		if !t.run.rateStarted {
			t.run.rateStarted = true
			// The rates count from the first batch, once the sampler has
			// loaded the lake (as fastText's count from the end of its
			// vocabulary pass).
			t.mu.Lock()
			t.st.trainStart = time.Now()
			t.st.examplesAtStart, t.st.tokensAtStart = t.run.examples, t.run.tokens
			t.mu.Unlock()
		}
		stats := t.trainBatch(batch)
		if !stats.Updated {
			continue
		}
		step := stats.Step
		if step%t.cfg.HealthEvery == 0 {
			t.updateHealth(step)
		}
		evalDue := t.evalDue(step)
		if evalDue || step-max(t.run.ckptStep, 0) >= t.cfg.CheckpointSteps || time.Since(t.run.ckptTime) >= t.cfg.CheckpointInterval {
			why := stopReason("cadence")
			if evalDue {
				why = "eval"
			}
			// A stop (SIGTERM) does not abandon a checkpoint under way.
			if err := t.checkpoint(context.WithoutCancel(ctx), why); err != nil {
				t.log.Error("checkpoint failed; training on, will retry", "err", err)
				t.run.ckptTime = time.Now() // retry at the next interval, not every step
				if evalDue {
					t.promo.lastEvalStep = step // evaluate at the next cadence, not every step
					t.log.Error("evaluation skipped: its checkpoint failed", "step", step)
				}
				continue
			}
		}
		if evalDue && runCtx.Err() == nil {
			t.evaluate(runCtx, step)
		}
	}
}

func (t *Trainer) why(ctx context.Context) stopReason {
	if ctx.Err() != nil {
		return "stopped"
	}
	return "max_duration"
}

// finish writes the final checkpoint (unless nothing was trained since the
// last one) and returns.
func (t *Trainer) finish(ctx context.Context, why stopReason) error {
	t.mu.Lock()
	t.st.trainEnd = time.Now() // the rates stop here, before the final checkpoint
	t.mu.Unlock()
	if t.run.batches == t.run.ckptBatches && t.run.ckptStep == t.learner.Steps() {
		t.log.Info("stopping; checkpoint is current", "reason", why, "step", t.run.ckptStep)
		return nil
	}
	// ctx may be cancelled (SIGTERM): the final checkpoint still goes out.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if err := t.checkpoint(cctx, why); err != nil {
		t.fail(err)
		return err
	}
	t.log.Info("stopped", "reason", why, "step", t.learner.Steps(), "examples_seen", t.run.examples, "tokens_seen", t.run.tokens)
	return nil
}

// trainBatch converts a sampler batch, steps the learner and records the
// figures.
func (t *Trainer) trainBatch(b *sampler.Batch) StepStats {
	exs := make([]Example, len(b.Examples))
	var tokens int64
	for i := range b.Examples {
		e := &b.Examples[i]
		exs[i] = Example{
			Text: e.Text, ViewA: e.ViewA, ViewB: e.ViewB, MaskedA: e.MaskedA, MaskedB: e.MaskedB,
			Cluster: e.ClusterID, Domain: e.Domain,
			Record: recordID(e.Topic, e.Partition, e.Offset),
		}
		tokens += int64(e.Words)
		t.run.drift.add(e.Domain, float64(e.WordEntropy), e.LengthWords)
		t.run.alert.add(e.Domain)
	}
	// The sampler's candidate negatives (other clusters, mostly of the
	// batch's domains) join the queue's keys; their text is their view.
	negs := make([]Example, len(b.Negatives))
	for i := range b.Negatives {
		n := &b.Negatives[i]
		view := n.ViewA
		if view == "" {
			view = n.Text
		}
		negs[i] = Example{ViewA: view, Cluster: n.ClusterID, Domain: n.Domain, Record: recordID(n.Topic, n.Partition, n.Offset)}
	}
	began := time.Now()
	stats := t.learner.StepNegatives(exs, negs)
	t.metrics.stepSeconds.Observe(time.Since(began).Seconds())
	t.run.batches++
	t.run.examples += int64(len(exs))
	t.run.tokens += tokens
	t.step.Store(stats.Step)
	if t.observe != nil {
		t.observe(stats)
	}

	m := t.metrics
	m.batches.Inc()
	m.examples.Add(float64(len(exs)))
	m.tokens.Add(float64(tokens))
	m.step.Set(float64(stats.Step))
	if stats.Updated {
		m.steps.Inc()
	}
	m.loss.WithLabelValues("total").Set(stats.Loss)
	m.loss.WithLabelValues("contrastive").Set(stats.Contrastive)
	m.loss.WithLabelValues("mlm").Set(stats.MLM)
	m.accuracy.Set(stats.Accuracy)
	m.lr.Set(stats.LR)
	m.epoch.Set(float64(b.Epoch))
	m.stage.Set(float64(b.Stage))
	m.competence.Set(b.Competence)

	t.mu.Lock()
	st := &t.st
	st.Step, st.Batches, st.ExamplesSeen, st.TokensSeen = stats.Step, t.run.batches, t.run.examples, t.run.tokens
	st.Losses = Losses{Total: stats.Loss, Contrastive: stats.Contrastive, MLM: stats.MLM}
	st.Accuracy, st.LR = stats.Accuracy, stats.LR
	st.Curriculum = CurriculumStatus{Stage: b.Stage, Competence: b.Competence, PlanVersion: b.PlanVersion}
	st.Lake.Epoch = b.Epoch
	st.Lake.BatchSeq = b.Seq
	h := st.Health
	t.mu.Unlock()
	if stats.Updated {
		t.hist.add(schemas.TrainHistory{
			Step: stats.Step, Time: time.Now().UTC(), ExamplesSeen: t.run.examples, TokensSeen: t.run.tokens,
			LR: float32(stats.LR), Loss: float32(stats.Loss), LossInfoNCE: float32(stats.Contrastive), LossMLM: float32(stats.MLM),
			Accuracy: float32(stats.Accuracy), Std: float32(h.Std), Alignment: float32(h.Alignment), Uniformity: float32(h.Uniformity),
			RankMe: float32(h.RankMe), Stage: b.Stage, Collapsed: h.Collapsed,
			DriftMixTV: float32(t.run.alert.tv), DriftAlert: t.run.alert.on,
		})
	}
	return stats
}

func recordID(topic string, partition int32, offset int64) string {
	buf := make([]byte, 0, len(topic)+24)
	buf = append(buf, topic...)
	buf = append(buf, '/')
	buf = strconv.AppendInt(buf, int64(partition), 10)
	buf = append(buf, '/')
	buf = strconv.AppendInt(buf, offset, 10)
	return string(buf)
}

// updateHealth computes the learner's health and the drift figures and
// exports them.
func (t *Trainer) updateHealth(step int64) {
	h := t.learner.Health()
	m := t.metrics
	m.std.Set(h.Std)
	m.alignment.Set(h.Alignment)
	m.uniformity.Set(h.Uniformity)
	m.rankMe.Set(h.RankMe)
	m.queueStaleness.Set(h.QueueStaleness)
	m.queueLen.Set(float64(h.QueueLen))
	if h.Collapsed {
		m.collapsed.Set(1)
		m.collapses.Inc()
		t.log.Error("representation collapse", "step", step, "std", h.Std, "rankme", h.RankMe)
	} else {
		m.collapsed.Set(0)
	}
	d := DriftStatus{Recent: t.run.drift.shift()}
	if t.local != nil {
		ss := t.local.Status()
		d.Window = ss.Drift.Window
		d.DomainTV, d.EntropyPSI, d.LengthPSI = ss.Drift.DomainTV, ss.Drift.EntropyPSI, ss.Drift.LengthPSI
		m.driftDomainTV.Set(d.DomainTV)
		m.driftEntropyPSI.Set(d.EntropyPSI)
		m.driftLengthPSI.Set(d.LengthPSI)
		m.lakeWindow.Set(float64(ss.Window))
		m.poolRecords.Set(float64(ss.PoolRecords))
	}
	m.recentDomainTV.Set(d.Recent.DomainTV)
	m.recentEntropyPSI.Set(d.Recent.EntropyPSI)
	m.recentLengthPSI.Set(d.Recent.LengthPSI)
	a := t.run.alert
	rose, fell := a.update(time.Now())
	d.Mix = MixDrift{TV: a.tv, Threshold: a.threshold, Alert: a.on, Moves: a.moves(3)}
	if a.on {
		d.Mix.Since = a.since.UTC()
	}
	m.driftMixTV.Set(a.tv)
	m.driftAlert.Set(b2f(a.on))
	switch {
	case rose:
		m.driftAlerts.Inc()
		t.log.Warn("domain mix drift: the recent mix left the trailing one", "step", step, "tv", a.tv, "threshold", a.threshold, "moves", d.Mix.Moves)
	case fell:
		t.log.Info("domain mix drift over: the trailing mix caught up", "step", step, "tv", a.tv)
	}
	t.mu.Lock()
	t.st.Health = HealthStatus{
		Step: step, Std: h.Std, Alignment: h.Alignment, Uniformity: h.Uniformity, RankMe: h.RankMe,
		QueueStaleness: h.QueueStaleness, QueueLen: h.QueueLen, Samples: h.Samples, Collapsed: h.Collapsed,
	}
	t.st.Drift = d
	t.mu.Unlock()
}

// checkpoint writes the trainer's state as the checkpoint of the current
// step.
func (t *Trainer) checkpoint(ctx context.Context, why stopReason) error {
	began := time.Now()
	// Serialising makes two copies of the state (the learner's blob and the
	// checkpoint object, 200 MB each at the default size). Collecting
	// before and after keeps the peak near live heap plus those copies, and
	// hands them back to the OS at once instead of letting the heap grow to
	// twice that before the next collection.
	debug.FreeOSMemory()
	err := t.writeCheckpoint(ctx, why)
	debug.FreeOSMemory()
	t.metrics.checkpointSeconds.Observe(time.Since(began).Seconds())
	if err != nil {
		t.metrics.checkpointFailures.Inc()
		return err
	}
	return nil
}

func (t *Trainer) writeCheckpoint(ctx context.Context, why stopReason) error {
	// The history of the steps up to this one goes out first: a committed
	// checkpoint always has its history, and rows after it are replayed
	// after a crash (see resume).
	if err := t.hist.flush(ctx); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	blob, err := t.learner.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: checkpoint: learner: %w", err)
	}
	var cursor []byte
	var window, epoch int64
	if t.local != nil {
		if cursor, err = t.local.Cursor(); err != nil {
			return fmt.Errorf("train: checkpoint: sampler cursor: %w", err)
		}
		ss := t.local.Status()
		window, epoch = ss.Window, ss.Epoch
	}
	step := t.learner.Steps()
	ck := &Checkpoint{
		Meta: CheckpointMeta{
			Step: step, Batches: t.run.batches, ExamplesSeen: t.run.examples, TokensSeen: t.run.tokens,
			Time: time.Now().UTC(), LakeWindow: window, Epoch: epoch, ConfigHash: t.hash,
		},
		Learner: blob, Cursor: cursor,
	}
	key, err := t.ckpts.Save(ctx, ck)
	if err != nil {
		return err
	}
	t.run.ckptStep, t.run.ckptBatches, t.run.ckptTime = step, t.run.batches, time.Now()
	t.metrics.checkpointStep.Set(float64(step))
	t.metrics.checkpointBytes.Set(float64(len(blob) + len(cursor)))
	t.mu.Lock()
	t.st.CheckpointStep, t.st.CheckpointKey, t.st.CheckpointTime = step, key, ck.Meta.Time
	t.mu.Unlock()
	t.log.Info("checkpoint", "key", key, "reason", string(why), "bytes", len(blob)+len(cursor), "seconds", time.Since(ck.Meta.Time).Seconds())
	return nil
}

func (t *Trainer) fail(err error) {
	t.mu.Lock()
	t.runErr = err
	t.mu.Unlock()
}

func (t *Trainer) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.runErr
}

// promotedEncoder returns the promoted checkpoint's encoder, or nil while
// none is promoted.
func (t *Trainer) promotedEncoder() *servedEncoder { return t.promoted.Load() }

// Embed embeds texts with the current weights (L2-normalised vectors).
func (t *Trainer) Embed(texts []string) [][]float32 { return t.learner.Embed(texts) }

// TrainerStatus is the JSON of GET /v1/status. Non-finite figures (a
// loss before the first step) are written as -1.
type TrainerStatus struct {
	Step           int64            `json:"step"`
	Batches        int64            `json:"batches"`
	ExamplesSeen   int64            `json:"examples_seen"`
	TokensSeen     int64            `json:"tokens_seen"`
	CheckpointStep int64            `json:"checkpoint_step"` // -1 before the first
	CheckpointKey  string           `json:"checkpoint_key,omitempty"`
	CheckpointTime time.Time        `json:"checkpoint_time,omitzero"`
	ResumedFrom    string           `json:"resumed_from,omitempty"` // checkpoint key, "" for a fresh start
	MaxSteps       int64            `json:"max_steps,omitempty"`
	Lake           LakeStatus       `json:"lake"`
	Curriculum     CurriculumStatus `json:"curriculum"`
	Losses         Losses           `json:"losses"`
	Accuracy       float64          `json:"accuracy"`
	LR             float64          `json:"lr"`
	Health         HealthStatus     `json:"health"`
	Drift          DriftStatus      `json:"drift"`
	Ready          bool             `json:"ready"`
	StartedAt      time.Time        `json:"started_at"`
	UptimeS        float64          `json:"uptime_s"`
	// ExamplesPerS and TokensPerS are this process's training rates: from
	// its first batch (the sampler has loaded the lake by then) to now, or
	// to the stop.
	ExamplesPerS float64 `json:"examples_per_s"`
	TokensPerS   float64 `json:"tokens_per_s"`
	Error        string  `json:"error,omitempty"`
	// Promoted names the promoted checkpoint (step -1: none yet);
	// LastEval is the newest evaluation (absent before the first).
	Promoted PromotedStatus `json:"promoted"`
	LastEval *EvalStatus    `json:"last_eval,omitempty"`

	trainStart, trainEnd           time.Time
	examplesAtStart, tokensAtStart int64
}

// LakeStatus is the trainer's position in the lake.
type LakeStatus struct {
	Window      int64  `json:"window"`       // newest committed curated window the sampler loaded
	PoolRecords int64  `json:"pool_records"` // records the sampler can draw from
	Epoch       int64  `json:"epoch"`
	BatchSeq    int64  `json:"batch_seq"` // sequence number of the last batch
	Sampler     string `json:"sampler"`   // "local" or the remote address
	// Mixture is each domain's probability for the next fresh example,
	// BaseMixture what it would be without target weighting and the
	// novelty boost (a local sampler only); Targeted is set when target
	// weighting steers the mixture.
	Mixture     map[string]float64 `json:"mixture,omitempty"`
	BaseMixture map[string]float64 `json:"base_mixture,omitempty"`
	Targeted    bool               `json:"targeted"`
}

// CurriculumStatus is the curriculum position of the last batch.
type CurriculumStatus struct {
	Stage       int32   `json:"stage"`
	Competence  float64 `json:"competence"`
	PlanVersion int64   `json:"plan_version"`
}

// Losses are the last step's losses per objective.
type Losses struct {
	Total       float64 `json:"total"`
	Contrastive float64 `json:"contrastive"`
	MLM         float64 `json:"mlm"`
}

// HealthStatus is the learner's label-free health at Step.
type HealthStatus struct {
	Step           int64   `json:"step"`
	Std            float64 `json:"std"`
	Alignment      float64 `json:"alignment"`
	Uniformity     float64 `json:"uniformity"`
	RankMe         float64 `json:"rankme"`
	QueueStaleness float64 `json:"queue_staleness"`
	QueueLen       int     `json:"queue_len"`
	Samples        int     `json:"samples"` // embeddings in the rolling sample
	Collapsed      bool    `json:"collapsed"`
}

// DriftStatus is the shift of the incoming data. The first fields come
// from the sampler (its newest committed window against what it emitted;
// zero with a remote sampler); Recent compares the last few thousand
// examples trained on with everything this process trained on.
type DriftStatus struct {
	Window     int64      `json:"window"`
	DomainTV   float64    `json:"domain_tv"`
	EntropyPSI float64    `json:"entropy_psi"`
	LengthPSI  float64    `json:"length_psi"`
	Recent     DriftShift `json:"recent"`
	Mix        MixDrift   `json:"mix"`
}

// MixDrift is the domain-mix drift alert: the total variation between the
// recent and the trailing domain mix of the examples trained on, the
// threshold, whether the alert is raised and since when, and the domains
// whose shares moved most.
type MixDrift struct {
	TV        float64      `json:"tv"`
	Threshold float64      `json:"threshold"`
	Alert     bool         `json:"alert"`
	Since     time.Time    `json:"since,omitzero"`
	Moves     []DomainMove `json:"moves,omitempty"`
}

// DriftShift compares two distributions of the audit columns: total
// variation of the domain mix, population stability index of word entropy
// and length in words.
type DriftShift struct {
	DomainTV   float64 `json:"domain_tv"`
	EntropyPSI float64 `json:"entropy_psi"`
	LengthPSI  float64 `json:"length_psi"`
}

// Status returns a snapshot of the trainer's state (GET /v1/status).
func (t *Trainer) Status() TrainerStatus {
	t.mu.Lock()
	st := t.st
	if t.runErr != nil {
		st.Error = t.runErr.Error()
	}
	t.mu.Unlock()
	now := time.Now()
	st.Ready = t.ready.Load()
	st.MaxSteps = t.cfg.MaxSteps
	st.Promoted = PromotedStatus{Step: -1}
	if p := t.promoted.Load(); p != nil {
		st.Promoted = PromotedStatus{Step: p.step, Key: p.key}
	}
	st.UptimeS = now.Sub(t.started).Seconds()
	if !st.trainStart.IsZero() {
		end := now
		if !st.trainEnd.IsZero() {
			end = st.trainEnd
		}
		if el := end.Sub(st.trainStart).Seconds(); el > 0 {
			st.ExamplesPerS = float64(st.ExamplesSeen-st.examplesAtStart) / el
			st.TokensPerS = float64(st.TokensSeen-st.tokensAtStart) / el
		}
	}
	st.Lake.Sampler = "local"
	if t.local != nil {
		ss := t.local.Status()
		st.Lake.Window, st.Lake.PoolRecords = ss.Window, ss.PoolRecords
		st.Lake.Mixture, st.Lake.BaseMixture, st.Lake.Targeted = ss.Mixture, ss.BaseMixture, ss.Targeted
		if st.Batches == 0 {
			st.Lake.Epoch = ss.Epoch
			st.Curriculum = CurriculumStatus{Stage: ss.Stage, Competence: ss.Competence, PlanVersion: ss.PlanVersion}
		}
	} else {
		st.Lake.Sampler = t.cfg.SamplerAddr
	}
	finite(&st.Losses.Total, &st.Losses.Contrastive, &st.Losses.MLM, &st.Accuracy, &st.LR,
		&st.Health.Std, &st.Health.Alignment, &st.Health.Uniformity, &st.Health.RankMe, &st.Health.QueueStaleness,
		&st.Drift.DomainTV, &st.Drift.EntropyPSI, &st.Drift.LengthPSI,
		&st.Drift.Recent.DomainTV, &st.Drift.Recent.EntropyPSI, &st.Drift.Recent.LengthPSI,
		&st.Curriculum.Competence, &st.ExamplesPerS, &st.TokensPerS)
	return st
}

// finite replaces NaN and infinities, which JSON cannot carry, by -1.
func finite(xs ...*float64) {
	for _, x := range xs {
		if math.IsNaN(*x) || math.IsInf(*x, 0) {
			*x = -1
		}
	}
}

// trainerMetrics are the trainer's Prometheus series, all named
// thresher_train_*.
type trainerMetrics struct {
	steps, batches, examples, tokens, collapses, checkpointFailures, embedTexts, classifyTexts prometheus.Counter
	evalFailures, promotions, rejections, driftAlerts                                          prometheus.Counter
	evalStep, promotedStep                                                                     prometheus.Gauge
	evalAccuracy, evalMacroF1                                                                  *prometheus.GaugeVec
	evalSeconds                                                                                prometheus.Histogram
	step, accuracy, lr, epoch, stage, competence, lakeWindow, poolRecords                      prometheus.Gauge
	std, alignment, uniformity, rankMe, queueStaleness, queueLen, collapsed                    prometheus.Gauge
	driftDomainTV, driftEntropyPSI, driftLengthPSI                                             prometheus.Gauge
	recentDomainTV, recentEntropyPSI, recentLengthPSI                                          prometheus.Gauge
	driftMixTV, driftAlert                                                                     prometheus.Gauge
	checkpointStep, checkpointBytes, ready                                                     prometheus.Gauge
	loss                                                                                       *prometheus.GaugeVec
	stepSeconds, checkpointSeconds                                                             prometheus.Histogram
}

func newTrainerMetrics(reg prometheus.Registerer) (*trainerMetrics, error) {
	var cs []prometheus.Collector
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "thresher_train_" + name, Help: help})
		cs = append(cs, c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "thresher_train_" + name, Help: help})
		cs = append(cs, g)
		return g
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "thresher_train_" + name, Help: help, Buckets: buckets})
		cs = append(cs, h)
		return h
	}
	m := &trainerMetrics{
		steps:              counter("steps_total", "Optimiser steps taken by this process."),
		batches:            counter("batches_total", "Sampler batches trained on by this process."),
		examples:           counter("examples_total", "Examples trained on by this process."),
		tokens:             counter("tokens_total", "Words of the source texts trained on by this process (once per record used)."),
		collapses:          counter("collapse_total", "Health checks that found the representation collapsed (std or effective rank under threshold)."),
		checkpointFailures: counter("checkpoint_failures_total", "Checkpoints that failed to be written."),
		embedTexts:         counter("embed_texts_total", "Texts embedded through /v1/embed."),
		classifyTexts:      counter("classify_texts_total", "Texts classified through /v1/classify."),
		evalFailures:       counter("eval_failures_total", "Periodic evaluations that failed or could not be recorded."),
		promotions:         counter("promotions_total", "Checkpoints promoted by the gate."),
		rejections:         counter("promotion_rejections_total", "Evaluated checkpoints the gate refused."),
		evalStep:           gauge("eval_step", "Step of the last evaluated checkpoint (-1: none)."),
		promotedStep:       gauge("promoted_step", "Step of the promoted checkpoint (-1: none)."),
		evalSeconds:        hist("eval_seconds", "Time of one periodic evaluation.", prometheus.ExponentialBuckets(0.05, 2, 14)),
		step:               gauge("step", "Optimiser steps of the learner, across restarts."),
		accuracy:           gauge("accuracy", "Instance-discrimination accuracy of the last step."),
		lr:                 gauge("lr", "Learning rate of the last step."),
		epoch:              gauge("epoch", "The sampler's epoch over the curated data."),
		stage:              gauge("curriculum_stage", "Curriculum stage of the last batch."),
		competence:         gauge("curriculum_competence", "Curriculum competence of the last batch."),
		lakeWindow:         gauge("lake_window", "Newest committed curated window the sampler loaded."),
		poolRecords:        gauge("pool_records", "Records the sampler draws from."),
		std:                gauge("embedding_std", "Mean per-dimension standard deviation of normalised embeddings."),
		alignment:          gauge("alignment", "Alignment of positive pairs (lower is better)."),
		uniformity:         gauge("uniformity", "Uniformity of embeddings (lower is better)."),
		rankMe:             gauge("rankme", "Effective rank (RankMe) of embeddings on a rolling sample."),
		queueStaleness:     gauge("queue_staleness", "Mean age in steps of the momentum queue's keys."),
		queueLen:           gauge("queue_len", "Keys in the momentum queue."),
		collapsed:          gauge("collapsed", "1 while the last health check found a collapse."),
		driftDomainTV:      gauge("drift_domain_tv", "Total variation between the newest lake window's domain mix and the mix trained on."),
		driftEntropyPSI:    gauge("drift_entropy_psi", "Population stability index of word entropy, newest lake window against trained on."),
		driftLengthPSI:     gauge("drift_length_psi", "Population stability index of length in words, newest lake window against trained on."),
		recentDomainTV:     gauge("drift_recent_domain_tv", "Total variation of the domain mix, recent examples against all trained on by this process."),
		recentEntropyPSI:   gauge("drift_recent_entropy_psi", "Population stability index of word entropy, recent examples against all trained on by this process."),
		recentLengthPSI:    gauge("drift_recent_length_psi", "Population stability index of length in words, recent examples against all trained on by this process."),
		driftMixTV:         gauge("drift_mix_tv", "Total variation between the domain mix of the examples trained on recently (drift_alert_recent) and the trailing mix (drift_alert_trailing)."),
		driftAlert:         gauge("drift_alert", "1 while drift_mix_tv is above the drift_alert threshold (until it falls below half of it)."),
		driftAlerts:        counter("drift_alerts_total", "Domain-mix drift alerts raised by this process."),
		checkpointStep:     gauge("checkpoint_step", "Step of the last checkpoint written or resumed from (-1: none)."),
		checkpointBytes:    gauge("checkpoint_bytes", "Size of the last checkpoint's learner state and cursor."),
		ready:              gauge("ready", "1 once the trainer has resumed from its checkpoint or started fresh."),
		stepSeconds:        hist("step_seconds", "Time of one learner step.", prometheus.ExponentialBuckets(0.001, 2, 14)),
		checkpointSeconds:  hist("checkpoint_seconds", "Time to write one checkpoint.", prometheus.ExponentialBuckets(0.005, 2, 14)),
	}
	m.loss = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thresher_train_loss", Help: "Loss of the last step by objective (total, contrastive, mlm)."}, []string{"objective"})
	evalLabels := []string{"task", "labels_per_class", "classifier"}
	m.evalAccuracy = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thresher_train_eval_accuracy", Help: "Test accuracy of the last evaluated checkpoint by task, label budget and classifier."}, evalLabels)
	m.evalMacroF1 = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thresher_train_eval_macro_f1", Help: "Test macro-F1 of the last evaluated checkpoint by task, label budget and classifier."}, evalLabels)
	cs = append(cs, m.loss, m.evalAccuracy, m.evalMacroF1)
	m.checkpointStep.Set(-1)
	m.evalStep.Set(-1)
	m.promotedStep.Set(-1)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("train: register metrics: %w", err)
		}
	}
	return m, nil
}

// driftTracker compares the distribution of the audit columns of recent
// examples (exponentially decayed, about recentExamples of them) with that
// of every example trained on.
type driftTracker struct {
	allDomain, recentDomain map[string]float64
	allEnt, recentEnt       [entropyBins]float64
	allLen, recentLen       [lengthBins]float64
	allTotal, recentTotal   float64
	decay                   float64
}

const (
	recentExamples = 4096
	entropyBins    = 24 // word entropy in bits, 0.5 wide, the last open
	lengthBins     = 16 // log2 of length in words, the last open
)

func newDriftTracker() *driftTracker {
	return &driftTracker{allDomain: map[string]float64{}, recentDomain: map[string]float64{}, decay: 1 - 1.0/recentExamples}
}

func (d *driftTracker) add(domain string, entropy float64, length int32) {
	eb := 0
	if entropy > 0 && !math.IsNaN(entropy) {
		eb = min(int(entropy*2), entropyBins-1)
	}
	lb := 0
	if length > 0 {
		lb = min(int(math.Log2(float64(length))), lengthBins-1)
	}
	d.recentTotal = d.recentTotal*d.decay + 1
	for k := range d.recentDomain {
		d.recentDomain[k] *= d.decay
	}
	for i := range d.recentEnt {
		d.recentEnt[i] *= d.decay
	}
	for i := range d.recentLen {
		d.recentLen[i] *= d.decay
	}
	d.recentDomain[domain]++
	d.recentEnt[eb]++
	d.recentLen[lb]++
	d.allDomain[domain]++
	d.allEnt[eb]++
	d.allLen[lb]++
	d.allTotal++
}

func (d *driftTracker) shift() DriftShift {
	if d.allTotal == 0 {
		return DriftShift{}
	}
	var tv float64
	for k, n := range d.allDomain {
		tv += math.Abs(d.recentDomain[k]/d.recentTotal - n/d.allTotal)
	}
	return DriftShift{
		DomainTV:   tv / 2,
		EntropyPSI: psi(d.recentEnt[:], d.allEnt[:], d.recentTotal, d.allTotal),
		LengthPSI:  psi(d.recentLen[:], d.allLen[:], d.recentTotal, d.allTotal),
	}
}

// psi is the population stability index of histogram p against q, with
// empty bins smoothed.
func psi(p, q []float64, pn, qn float64) float64 {
	const eps = 1e-4
	var s float64
	for i := range p {
		a, b := max(p[i]/pn, eps), max(q[i]/qn, eps)
		s += (a - b) * math.Log(a/b)
	}
	return s
}
