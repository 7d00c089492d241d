package sampler

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/curate"
)

// Mixtures: how a batch's fresh examples are spread over domains.
const (
	MixtureProportional = "proportional" // p_d ∝ n_d, the eligible records of domain d in the pool
	MixtureTemperature  = "temperature"  // p_d ∝ n_d^(1/T)
	MixtureFixed        = "fixed"        // p_d ∝ Weights[d] (Weights["*"] for domains not listed)
)

// PacingNone turns the curriculum off: every stage is open from the start.
const PacingNone = "none"

// Defaults of Config, applied by SetDefaults to zero fields.
const (
	DefaultBatchSize          = 256
	DefaultPoll               = time.Second
	DefaultPoolRecords        = 400_000
	DefaultReplayPerDomain    = 2000
	DefaultReplayRatio        = 0.1
	DefaultTemperature        = 2.0
	DefaultPacing             = PacingNone
	DefaultCurriculumExamples = 300_000
	DefaultDropout            = 0.1
	DefaultMaskFraction       = 0.15
	DefaultMaskSpan           = 3.0
	DefaultCropMin            = 0.6
	DefaultStrength           = 1.0
	DefaultViews              = ViewsSplit
	DefaultMaskToken          = "[MASK]"
	DefaultNegatives          = 32
	DefaultTargetWeight       = 1.0
	DefaultNoveltyBoost       = 4.0
	DefaultNoveltyExamples    = 200_000
	DefaultNegativePool       = 4096
)

// Config configures a Sampler. Zero fields take the defaults above
// (SetDefaults). Knobs whose zero value is a meaningful setting (a rate, a
// count that may be none) read a negative value as "off": replay_ratio: -1
// turns replay off, dropout: -1 turns token dropout off, and so on.
type Config struct {
	// Seed seeds every random choice; the same lake, Config and cursor
	// give the same batches.
	Seed uint64 `yaml:"seed"`
	// BatchSize is the number of examples per batch.
	BatchSize int `yaml:"batch_size"`
	// Poll is how often the lake is checked for newly committed windows.
	Poll time.Duration `yaml:"poll"`
	// PoolRecords bounds the pool of fresh records: the newest
	// PoolRecords curated records loaded; older ones leave it (they live
	// on in the replay reservoir when sampled into it).
	PoolRecords int `yaml:"pool_records"`

	// Mixture is proportional, temperature or fixed.
	Mixture string `yaml:"mixture"`
	// Temperature T of the temperature mixture (T > 1 flattens it).
	Temperature float64 `yaml:"temperature"`
	// Weights of the fixed mixture, by domain; "*" weighs every domain not
	// listed (default 0: not sampled).
	Weights map[string]float64 `yaml:"weights,omitempty"`
	// TargetWeight β steers the mixture towards a target domain when the
	// lake was curated with a target sample (curate --target): each record
	// counts exp(β × target_similarity) in its domain's size n_d instead
	// of 1, so a domain's share follows its importance mass as in DSIR
	// importance resampling. Negative turns it off; on a lake curated
	// without a target it has no effect.
	TargetWeight float64 `yaml:"target_weight"`
	// NoveltyBoost B lets a domain that was sampled less than its mixture
	// share over the last NoveltyExamples examples (a domain that just
	// appeared in the stream) catch up: its weight is multiplied by
	// 1 + B × (1 - recent share / mixture share), while the deficit
	// lasts (default 4: it cut the time a running trainer takes to learn a
	// new domain, docs/results.md). Negative turns it off.
	NoveltyBoost    float64 `yaml:"novelty_boost"`
	NoveltyExamples int64   `yaml:"novelty_examples"`

	// Pacing selects the plan's pacing (linear, root, step) or none (the
	// default: at equal steps pacing measured no gain downstream; see
	// docs/results.md).
	Pacing string `yaml:"pacing"`
	// CurriculumExamples is the number of emitted examples over which
	// training progress t runs from 0 to 1 (about one pass over the real
	// stream's curated records by default).
	CurriculumExamples int64 `yaml:"curriculum_examples"`

	// ReplayRatio of each batch is drawn from the replay reservoir
	// (negative: no replay).
	ReplayRatio float64 `yaml:"replay_ratio"`
	// ReplayPerDomain is the reservoir's quota of records per domain
	// (negative: no replay).
	ReplayPerDomain int `yaml:"replay_per_domain"`

	// Views: ViewsAugment makes each view by cropping, dropout and
	// masking the record's words; ViewsSplit deals the words into two
	// disjoint halves (each word to one view, at random, in order), and
	// makes each view's masked words (the word-prediction targets) the
	// words of the other view.
	Views string `yaml:"views"`
	// Strength scales every knob: the effective dropout and mask
	// fraction are Strength times theirs, and a crop keeps at least
	// 1 - Strength*(1-CropMin) of the words.
	Strength     float64 `yaml:"strength"`
	Dropout      float64 `yaml:"dropout"`       // probability that a word is dropped
	MaskFraction float64 `yaml:"mask_fraction"` // share of the words replaced by MaskToken
	MaskSpan     float64 `yaml:"mask_span"`     // mean length of a masked span, in words (geometric)
	CropMin      float64 `yaml:"crop_min"`      // a crop keeps at least this share of the words (1: no cropping)
	MaskToken    string  `yaml:"mask_token"`    // replaces each masked word in a view

	// Negatives is the number of candidate negatives per batch (negative:
	// none), drawn from a ring of the NegativePool most recently emitted
	// records.
	Negatives    int `yaml:"negatives"`
	NegativePool int `yaml:"negative_pool"`
}

