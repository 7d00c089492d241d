package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("train: invalid configuration")

// Activation names accepted by Config.Activation.
const (
	ActivationReLU = "relu"
	ActivationGELU = "gelu"
)

// Embedding-row optimisers accepted by Config.EmbedOptimizer.
const (
	EmbedAdagrad = "adagrad"
	EmbedSGD     = "sgd"
)

// Learning-rate decays accepted by Config.Decay.
const (
	DecayCosine = "cosine"
	DecayLinear = "linear"
	DecayNone   = "none"
)

// False-negative masks accepted by Config.MaskFalseNegatives.
const (
	MaskClusterRecord = "cluster_record" // same dedup cluster or same record
	MaskCluster       = "cluster"
	MaskRecord        = "record"
	MaskNone          = "none"
)

// Config configures a Learner. The zero value plus SetDefaults is the
// default configuration described in the package documentation. The model
// fields (the Model group plus queue_size, mlm_buckets, embed_optimizer and
// health_sample) shape the state: a state loads only into a Learner whose
// model fields match; the other fields may change between runs.
type Config struct {
	// Model.
	Buckets      int    `yaml:"buckets"`        // rows of the hashed n-gram embedding table
	EmbedDim     int    `yaml:"embed_dim"`      // width of the embedding table (the bag)
	HiddenDim    int    `yaml:"hidden_dim"`     // hidden width of the projection MLP
	OutDim       int    `yaml:"out_dim"`        // output (embedding) width
	Activation   string `yaml:"activation"`     // relu | gelu
	WordNgramMin int    `yaml:"word_ngram_min"` // word n-grams from ... (1)
	WordNgramMax int    `yaml:"word_ngram_max"` // ... to (2)
	CharNgramMin int    `yaml:"char_ngram_min"` // character n-grams of <word> from ... (3); -1 disables
	CharNgramMax int    `yaml:"char_ngram_max"` // ... to (5)
	MaxWords     int    `yaml:"max_words"`      // words of a text used (the rest is ignored)
	KeepCase     bool   `yaml:"keep_case"`      // do not lower-case words before hashing
	LexBuckets   int    `yaml:"lex_buckets"`    // hashed term columns of the lexical channel (its document frequencies)

	// Representation.
	LexWeight float64 `yaml:"lex_weight"` // weight of the lexical part of the hybrid representation against the dense part

	// Objective.
	Temperature        float64 `yaml:"temperature"`          // InfoNCE temperature
	QueueSize          int     `yaml:"queue_size"`           // momentum queue of past keys; -1: in-batch negatives only
	Momentum           float64 `yaml:"momentum"`             // EMA momentum of the key encoder
	Beta               float64 `yaml:"beta"`                 // hard-negative concentration (0: plain InfoNCE)
	Symmetric          bool    `yaml:"symmetric"`            // also contrast view B against keys of view A
	MaskFalseNegatives string  `yaml:"mask_false_negatives"` // cluster_record | cluster | record | none
	ContrastiveWeight  float64 `yaml:"contrastive_weight"`   // weight of the contrastive loss (1)
	MLMWeight          float64 `yaml:"mlm_weight"`           // weight of the masked-token loss (0: off)
	MLMBuckets         int     `yaml:"mlm_buckets"`          // rows of the masked-token output table
	MLMNegatives       int     `yaml:"mlm_negatives"`        // sampled negatives per masked word

	// Optimisers.
	LR             float64 `yaml:"lr"`              // Adam learning rate of the dense weights
	Beta1          float64 `yaml:"beta1"`           // Adam
	Beta2          float64 `yaml:"beta2"`           // Adam
	Epsilon        float64 `yaml:"epsilon"`         // Adam and Adagrad
	WeightDecay    float64 `yaml:"weight_decay"`    // decoupled (AdamW) weight decay of the dense weights
	EmbedOptimizer string  `yaml:"embed_optimizer"` // adagrad | sgd (sparse, rows touched only)
	EmbedLR        float64 `yaml:"embed_lr"`        // learning rate of the embedding rows
	AccumSteps     int     `yaml:"accum_steps"`     // micro-batches per optimiser update
	WarmupSteps    int64   `yaml:"warmup_steps"`    // linear warm-up, in optimiser updates
	DecaySteps     int64   `yaml:"decay_steps"`     // decay horizon after warm-up, in updates
	Decay          string  `yaml:"decay"`           // cosine | linear | none
	MinLRRatio     float64 `yaml:"min_lr_ratio"`    // floor of the schedule, as a fraction of the peak

	// Health.
	HealthSample int     `yaml:"health_sample"` // rolling sample of recent embeddings
	CollapseStd  float64 `yaml:"collapse_std"`  // collapsed when the mean per-dimension std is below
	CollapseRank float64 `yaml:"collapse_rank"` // or when RankMe is below

	Seed    uint64 `yaml:"seed"`
	Workers int    `yaml:"workers"` // goroutines for the per-example work (GOMAXPROCS); results do not depend on it
}

