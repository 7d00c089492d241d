package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/sampler"
)

// ErrServiceConfig is wrapped by every error of ServiceConfig.Validate.
var ErrServiceConfig = errors.New("train: invalid service configuration")

// Defaults of ServiceConfig.
const (
	DefaultCheckpointSteps    = 1000
	DefaultCheckpointInterval = 60 * time.Second
	DefaultKeepCheckpoints    = 3
	DefaultHealthEvery        = 50
	DefaultMaxEmbedBytes      = 1 << 20
	DefaultMaxEmbedTexts      = 256
	DefaultMaxTextBytes       = 64 << 10
	DefaultEvalEvery          = 1000
	DefaultEvalDraws          = 3
	DefaultEvalMaxExamples    = 2000
	DefaultPromoteTolerance   = 0.01
	// DefaultDeterministicSeed is the seed of a deterministic run that sets
	// none.
	DefaultDeterministicSeed = 1
)

// ServiceConfig configures the trainer service (thresher train). It nests
// the learner's and the sampler's configurations; YAML keys are the yaml
// tags, durations are Go durations ("90s").
type ServiceConfig struct {
	// Lake is the lake folder: curated input and checkpoints/.
	Lake string `yaml:"lake"`
	// Listen is the HTTP address of /healthz, /readyz, /metrics, /v1/status
	// and /v1/embed ("" serves nothing).
	Listen string `yaml:"listen"`
	// SamplerAddr, when set, takes batches from a remote `thresher sample`
	// at host:port instead of a sampler in the process. A remote sampler's
	// position is not part of the checkpoint.
	SamplerAddr string `yaml:"sampler_addr"`
	// MaxSteps > 0 stops after that many optimiser steps (counted across
	// restarts); MaxDuration > 0 stops after that long (of this process).
	// Both write a final checkpoint. 0 runs until stopped.
	MaxSteps    int64         `yaml:"max_steps"`
	MaxDuration time.Duration `yaml:"max_duration"`
	// A checkpoint is written every CheckpointSteps optimiser steps or every
	// CheckpointInterval, whichever comes first, and on stop.
	CheckpointSteps    int64         `yaml:"checkpoint_steps"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// KeepCheckpoints is how many checkpoint objects retention keeps.
	KeepCheckpoints int `yaml:"keep_checkpoints"`
	// HealthEvery is how often, in optimiser steps, the health figures
	// (std, alignment, uniformity, RankMe) are computed.
	HealthEvery int64 `yaml:"health_every"`
	// DriftAlert is the total variation between the domain mix of the
	// examples trained on recently (an exponential moving average over
	// DriftAlertRecent) and the trailing mix (over DriftAlertTrailing) above
	// which thresher_train_drift_alert is raised; it is cleared below half
	// of it. 1 never raises it.
	DriftAlert         float64       `yaml:"drift_alert"`
	DriftAlertRecent   time.Duration `yaml:"drift_alert_recent"`
	DriftAlertTrailing time.Duration `yaml:"drift_alert_trailing"`
	// Deterministic makes a run reproducible bit for bit: one learner
	// worker, and DefaultDeterministicSeed when no seed is set.
	Deterministic bool `yaml:"deterministic"`
	// EvalTasks are the folders of the labeled tasks (eval.LoadTask) the
	// periodic evaluation scores every EvalEvery optimiser steps; they are
	// read by the evaluator given to NewTrainer (WithEvaluator), which
	// thresher train builds from these keys. Without an evaluator nothing
	// is evaluated and nothing promoted.
	EvalTasks []string `yaml:"eval_tasks"`
	EvalEvery int64    `yaml:"eval_every"`
	// EvalLabelsPerClass are the label budgets of the linear probe: whole
	// numbers, or "all" (default 16, 64).
	EvalLabelsPerClass []string `yaml:"eval_labels_per_class"`
	// EvalDraws is the number of seeded label draws per budget (3).
	EvalDraws int `yaml:"eval_draws"`
	// EvalMaxExamples caps the dev and test examples of each task (a fixed
	// seeded subsample; 2000) so an evaluation takes seconds, not minutes.
	EvalMaxExamples int `yaml:"eval_max_examples"`
	// PromoteTolerance is how far (in the metric's units, accuracy here)
	// a gated score may fall below the promoted checkpoint's before the
	// candidate is refused (0.01). Negative values are invalid; use a tiny
	// positive value for a strict gate.
	PromoteTolerance float64 `yaml:"promote_tolerance"`
	// Limits of POST /v1/embed.
	MaxEmbedBytes int64 `yaml:"max_embed_bytes"`
	MaxEmbedTexts int   `yaml:"max_embed_texts"`
	MaxTextBytes  int   `yaml:"max_text_bytes"`

	Learner Config         `yaml:"learner"`
	Sampler sampler.Config `yaml:"sampler"`
}

// SetDefaults fills every unset field with its default, the nested
// configurations included.
func (c *ServiceConfig) SetDefaults() {
	if c.CheckpointSteps == 0 {
		c.CheckpointSteps = DefaultCheckpointSteps
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.KeepCheckpoints == 0 {
		c.KeepCheckpoints = DefaultKeepCheckpoints
	}
	if c.HealthEvery == 0 {
		c.HealthEvery = DefaultHealthEvery
	}
	if c.DriftAlert == 0 {
		c.DriftAlert = DefaultDriftAlert
	}
	if c.DriftAlertRecent == 0 {
		c.DriftAlertRecent = DefaultDriftAlertRecent
	}
	if c.DriftAlertTrailing == 0 {
		c.DriftAlertTrailing = DefaultDriftAlertTrailing
	}
	if c.EvalEvery == 0 {
		c.EvalEvery = DefaultEvalEvery
	}
	if len(c.EvalLabelsPerClass) == 0 {
		c.EvalLabelsPerClass = []string{"16", "64"}
	}
	if c.EvalDraws == 0 {
		c.EvalDraws = DefaultEvalDraws
	}
	if c.EvalMaxExamples == 0 {
		c.EvalMaxExamples = DefaultEvalMaxExamples
	}
	if c.PromoteTolerance == 0 {
		c.PromoteTolerance = DefaultPromoteTolerance
	}
	if c.MaxEmbedBytes == 0 {
		c.MaxEmbedBytes = DefaultMaxEmbedBytes
	}
	if c.MaxEmbedTexts == 0 {
		c.MaxEmbedTexts = DefaultMaxEmbedTexts
	}
	if c.MaxTextBytes == 0 {
		c.MaxTextBytes = DefaultMaxTextBytes
	}
	if c.Deterministic {
		if c.Learner.Workers == 0 {
			c.Learner.Workers = 1
		}
		if c.Learner.Seed == 0 {
			c.Learner.Seed = DefaultDeterministicSeed
		}
		if c.Sampler.Seed == 0 {
			c.Sampler.Seed = DefaultDeterministicSeed
		}
	}
	c.Learner.SetDefaults()
	c.Sampler.SetDefaults()
}

// Validate reports every problem at once, in an error wrapping
// ErrServiceConfig.
func (c *ServiceConfig) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Lake == "" {
		add("lake: a lake folder is required")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen: %q is not host:port: %v", c.Listen, err)
		}
	}
	if c.SamplerAddr != "" {
		if _, _, err := net.SplitHostPort(c.SamplerAddr); err != nil {
			add("sampler_addr: %q is not host:port: %v", c.SamplerAddr, err)
		}
	}
	if c.MaxSteps < 0 {
		add("max_steps: %d must not be negative", c.MaxSteps)
	}
	if c.MaxDuration < 0 {
		add("max_duration: %v must not be negative", c.MaxDuration)
	}
	if c.CheckpointSteps < 1 {
		add("checkpoint_steps: %d must be positive", c.CheckpointSteps)
	}
	if c.CheckpointInterval <= 0 {
		add("checkpoint_interval: %v must be positive", c.CheckpointInterval)
	}
	if c.KeepCheckpoints < 1 {
		add("keep_checkpoints: %d must be at least 1", c.KeepCheckpoints)
	}
	if c.HealthEvery < 1 {
		add("health_every: %d must be positive", c.HealthEvery)
	}
	if !(c.DriftAlert > 0 && c.DriftAlert <= 1) {
		add("drift_alert: %g is not in (0, 1] (a total variation; 1 never alerts)", c.DriftAlert)
	}
	if c.DriftAlertRecent <= 0 {
		add("drift_alert_recent: %v must be positive", c.DriftAlertRecent)
	}
	if c.DriftAlertTrailing <= c.DriftAlertRecent {
		add("drift_alert_trailing: %v must be longer than drift_alert_recent (%v)", c.DriftAlertTrailing, c.DriftAlertRecent)
	}
	for i, d := range c.EvalTasks {
		if strings.TrimSpace(d) == "" {
			add("eval_tasks[%d]: empty folder name", i)
		}
	}
	if c.EvalEvery < 1 {
		add("eval_every: %d must be positive", c.EvalEvery)
	}
	if _, err := ParseLabelBudgets(c.EvalLabelsPerClass); err != nil {
		add("eval_labels_per_class: %v", err)
	}
	if c.EvalDraws < 1 || c.EvalDraws > 1000 {
		add("eval_draws: %d is not in [1, 1000]", c.EvalDraws)
	}
	if c.EvalMaxExamples < 1 {
		add("eval_max_examples: %d must be positive", c.EvalMaxExamples)
	}
	if c.PromoteTolerance < 0 || c.PromoteTolerance != c.PromoteTolerance {
		add("promote_tolerance: %v must not be negative", c.PromoteTolerance)
	}
	if c.MaxEmbedBytes < 64 {
		add("max_embed_bytes: %d must be at least 64", c.MaxEmbedBytes)
	}
	if c.MaxEmbedTexts < 1 {
		add("max_embed_texts: %d must be positive", c.MaxEmbedTexts)
	}
	if c.MaxTextBytes < 1 {
		add("max_text_bytes: %d must be positive", c.MaxTextBytes)
	}
	if c.Deterministic && c.Learner.Workers != 1 {
		add("learner.workers: %d, but a deterministic run needs 1", c.Learner.Workers)
	}
	if err := c.Learner.Validate(); err != nil {
		add("learner: %s", indent(err))
	}
	if err := c.Sampler.Validate(); err != nil {
		add("sampler: %s", indent(err))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrServiceConfig, strings.Join(errs, "\n  - "))
}

// ParseLabelBudgets parses label budgets such as ["16", "64", "all"]
// (each item may itself be a comma-separated list) into labels per class,
// 0 meaning all.
func ParseLabelBudgets(items []string) ([]int, error) {
	var out []int
	for _, item := range items {
		for _, p := range strings.Split(item, ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == "":
				continue
			case p == "all":
				out = append(out, 0)
				continue
			}
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q is not a positive number or \"all\"", p)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no label budget")
	}
	return out, nil
}

// indent nests a multi-line error under a list item.
func indent(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n    ")
}

// ConfigHash fingerprints the learner and sampler configurations; a
// checkpoint records it, and resuming under another one is logged.
func ConfigHash(learner Config, smp sampler.Config) string {
	data, _ := json.Marshal(struct {
		Learner Config
		Sampler sampler.Config
	}{learner, smp})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