// SetDefaults fills zero fields with the defaults.
func (c *Config) SetDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.PoolRecords == 0 {
		c.PoolRecords = DefaultPoolRecords
	}
	if c.Mixture == "" {
		c.Mixture = MixtureProportional
	}
	if c.Temperature == 0 {
		c.Temperature = DefaultTemperature
	}
	if c.Pacing == "" {
		c.Pacing = DefaultPacing
	}
	if c.CurriculumExamples == 0 {
		c.CurriculumExamples = DefaultCurriculumExamples
	}
	if c.ReplayRatio == 0 {
		c.ReplayRatio = DefaultReplayRatio
	}
	if c.ReplayPerDomain == 0 {
		c.ReplayPerDomain = DefaultReplayPerDomain
	}
	if c.Views == "" {
		c.Views = DefaultViews
	}
	if c.Strength == 0 {
		c.Strength = DefaultStrength
	}
	if c.Dropout == 0 {
		c.Dropout = DefaultDropout
	}
	if c.MaskFraction == 0 {
		c.MaskFraction = DefaultMaskFraction
	}
	if c.MaskSpan == 0 {
		c.MaskSpan = DefaultMaskSpan
	}
	if c.CropMin == 0 {
		c.CropMin = DefaultCropMin
	}
	if c.MaskToken == "" {
		c.MaskToken = DefaultMaskToken
	}
	if c.Negatives == 0 {
		c.Negatives = DefaultNegatives
	}
	if c.TargetWeight == 0 {
		c.TargetWeight = DefaultTargetWeight
	}
	if c.NoveltyBoost == 0 {
		c.NoveltyBoost = DefaultNoveltyBoost
	}
	if c.NoveltyExamples == 0 {
		c.NoveltyExamples = DefaultNoveltyExamples
	}
	if c.NegativePool == 0 {
		c.NegativePool = DefaultNegativePool
	}
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("sampler: invalid configuration")