// Default values (see the package documentation for why).
const (
	DefaultBuckets      = 1 << 18
	DefaultEmbedDim     = 128
	DefaultHiddenDim    = 256
	DefaultOutDim       = 128
	DefaultQueueSize    = 1024
	DefaultTemperature  = 0.1
	DefaultMomentum     = 0.99
	DefaultLR           = 1e-3
	DefaultEmbedLR      = 0.2
	DefaultMLMBuckets   = 1 << 16
	DefaultHealthSample = 1024
	DefaultLexWeight    = 3
)

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setF := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Buckets, DefaultBuckets)
	setInt(&c.EmbedDim, DefaultEmbedDim)
	setInt(&c.HiddenDim, DefaultHiddenDim)
	setInt(&c.OutDim, DefaultOutDim)
	if c.Activation == "" {
		c.Activation = ActivationReLU
	}
	setInt(&c.WordNgramMin, 1)
	setInt(&c.WordNgramMax, 2)
	setInt(&c.CharNgramMin, 3)
	setInt(&c.CharNgramMax, 5)
	setInt(&c.MaxWords, 256)
	setInt(&c.LexBuckets, DefaultLexBuckets)
	setF(&c.LexWeight, DefaultLexWeight)
	setF(&c.Temperature, DefaultTemperature)
	setInt(&c.QueueSize, DefaultQueueSize)
	setF(&c.Momentum, DefaultMomentum)
	if c.MaskFalseNegatives == "" {
		c.MaskFalseNegatives = MaskClusterRecord
	}
	setF(&c.ContrastiveWeight, 1)
	setInt(&c.MLMBuckets, DefaultMLMBuckets)
	setInt(&c.MLMNegatives, 5)
	setF(&c.LR, DefaultLR)
	setF(&c.Beta1, 0.9)
	setF(&c.Beta2, 0.999)
	setF(&c.Epsilon, 1e-8)
	if c.EmbedOptimizer == "" {
		c.EmbedOptimizer = EmbedAdagrad
	}
	setF(&c.EmbedLR, DefaultEmbedLR)
	setInt(&c.AccumSteps, 1)
	if c.WarmupSteps == 0 {
		c.WarmupSteps = 200
	}
	if c.DecaySteps == 0 {
		c.DecaySteps = 50_000
	}
	if c.Decay == "" {
		c.Decay = DecayCosine
	}
	setF(&c.MinLRRatio, 0.1)
	setInt(&c.HealthSample, DefaultHealthSample)
	if c.CollapseStd == 0 && c.OutDim > 0 {
		// Healthy spread is about 1/sqrt(d) per dimension.
		c.CollapseStd = 0.2 / math.Sqrt(float64(c.OutDim))
	}
	setF(&c.CollapseRank, max(2, float64(c.OutDim)/16))
	setInt(&c.Workers, runtime.GOMAXPROCS(0))
}

// queueCap is the queue capacity (0 when disabled).
func (c *Config) queueCap() int {
	if c.QueueSize < 0 {
		return 0
	}
	return c.QueueSize
}

func (c *Config) charNgrams() bool { return c.CharNgramMin > 0 }

