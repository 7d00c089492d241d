package eval

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/thresher-ml/thresher/train"
)

// PeriodicConfig configures Periodic, the trainer's evaluator.
type PeriodicConfig struct {
	// Tasks are task folders (LoadTask).
	Tasks []string
	// LabelsPerClass are the label budgets (AllLabels for all); 16, 64.
	LabelsPerClass []LabelsPerClass
	// Draws is the number of seeded label draws per budget (3).
	Draws int
	// Seed fixes the draws and the subsample, so every checkpoint is
	// scored on the same examples.
	Seed uint64
	// MaxExamples caps the dev and test examples of each task (a seeded
	// subsample; 0 keeps all).
	MaxExamples int
	// Cs is the grid of the probe's C (DefaultCs when empty).
	Cs []float64
	// Workers is the goroutines of the fits (GOMAXPROCS when 0).
	Workers int
}

// Periodic is the evaluator the trainer calls every eval_every steps
// (train.Evaluator): the linear probe (logistic regression, C chosen on
// dev) on the frozen encoder's features, for each task and label budget,
// with the same seeded draws and the same dev and test subsample at every
// checkpoint, so scores of two checkpoints differ only by the encoder. It
// reports accuracy and macro-F1 (features "encoder", classifier
// "linear"). The tasks are loaded once, by NewPeriodic. Safe for
// concurrent use.
type Periodic struct {
	cfg   PeriodicConfig
	tasks []*Task
	log   *slog.Logger
}

var _ train.Evaluator = (*Periodic)(nil)

// NewPeriodic loads the tasks of cfg and subsamples them. log may be nil.
func NewPeriodic(cfg PeriodicConfig, log *slog.Logger) (*Periodic, error) {
	if len(cfg.Tasks) == 0 {
		return nil, fmt.Errorf("%w: no task to evaluate on", ErrConfig)
	}
	tasks := make([]*Task, 0, len(cfg.Tasks))
	for _, dir := range cfg.Tasks {
		task, err := LoadTask(dir)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, task)
	}
	return NewPeriodicTasks(tasks, cfg, log)
}

// NewPeriodicTasks is NewPeriodic over tasks already loaded (cfg.Tasks is
// ignored); the tasks are not modified.
func NewPeriodicTasks(tasks []*Task, cfg PeriodicConfig, log *slog.Logger) (*Periodic, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: no task to evaluate on", ErrConfig)
	}
	if len(cfg.LabelsPerClass) == 0 {
		cfg.LabelsPerClass = []LabelsPerClass{16, 64}
	}
	if cfg.Draws == 0 {
		cfg.Draws = 3
	}
	if cfg.MaxExamples < 0 {
		return nil, fmt.Errorf("%w: max examples %d is negative", ErrConfig, cfg.MaxExamples)
	}
	p := &Periodic{cfg: cfg, log: log}
	seen := map[string]bool{}
	for _, t := range tasks {
		if seen[t.Name] {
			return nil, fmt.Errorf("%w: two tasks named %q", ErrConfig, t.Name)
		}
		seen[t.Name] = true
		task := *t
		if cfg.MaxExamples > 0 {
			task.Dev = subsample(task.Dev, cfg.MaxExamples, cfg.Seed)
			task.Test = subsample(task.Test, cfg.MaxExamples, cfg.Seed+1)
		}
		p.tasks = append(p.tasks, &task)
	}
	probe := p.probeConfig()
	probe.SetDefaults()
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Tasks returns the loaded (subsampled) tasks.
func (p *Periodic) Tasks() []*Task { return p.tasks }

func (p *Periodic) probeConfig() Config {
	return Config{LabelsPerClass: p.cfg.LabelsPerClass, Draws: p.cfg.Draws, Seed: p.cfg.Seed, Cs: p.cfg.Cs, Workers: p.cfg.Workers,
		Classifiers: []string{ClassifierLinear}}
}

// Evaluate scores enc (its train.DefaultLayer representation, as thresher
// eval's "encoder") on every task. It embeds each task's texts once and
// fits the linear probe for every budget and draw (Evaluate also fits the
// kNN probe; its rows are dropped, the gate reads the linear probe).
func (p *Periodic) Evaluate(ctx context.Context, enc *train.Encoder, step int64) ([]train.EvalScore, error) {
	// The representation thresher eval probes by default.
	f, err := NewLayerFeatures(FeaturesEncoder, enc, train.DefaultLayer, p.cfg.Workers)
	if err != nil {
		return nil, err
	}
	feats := []Features{f}
	var out []train.EvalScore
	for _, task := range p.tasks {
		began := time.Now()
		res, err := Evaluate(ctx, task, feats, p.probeConfig(), nil)
		if err != nil {
			return nil, fmt.Errorf("eval: task %s at step %d: %w", task.Name, step, err)
		}
		for _, r := range res {
			if r.Classifier != ClassifierLinear {
				continue
			}
			base := train.EvalScore{Task: r.Task, Features: r.Features, Classifier: r.Classifier, LabelsPerClass: int(r.LabelsPerClass), Draws: r.Draws}
			acc, f1 := base, base
			acc.Metric, acc.Value, acc.Std = train.MetricAccuracy, r.AccuracyMean, r.AccuracyStd
			f1.Metric, f1.Value, f1.Std = train.MetricMacroF1, r.MacroF1Mean, r.MacroF1Std
			out = append(out, acc, f1)
		}
		p.log.Debug("evaluated", "task", task.Name, "step", step, "seconds", time.Since(began).Seconds())
	}
	return out, nil
}

// subsample keeps n examples of s chosen by a seeded permutation, in their
// original order.
func subsample(s Split, n int, seed uint64) Split {
	if s.Len() <= n {
		return s
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed_7a5c))
	idx := rng.Perm(s.Len())[:n]
	slices.Sort(idx)
	out := Split{IDs: make([]string, n), Texts: make([]string, n), Labels: make([]int, n)}
	for i, j := range idx {
		out.Texts[i], out.Labels[i] = s.Texts[j], s.Labels[j]
		if j < len(s.IDs) {
			out.IDs[i] = s.IDs[j]
		}
	}
	return out
}