// Validate reports every problem at once, in an error wrapping ErrConfig.
// Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.BatchSize < 1 || c.BatchSize > 1<<16 {
		add("batch_size: %d must be between 1 and 65536", c.BatchSize)
	}
	if c.Poll <= 0 {
		add("poll: %v must be positive", c.Poll)
	}
	if c.PoolRecords < 1 {
		add("pool_records: %d must be positive", c.PoolRecords)
	}
	switch c.Mixture {
	case MixtureProportional, MixtureTemperature:
		if len(c.Weights) > 0 {
			add("weights: only used by the fixed mixture, not %q", c.Mixture)
		}
	case MixtureFixed:
		if len(c.Weights) == 0 {
			add("weights: the fixed mixture needs a weight per domain (\"*\" for the others)")
		}
		keys := make([]string, 0, len(c.Weights))
		for k := range c.Weights {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pos := false
		for _, k := range keys {
			w := c.Weights[k]
			if !(w >= 0) || w > 1e12 {
				add("weights: %q has weight %v, want a finite value >= 0", k, w)
			}
			pos = pos || w > 0
		}
		if len(c.Weights) > 0 && !pos {
			add("weights: at least one weight must be positive")
		}
	default:
		add("mixture: %q is not one of %s, %s, %s", c.Mixture, MixtureProportional, MixtureTemperature, MixtureFixed)
	}
	if !(c.Temperature > 0) || c.Temperature > 1e6 {
		add("temperature: %v must be positive", c.Temperature)
	}
	switch c.Pacing {
	case curate.PacingLinear, curate.PacingRoot, curate.PacingStep, PacingNone:
	default:
		add("pacing: %q is not one of %s, %s, %s, %s", c.Pacing, curate.PacingLinear, curate.PacingRoot, curate.PacingStep, PacingNone)
	}
	if c.CurriculumExamples < 1 {
		add("curriculum_examples: %d must be positive", c.CurriculumExamples)
	}
	if math.IsNaN(c.TargetWeight) || c.TargetWeight > 20 {
		add("target_weight: %v must be at most 20 (negative: off)", c.TargetWeight)
	}
	if math.IsNaN(c.NoveltyBoost) || c.NoveltyBoost > 100 {
		add("novelty_boost: %v must be at most 100 (negative or 0: off)", c.NoveltyBoost)
	}
	if c.NoveltyExamples < 1 {
		add("novelty_examples: %d must be positive", c.NoveltyExamples)
	}
	if !(c.ReplayRatio <= 1) {
		add("replay_ratio: %v must be at most 1 (negative: no replay)", c.ReplayRatio)
	}
	if c.ReplayPerDomain > 1<<24 {
		add("replay_per_domain: %d must be at most %d", c.ReplayPerDomain, 1<<24)
	}
	if c.Views != ViewsAugment && c.Views != ViewsSplit {
		add("views: %q is not %s or %s", c.Views, ViewsAugment, ViewsSplit)
	}
	if !(c.Strength >= -1e9) || c.Strength > 1e9 {
		add("strength: %v must be a finite number", c.Strength)
	}
	st := max(c.Strength, 0)
	if !(c.Dropout < 1) {
		add("dropout: %v must be below 1", c.Dropout)
	} else if st*max(c.Dropout, 0) >= 1 {
		add("dropout: strength %v times dropout %v must be below 1", c.Strength, c.Dropout)
	}
	if !(c.MaskFraction < 1) {
		add("mask_fraction: %v must be below 1", c.MaskFraction)
	} else if st*max(c.MaskFraction, 0) >= 1 {
		add("mask_fraction: strength %v times mask_fraction %v must be below 1", c.Strength, c.MaskFraction)
	}
	if !(c.MaskSpan >= 1) || c.MaskSpan > 1e6 {
		add("mask_span: %v must be at least 1", c.MaskSpan)
	}
	if !(c.CropMin > 0 && c.CropMin <= 1) {
		add("crop_min: %v must be in (0, 1]", c.CropMin)
	} else if 1-st*(1-c.CropMin) <= 0 {
		add("crop_min: with strength %v a crop would keep nothing; raise crop_min or lower strength", c.Strength)
	}
	if c.MaskToken == "" || len(strings.Fields(c.MaskToken)) != 1 || strings.TrimSpace(c.MaskToken) != c.MaskToken {
		add("mask_token: %q must be one word without spaces", c.MaskToken)
	}
	if c.NegativePool < 1 || c.NegativePool > 1<<22 {
		add("negative_pool: %d must be between 1 and %d", c.NegativePool, 1<<22)
	}
	if c.Negatives > c.NegativePool {
		add("negatives: %d must not exceed negative_pool %d", c.Negatives, c.NegativePool)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
}

// effective returns the knobs as used: negatives read as 0.
func (c *Config) replayN() int {
	if c.ReplayRatio <= 0 || c.ReplayPerDomain <= 0 {
		return 0
	}
	n := int(c.ReplayRatio*float64(c.BatchSize) + 0.5)
	return min(n, c.BatchSize)
}

// targetWeight returns β, 0 when off.
func (c *Config) targetWeight() float64 { return max(c.TargetWeight, 0) }

// noveltyBoost returns B, 0 when off.
func (c *Config) noveltyBoost() float64 { return max(c.NoveltyBoost, 0) }

func (c *Config) negatives() int { return max(c.Negatives, 0) }

func (c *Config) quota() int {
	if c.ReplayRatio <= 0 || c.ReplayPerDomain <= 0 {
		return 0
	}
	return c.ReplayPerDomain
}