// Validate reports every problem at once, wrapped in ErrConfig.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Buckets < 1 || c.Buckets > 1<<26 {
		add("buckets: %d is not in [1, 2^26]", c.Buckets)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"embed_dim", c.EmbedDim}, {"hidden_dim", c.HiddenDim}, {"out_dim", c.OutDim}} {
		if d.v < 1 || d.v > 4096 {
			add("%s: %d is not in [1, 4096]", d.name, d.v)
		}
	}
	if int64(c.Buckets)*int64(c.EmbedDim) > 1<<31 {
		add("buckets x embed_dim: %d x %d is over 2^31 weights", c.Buckets, c.EmbedDim)
	}
	if c.Activation != ActivationReLU && c.Activation != ActivationGELU {
		add("activation: %q is not relu or gelu", c.Activation)
	}
	if c.WordNgramMin < 1 || c.WordNgramMax < c.WordNgramMin || c.WordNgramMax > 8 {
		add("word_ngram_min..max: %d..%d is not a range within 1..8", c.WordNgramMin, c.WordNgramMax)
	}
	if c.CharNgramMin != -1 && (c.CharNgramMin < 1 || c.CharNgramMax < c.CharNgramMin || c.CharNgramMax > 16) {
		add("char_ngram_min..max: %d..%d is not a range within 1..16 (char_ngram_min -1 disables)", c.CharNgramMin, c.CharNgramMax)
	}
	if c.MaxWords < 1 {
		add("max_words: %d is below 1", c.MaxWords)
	}
	if c.LexBuckets < 1 || c.LexBuckets > 1<<26 {
		add("lex_buckets: %d is not in [1, 2^26]", c.LexBuckets)
	}
	if !(c.LexWeight >= 0) || math.IsInf(c.LexWeight, 0) {
		add("lex_weight: %g must be a finite number, 0 or more", c.LexWeight)
	}
	if !(c.Temperature > 0) || c.Temperature > 10 {
		add("temperature: %g is not in (0, 10]", c.Temperature)
	}
	if c.QueueSize < -1 || c.QueueSize > 1<<20 {
		add("queue_size: %d is not in [1, 2^20] (or -1 for in-batch negatives only)", c.QueueSize)
	}
	if !(c.Momentum >= 0 && c.Momentum < 1) {
		add("momentum: %g is not in [0, 1)", c.Momentum)
	}
	if !(c.Beta >= 0 && c.Beta <= 10) {
		add("beta: %g is not in [0, 10]", c.Beta)
	}
	switch c.MaskFalseNegatives {
	case MaskClusterRecord, MaskCluster, MaskRecord, MaskNone:
	default:
		add("mask_false_negatives: %q is not one of %s", c.MaskFalseNegatives,
			strings.Join([]string{MaskClusterRecord, MaskCluster, MaskRecord, MaskNone}, ", "))
	}
	if !(c.ContrastiveWeight >= 0) || !(c.MLMWeight >= 0) {
		add("contrastive_weight, mlm_weight: %g, %g must not be negative", c.ContrastiveWeight, c.MLMWeight)
	}
	if c.ContrastiveWeight == 0 && c.MLMWeight == 0 {
		add("contrastive_weight and mlm_weight: at least one objective needs a positive weight")
	}
	if c.MLMBuckets < 2 || c.MLMBuckets > 1<<24 {
		add("mlm_buckets: %d is not in [2, 2^24]", c.MLMBuckets)
	}
	if c.MLMNegatives < 1 || c.MLMNegatives > 1024 {
		add("mlm_negatives: %d is not in [1, 1024]", c.MLMNegatives)
	}
	if !(c.LR > 0) || !(c.EmbedLR > 0) {
		add("lr, embed_lr: %g, %g must be positive", c.LR, c.EmbedLR)
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1) {
		add("beta1, beta2: %g, %g are not in [0, 1)", c.Beta1, c.Beta2)
	}
	if !(c.Epsilon > 0) {
		add("epsilon: %g must be positive", c.Epsilon)
	}
	if !(c.WeightDecay >= 0) {
		add("weight_decay: %g must not be negative", c.WeightDecay)
	}
	if c.EmbedOptimizer != EmbedAdagrad && c.EmbedOptimizer != EmbedSGD {
		add("embed_optimizer: %q is not adagrad or sgd", c.EmbedOptimizer)
	}
	if c.AccumSteps < 1 {
		add("accum_steps: %d is below 1", c.AccumSteps)
	}
	if c.WarmupSteps < 0 || c.DecaySteps < 0 {
		add("warmup_steps, decay_steps: %d, %d must not be negative", c.WarmupSteps, c.DecaySteps)
	}
	if c.Decay != DecayCosine && c.Decay != DecayLinear && c.Decay != DecayNone {
		add("decay: %q is not cosine, linear or none", c.Decay)
	}
	if !(c.MinLRRatio >= 0 && c.MinLRRatio <= 1) {
		add("min_lr_ratio: %g is not in [0, 1]", c.MinLRRatio)
	}
	if c.HealthSample < 2 || c.HealthSample > 1<<16 {
		add("health_sample: %d is not in [2, 65536]", c.HealthSample)
	}
	if !(c.CollapseStd >= 0) || !(c.CollapseRank >= 0) {
		add("collapse_std, collapse_rank: %g, %g must not be negative", c.CollapseStd, c.CollapseRank)
	}
	if c.Workers < 1 || c.Workers > 256 {
		add("workers: %d is not in [1, 256]", c.Workers)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

// modelCompatible reports how o differs from c in the fields that shape the
// parameters or their meaning.
func (c *Config) modelCompatible(o *Config) error {
	var diffs, hints []string
	chk := func(name string, a, b any) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s %v != %v", name, a, b))
			hints = append(hints, fmt.Sprintf("%s: %v", name, b))
		}
	}
	chk("buckets", c.Buckets, o.Buckets)
	chk("embed_dim", c.EmbedDim, o.EmbedDim)
	chk("hidden_dim", c.HiddenDim, o.HiddenDim)
	chk("out_dim", c.OutDim, o.OutDim)
	chk("activation", c.Activation, o.Activation)
	chk("word_ngram_min", c.WordNgramMin, o.WordNgramMin)
	chk("word_ngram_max", c.WordNgramMax, o.WordNgramMax)
	chk("char_ngram_min", c.CharNgramMin, o.CharNgramMin)
	chk("char_ngram_max", c.CharNgramMax, o.CharNgramMax)
	chk("max_words", c.MaxWords, o.MaxWords)
	chk("keep_case", c.KeepCase, o.KeepCase)
	chk("lex_buckets", c.LexBuckets, o.LexBuckets)
	chk("queue_size", c.queueCap(), o.queueCap())
	chk("mlm_buckets", c.MLMBuckets, o.MLMBuckets)
	chk("embed_optimizer", c.EmbedOptimizer, o.EmbedOptimizer)
	chk("health_sample", c.HealthSample, o.HealthSample)
	if len(diffs) > 0 {
		return fmt.Errorf("%w: the state was written with another model configuration: %s (this run's value first; to resume it, set %s in the learner configuration: defaults change between versions)",
			ErrState, strings.Join(diffs, ", "), strings.Join(hints, ", "))
	}
	return nil
}
