package train

// This file holds adapters: small classification heads trained on a frozen
// encoder's embeddings with few labels.
//
// # Heads
//
// A Head maps a representation x of a text to a softmax over a task's
// class names. x is one of the encoder's layers (HeadMeta.Layer, see
// EmbedLayer; a head of format version 1 reads LayerOutput), or, for
// HeadMeta.Features "hybrid", that layer joined with the text's TF-IDF
// vector over the stream's term statistics (EmbedHybrid, with the lexical
// weight the head was fitted with). The dense part is first standardised
// with the per-dimension mean and standard deviation of the head's training
// rows (kept in the head). Two kinds:
//
//	linear   p = softmax(x' W + b)
//	mlp      p = softmax(relu(x' W1 + b1) W2 + b2), HeadConfig.Hidden units (256)
//
// A hybrid head is linear and weighs only the lexical columns its training
// texts use (HeadMeta.LexColumns of them, listed in the head): under an L2
// penalty every other column's weight is exactly zero. It is fitted outside
// TrainHead, by the linear probe's logistic regression (thresher adapt), and
// built with NewLinearHead; its dense part is not standardised (mean 0,
// scale 1), as the probe reads it.
//
// TrainHead minimises the mean cross-entropy plus lambda/2 |W|^2 (the
// biases are not penalised) with Adam (HeadConfig.LR 0.003, mini-batches of
// HeadConfig.BatchSize 64, reshuffled every epoch by a generator seeded
// from HeadConfig.Seed). After every epoch it scores the dev split; it keeps
// the weights of the epoch with the best dev accuracy (ties: the lower dev
// loss) and stops after HeadConfig.Patience (10) epochs without a better
// one, or HeadConfig.MaxEpochs (200). It does so for every lambda of
// HeadConfig.WeightDecays (0, 1e-4, 1e-3, 1e-2), each from the same seeded
// initialisation, and keeps the lambda whose best epoch has the best dev
// accuracy (ties: the lower dev loss, then the larger lambda). The head is
// a deterministic function of (config, data): the same inputs give a
// bit-identical MarshalBinary (HeadMeta.Time, the wall clock, aside) on one
// build and CPU architecture.
//
// # Which encoder
//
// A head is only meaningful on the embeddings of the encoder it was trained
// on. It records that encoder's checkpoint key and step and EncoderHash,
// an xxhash of the encoder's shape, featurisation settings and weights.
// Head.Bind refuses an encoder whose hash differs with an error wrapping
// ErrHeadMismatch; Head.Probs only checks the width.
//
// # Where heads live
//
// The head trained on checkpoint X.ckpt for task T is the file X.T.head
// beside it (HeadPath). In a lake that is the object
// checkpoints/<step, 12 digits>.T.head (HeadKey), next to
// checkpoints/<step>.ckpt. Checkpoint retention lists only .ckpt keys, so
// it neither counts nor deletes heads. Task names are 1 to 128 of
// [A-Za-z0-9_.-] and do not start with a dot.
//
// # Head format
//
// MarshalBinary writes, integers little-endian:
//
//	magic    8 bytes  "THRHEAD\x00"
//	version  uint16   HeadVersion (2; version 1, without lexical columns, is read too)
//	flags    uint16   0
//	metaLen  uint32   length of the JSON HeadMeta
//	nparams  uint64   number of float32 parameters
//	meta     metaLen bytes, JSON HeadMeta
//	params   nparams IEEE-754 float32s: mean[D], scale[D] (1/std), then
//	         linear: W[(D+L) x C] row-major, b[C]
//	         mlp:    W1[D x H], b1[H], W2[H x C], b2[C]
//	lexcols  L uint32s: the lexical column of each of W's last L rows, ascending
//	crc      uint32   CRC-32C (Castagnoli) of every byte before it
//
// D is HeadMeta.InputDim (the dense part's width), L HeadMeta.LexColumns
// (0 but for hybrid heads), H HeadMeta.Hidden, C len(HeadMeta.Classes).
// UnmarshalBinary checks the magic, version, lengths, checksum, the
// metadata (kind, dimensions, distinct non-empty class names, a valid task
// name, layer and features), that every parameter is finite and at most
// 1e7 in magnitude and that the lexical columns ascend;
// every failure wraps
// ErrCorruptHead.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/thresher-ml/thresher/internal/lake"
)

// HeadKind is the architecture of a head.
type HeadKind string

// Head kinds.
const (
	HeadLinear HeadKind = "linear"
	HeadMLP    HeadKind = "mlp"
)

// HeadVersion is the version of the head format.
const HeadVersion = 2

// Head features: what a head reads (HeadMeta.Features).
const (
	HeadFeaturesEncoder = "encoder" // the encoder's layer alone
	HeadFeaturesHybrid  = "hybrid"  // the layer joined with the text's TF-IDF vector (EmbedHybrid)
)

// headExt ends every head's file name and key.
const headExt = ".head"

var headMagic = [8]byte{'T', 'H', 'R', 'H', 'E', 'A', 'D', 0}

const headHeaderLen = 8 + 2 + 2 + 4 + 8

// Limits of a head's dimensions, checked by Validate and UnmarshalBinary.
const (
	maxHeadDim     = 1 << 14
	maxHeadLexCols = 1 << 24 // the widest lexical vector a head weighs
	maxHeadClasses = 1 << 14
	maxTaskName    = 128
	// maxHeadParam bounds every parameter's magnitude, so that the logits
	// of finite embeddings stay finite.
	maxHeadParam = 1e7
)

// Head errors; wrapped, so test with errors.Is.
var (
	// ErrHeadConfig is wrapped by every error of HeadConfig.Validate and
	// of TrainHead's inputs.
	ErrHeadConfig = errors.New("train: invalid head configuration")
	// ErrCorruptHead is returned for a head that is torn, truncated, of
	// another format or fails its checksum.
	ErrCorruptHead = errors.New("train: corrupt head")
	// ErrHeadMismatch is returned when a head is used with an encoder other
	// than the one it was trained on.
	ErrHeadMismatch = errors.New("train: head was trained on another encoder")
	// ErrNoHead is returned when a lake holds no head for a task.
	ErrNoHead = errors.New("train: no head for the task")
)

// Defaults of HeadConfig.
const (
	DefaultHeadHidden    = 256
	DefaultHeadLR        = 0.003
	DefaultHeadBatchSize = 64
	DefaultHeadMaxEpochs = 200
	DefaultHeadPatience  = 10
)

// DefaultHeadWeightDecays is the grid of L2 coefficients chosen from on dev.
var DefaultHeadWeightDecays = []float64{0, 1e-4, 1e-3, 1e-2}

// HeadConfig configures TrainHead.
type HeadConfig struct {
	Kind         HeadKind  `yaml:"kind"`          // linear (default) | mlp
	Hidden       int       `yaml:"hidden"`        // hidden units of an mlp head (256)
	LR           float64   `yaml:"lr"`            // Adam learning rate (0.003)
	BatchSize    int       `yaml:"batch_size"`    // rows per Adam step (64)
	MaxEpochs    int       `yaml:"max_epochs"`    // passes over the training rows at most (200)
	Patience     int       `yaml:"patience"`      // epochs without a better dev score before stopping (10)
	WeightDecays []float64 `yaml:"weight_decays"` // L2 coefficients tried, best on dev kept (0, 1e-4, 1e-3, 1e-2)
	Seed         uint64    `yaml:"seed"`          // initialisation and shuffling
}

// SetDefaults fills every unset field with its default.
func (c *HeadConfig) SetDefaults() {
	if c.Kind == "" {
		c.Kind = HeadLinear
	}
	if c.Hidden == 0 {
		c.Hidden = DefaultHeadHidden
	}
	if c.LR == 0 {
		c.LR = DefaultHeadLR
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultHeadBatchSize
	}
	if c.MaxEpochs == 0 {
		c.MaxEpochs = DefaultHeadMaxEpochs
	}
	if c.Patience == 0 {
		c.Patience = DefaultHeadPatience
	}
	if c.WeightDecays == nil {
		c.WeightDecays = slices.Clone(DefaultHeadWeightDecays)
	}
}

// Validate reports every problem of c at once, wrapping ErrHeadConfig.
func (c *HeadConfig) Validate() error {
	var p []string
	if c.Kind != HeadLinear && c.Kind != HeadMLP {
		p = append(p, fmt.Sprintf("kind %q is not linear or mlp", c.Kind))
	}
	if c.Kind == HeadMLP && (c.Hidden < 1 || c.Hidden > maxHeadDim) {
		p = append(p, fmt.Sprintf("hidden: %d is not in [1, %d]", c.Hidden, maxHeadDim))
	}
	if !(c.LR > 0 && c.LR <= 1) {
		p = append(p, fmt.Sprintf("lr: %g is not in (0, 1]", c.LR))
	}
	if c.BatchSize < 1 {
		p = append(p, fmt.Sprintf("batch_size: %d must be at least 1", c.BatchSize))
	}
	if c.MaxEpochs < 1 {
		p = append(p, fmt.Sprintf("max_epochs: %d must be at least 1", c.MaxEpochs))
	}
	if c.Patience < 1 {
		p = append(p, fmt.Sprintf("patience: %d must be at least 1", c.Patience))
	}
	if len(c.WeightDecays) == 0 {
		p = append(p, "weight_decays: give at least one")
	}
	for _, wd := range c.WeightDecays {
		if !(wd >= 0 && wd < 1e3) {
			p = append(p, fmt.Sprintf("weight_decays: %g is not in [0, 1000)", wd))
		}
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrHeadConfig, strings.Join(p, "\n  - "))
}

// HeadSplit is a split of embedded examples: rows of equal width and their
// class indexes.
type HeadSplit struct {
	X [][]float32
	Y []int
}

// HeadData is what a head is trained on. Task and Classes name the task
// and its classes (Y indexes Classes); Checkpoint, Step and EncoderHash
// name the encoder that embedded the rows (see Head.Bind), and Layer the
// representation they are (EmbedLayer; "" is LayerOutput).
type HeadData struct {
	Task        string
	Classes     []string
	Checkpoint  string // checkpoint key, e.g. checkpoints/000000001000.ckpt
	Step        int64
	EncoderHash string // EncoderHash of the encoder
	Layer       string
	Train, Dev  HeadSplit
}

// HeadMeta is a head's JSON metadata.
type HeadMeta struct {
	Task        string    `json:"task"`
	Kind        HeadKind  `json:"kind"`
	Classes     []string  `json:"classes"`
	InputDim    int       `json:"input_dim"`
	Hidden      int       `json:"hidden"` // 0 for linear
	Checkpoint  string    `json:"checkpoint"`
	Step        int64     `json:"checkpoint_step"`
	EncoderHash string    `json:"encoder_hash"`
	WeightDecay float64   `json:"weight_decay"` // the lambda chosen on dev
	Epochs      int       `json:"epochs"`       // epochs of the kept weights
	DevAccuracy float64   `json:"dev_accuracy"`
	DevLoss     float64   `json:"dev_loss"`
	TrainRows   int       `json:"train_rows"`
	Seed        uint64    `json:"seed"`
	Time        time.Time `json:"time"` // when it was trained (UTC); not part of the determinism guarantee

	Layer      string  `json:"layer,omitempty"`       // the encoder layer read (EmbedLayer); "" is LayerOutput
	Features   string  `json:"features,omitempty"`    // HeadFeaturesEncoder ("" too) or HeadFeaturesHybrid
	LexWeight  float64 `json:"lex_weight,omitempty"`  // hybrid: the lexical part's weight (Config.LexWeight)
	LexColumns int     `json:"lex_columns,omitempty"` // hybrid: lexical columns the head weighs
	C          float64 `json:"c,omitempty"`           // hybrid: the logistic regression's C, chosen on dev
}

// layer is the encoder layer the head reads.
func (m *HeadMeta) layer() string {
	if m.Layer == "" {
		return LayerOutput
	}
	return m.Layer
}

// Hybrid reports whether the head reads hybrid representations.
func (m *HeadMeta) Hybrid() bool { return m.Features == HeadFeaturesHybrid }

// Head is a trained classification head. It is safe for concurrent use
// once built.
type Head struct {
	Meta HeadMeta
	// params: mean, scale, then the layers (see the format).
	mean, scale []float32
	w1, b1      []float32 // D x H, H (mlp); (D+L) x C, C (linear)
	w2, b2      []float32 // H x C, C (mlp only)
	lexCols     []uint32  // the lexical column of each of w1's last L rows, ascending
}

func (h *Head) dims() (d, hid, c int) {
	return h.Meta.InputDim, h.Meta.Hidden, len(h.Meta.Classes)
}

// paramCount is the number of float32 parameters of a head of these
// dimensions, with l lexical columns.
func paramCount(kind HeadKind, d, hid, c, l int) uint64 {
	n := 2 * uint64(d)
	if kind == HeadMLP {
		return n + uint64(d)*uint64(hid) + uint64(hid) + uint64(hid)*uint64(c) + uint64(c)
	}
	return n + uint64(d+l)*uint64(c) + uint64(c)
}

func (h *Head) params() [][]float32 {
	if h.Meta.Kind == HeadMLP {
		return [][]float32{h.mean, h.scale, h.w1, h.b1, h.w2, h.b2}
	}
	return [][]float32{h.mean, h.scale, h.w1, h.b1}
}

// layers lists the trained weights and whether each is penalised.
func (h *Head) layers() ([][]float32, []bool) {
	if h.Meta.Kind == HeadMLP {
		return [][]float32{h.w1, h.b1, h.w2, h.b2}, []bool{true, false, true, false}
	}
	return [][]float32{h.w1, h.b1}, []bool{true, false}
}

func newHead(meta HeadMeta) *Head {
	d, hid, c := meta.InputDim, meta.Hidden, len(meta.Classes)
	h := &Head{Meta: meta, mean: make([]float32, d), scale: make([]float32, d)}
	if meta.Kind == HeadMLP {
		h.w1, h.b1 = make([]float32, d*hid), make([]float32, hid)
		h.w2, h.b2 = make([]float32, hid*c), make([]float32, c)
	} else {
		h.w1, h.b1 = make([]float32, (d+meta.LexColumns)*c), make([]float32, c)
		h.lexCols = make([]uint32, meta.LexColumns)
	}
	return h
}

func (h *Head) clone() *Head {
	c := newHead(h.Meta)
	c.Meta.Classes = slices.Clone(h.Meta.Classes)
	src, dst := h.params(), c.params()
	for i := range src {
		copy(dst[i], src[i])
	}
	copy(c.lexCols, h.lexCols)
	return c
}

// ValidTaskName reports whether name can name a task in a head's key: 1 to
// 128 of [A-Za-z0-9_.-], not starting with a dot.
func ValidTaskName(name string) bool {
	if name == "" || len(name) > maxTaskName || name[0] == '.' {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

// HeadKey returns the lake key of the head of task trained on the
// checkpoint at step: checkpoints/<step, 12 digits>.<task>.head.
func HeadKey(step int64, task string) string {
	return fmt.Sprintf("%s%012d.%s%s", CheckpointPrefix, step, task, headExt)
}

// parseHeadKey returns the step and task of a head key.
func parseHeadKey(key string) (int64, string, bool) {
	name, ok := strings.CutPrefix(key, CheckpointPrefix)
	if !ok || strings.Contains(name, "/") {
		return 0, "", false
	}
	name, ok = strings.CutSuffix(name, headExt)
	if !ok {
		return 0, "", false
	}
	digits, task, ok := strings.Cut(name, ".")
	if !ok || len(digits) < 12 || !ValidTaskName(task) {
		return 0, "", false
	}
	step, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || step < 0 {
		return 0, "", false
	}
	return step, task, true
}

// HeadPath returns the file of the head of task beside the checkpoint file
// at checkpointPath: X.ckpt gives X.<task>.head.
func HeadPath(checkpointPath, task string) (string, error) {
	if !ValidTaskName(task) {
		return "", fmt.Errorf("%w: task name %q: want 1 to %d of [A-Za-z0-9_.-], not starting with a dot", ErrHeadConfig, truncate(task, 64), maxTaskName)
	}
	base, ok := strings.CutSuffix(checkpointPath, checkpointExt)
	if !ok {
		return "", fmt.Errorf("%w: checkpoint path %q does not end in %s", ErrHeadConfig, checkpointPath, checkpointExt)
	}
	return base + "." + task + headExt, nil
}

// EncoderHash identifies an encoder's embeddings: 16 hex digits of an
// xxhash of its shape, featurisation settings and weights. It reads every
// weight (about 0.1 s for the default 64 MiB table: BenchmarkEncoderHash).
func EncoderHash(enc *Encoder) string {
	d := xxhash.New()
	c := enc.cfg
	fmt.Fprintf(d, "buckets=%d embed=%d hidden=%d out=%d act=%s word=%d-%d char=%d-%d maxwords=%d case=%t\n",
		c.Buckets, c.EmbedDim, c.HiddenDim, c.OutDim, c.Activation, c.WordNgramMin, c.WordNgramMax,
		c.CharNgramMin, c.CharNgramMax, c.MaxWords, c.KeepCase)
	buf := make([]byte, 0, 1<<16)
	write := func(xs []float32) {
		for _, x := range xs {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
			if len(buf) == cap(buf) {
				d.Write(buf)
				buf = buf[:0]
			}
		}
	}
	write(enc.emb)
	for _, p := range enc.online.params() {
		write(p)
	}
	d.Write(buf)
	return fmt.Sprintf("%016x", d.Sum64())
}

// TrainHead trains a head on data as the package documentation describes.
// cfg gets SetDefaults; an invalid cfg or data is an error wrapping
// ErrHeadConfig. ctx cancels between epochs.
func TrainHead(ctx context.Context, cfg HeadConfig, data HeadData) (*Head, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := checkHeadData(&data)
	if err != nil {
		return nil, err
	}
	meta := HeadMeta{
		Task: data.Task, Kind: cfg.Kind, Classes: slices.Clone(data.Classes), InputDim: d, Layer: data.Layer,
		Checkpoint: data.Checkpoint, Step: data.Step, EncoderHash: data.EncoderHash,
		TrainRows: len(data.Train.X), Seed: cfg.Seed, Time: time.Now().UTC().Truncate(time.Second),
	}
	if cfg.Kind == HeadMLP {
		meta.Hidden = cfg.Hidden
	}
	start := newHead(meta)
	standardise(start, data.Train.X)
	initWeights(start, cfg.Seed)
	xtr := start.transform(data.Train.X)
	xdev := start.transform(data.Dev.X)

	var best *Head
	for _, wd := range cfg.WeightDecays {
		h, err := fitHead(ctx, start, cfg, wd, xtr, data.Train.Y, xdev, data.Dev.Y)
		if err != nil {
			return nil, err
		}
		if best == nil || betterHead(&h.Meta, &best.Meta) {
			best = h
		}
	}
	return best, nil
}

// betterHead orders fits: higher dev accuracy, then lower dev loss, then
// larger weight decay.
func betterHead(a, b *HeadMeta) bool {
	if a.DevAccuracy != b.DevAccuracy {
		return a.DevAccuracy > b.DevAccuracy
	}
	if a.DevLoss != b.DevLoss {
		return a.DevLoss < b.DevLoss
	}
	return a.WeightDecay > b.WeightDecay
}

func checkHeadData(data *HeadData) (int, error) {
	var p []string
	if !ValidTaskName(data.Task) {
		p = append(p, fmt.Sprintf("task name %q: want 1 to %d of [A-Za-z0-9_.-], not starting with a dot", truncate(data.Task, 64), maxTaskName))
	}
	if err := checkClasses(data.Classes); err != nil {
		p = append(p, err.Error())
	}
	d := 0
	if len(data.Train.X) > 0 {
		d = len(data.Train.X[0])
	}
	if d < 1 || d > maxHeadDim {
		p = append(p, fmt.Sprintf("input width %d is not in [1, %d]", d, maxHeadDim))
	}
	if data.Layer != "" && !slices.Contains(Layers, data.Layer) {
		p = append(p, fmt.Sprintf("layer %q is not one of %s", truncate(data.Layer, 64), strings.Join(Layers, ", ")))
	}
	for _, s := range []struct {
		name string
		s    HeadSplit
	}{{"train", data.Train}, {"dev", data.Dev}} {
		if len(s.s.X) == 0 {
			p = append(p, s.name+" split is empty")
		}
		if len(s.s.X) != len(s.s.Y) {
			p = append(p, fmt.Sprintf("%s split has %d rows and %d labels", s.name, len(s.s.X), len(s.s.Y)))
			continue
		}
		for i, x := range s.s.X {
			if len(x) != d {
				p = append(p, fmt.Sprintf("%s row %d is %d wide, not %d", s.name, i, len(x), d))
				break
			}
			if y := s.s.Y[i]; y < 0 || y >= len(data.Classes) {
				p = append(p, fmt.Sprintf("%s label %d of row %d is not a class index", s.name, y, i))
				break
			}
		}
	}
	if len(p) == 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%w:\n  - %s", ErrHeadConfig, strings.Join(p, "\n  - "))
}

func checkClasses(classes []string) error {
	if len(classes) < 2 || len(classes) > maxHeadClasses {
		return fmt.Errorf("%d classes: want 2 to %d", len(classes), maxHeadClasses)
	}
	seen := make(map[string]bool, len(classes))
	for _, c := range classes {
		if c == "" || seen[c] {
			return fmt.Errorf("class names must be distinct and non-empty (%q)", truncate(c, 64))
		}
		seen[c] = true
	}
	return nil
}

// standardise sets the head's mean and scale from the training rows.
func standardise(h *Head, xs [][]float32) {
	d := h.Meta.InputDim
	mean := make([]float64, d)
	for _, x := range xs {
		for j, v := range x {
			mean[j] += float64(v)
		}
	}
	n := float64(len(xs))
	for j := range mean {
		mean[j] /= n
	}
	vr := make([]float64, d)
	for _, x := range xs {
		for j, v := range x {
			dv := float64(v) - mean[j]
			vr[j] += dv * dv
		}
	}
	for j := range d {
		h.mean[j] = float32(mean[j])
		sd := math.Sqrt(vr[j] / n)
		if sd < 1e-6 {
			sd = 1
		}
		h.scale[j] = float32(1 / sd)
	}
}

// initWeights draws He-uniform weights (Glorot-uniform for the output
// layer) and zero biases.
func initWeights(h *Head, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x68656164)) // "head"
	d, hid, c := h.dims()
	fill := func(w []float32, fanIn, fanOut int, he bool) {
		a := math.Sqrt(6 / float64(fanIn+fanOut))
		if he {
			a = math.Sqrt(6 / float64(fanIn))
		}
		for i := range w {
			w[i] = float32(a * (2*r.Float64() - 1))
		}
	}
	if h.Meta.Kind == HeadMLP {
		fill(h.w1, d, hid, true)
		fill(h.w2, hid, c, false)
		return
	}
	fill(h.w1, d, c, false)
}

// transform returns the standardised rows as one row-major matrix.
func (h *Head) transform(xs [][]float32) []float32 {
	d := h.Meta.InputDim
	out := make([]float32, len(xs)*d)
	for i, x := range xs {
		row := out[i*d : (i+1)*d]
		for j := range row {
			row[j] = (x[j] - h.mean[j]) * h.scale[j]
		}
	}
	return out
}

// headPass holds the buffers of a forward and backward pass over n rows.
type headPass struct {
	hid    []float32 // n x H (mlp)
	logits []float32 // n x C, softmax in place
	dhid   []float32
	grads  [][]float32
}

// forward fills p.logits with the class probabilities of the n rows of x.
func (h *Head) forward(x []float32, n int, p *headPass) {
	h.logits(x, n, p)
	c := len(h.Meta.Classes)
	for i := range n {
		softmaxInPlace(p.logits[i*c : (i+1)*c])
	}
}

// logits fills p.logits with the class scores of the n rows of x (the
// dense part; a hybrid head's lexical columns are added by lexLogits).
func (h *Head) logits(x []float32, n int, p *headPass) {
	d, hid, c := h.dims()
	p.logits = grow(p.logits, n*c)
	if h.Meta.Kind == HeadMLP {
		p.hid = grow(p.hid, n*hid)
		matmul(p.hid, x, h.w1, n, d, hid, false, false)
		for i := range n {
			row := p.hid[i*hid : (i+1)*hid]
			for j := range row {
				row[j] = max(row[j]+h.b1[j], 0)
			}
		}
		matmul(p.logits, p.hid, h.w2, n, hid, c, false, false)
		addBias(p.logits[:n*c], h.b2)
	} else {
		matmul(p.logits, x, h.w1, n, d, c, false, false) // the first D rows of W
		addBias(p.logits[:n*c], h.b1)
	}
}

// lexLogits adds the lexical part of hybrid rows to their logits: each
// column the head weighs adds its value times its row of W; a column it
// does not weigh (no training text used it) adds nothing.
func (h *Head) lexLogits(lex []Sparse, logits []float32) {
	d, c := h.Meta.InputDim, len(h.Meta.Classes)
	for i, v := range lex {
		z := logits[i*c : (i+1)*c]
		for t, col := range v.Idx {
			k, ok := slices.BinarySearch(h.lexCols, uint32(col))
			if !ok {
				continue
			}
			row := h.w1[(d+k)*c : (d+k+1)*c]
			for j := range z {
				z[j] += v.Val[t] * row[j]
			}
		}
	}
}

func addBias(m, b []float32) {
	for i := 0; i < len(m); i += len(b) {
		row := m[i : i+len(b)]
		for j := range row {
			row[j] += b[j]
		}
	}
}

func softmaxInPlace(z []float32) {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	var s float64
	for j, v := range z {
		e := math.Exp(float64(v - mx))
		z[j] = float32(e)
		s += e
	}
	inv := float32(1 / s)
	for j := range z {
		z[j] *= inv
	}
}

// backward sets p.grads to the gradient of the mean cross-entropy of the n
// rows (after forward) plus the L2 penalty wd.
func (h *Head) backward(x []float32, y []int, n int, wd float32, p *headPass) {
	d, hid, c := h.dims()
	ws, pen := h.layers()
	if p.grads == nil {
		p.grads = make([][]float32, len(ws))
		for i, w := range ws {
			p.grads[i] = make([]float32, len(w))
		}
	}
	g := p.logits[:n*c] // dL/dlogits, in place
	inv := 1 / float32(n)
	for i := range n {
		row := g[i*c : (i+1)*c]
		row[y[i]] -= 1
		for j := range row {
			row[j] *= inv
		}
	}
	colSum := func(dst, m []float32, width int) {
		clear(dst)
		for i := 0; i < len(m); i += width {
			for j, v := range m[i : i+width] {
				dst[j] += v
			}
		}
	}
	if h.Meta.Kind == HeadMLP {
		matmul(p.grads[2], p.hid, g, hid, n, c, true, false) // dW2 = H^T g
		colSum(p.grads[3], g, c)
		p.dhid = grow(p.dhid, n*hid)
		matmul(p.dhid, g, h.w2, n, c, hid, false, true) // dH = g W2^T
		for k, v := range p.hid[:n*hid] {
			if v <= 0 {
				p.dhid[k] = 0
			}
		}
		matmul(p.grads[0], x, p.dhid, d, n, hid, true, false) // dW1 = X^T dH
		colSum(p.grads[1], p.dhid[:n*hid], hid)
	} else {
		matmul(p.grads[0], x, g, d, n, c, true, false)
		colSum(p.grads[1], g, c)
	}
	if wd > 0 {
		for i, w := range ws {
			if pen[i] {
				gr := p.grads[i]
				for k, v := range w {
					gr[k] += wd * v
				}
			}
		}
	}
}

// score returns the accuracy and mean cross-entropy of the rows.
func (h *Head) score(x []float32, y []int, p *headPass) (acc, loss float64) {
	d, c := h.Meta.InputDim, len(h.Meta.Classes)
	hit := 0
	for lo := 0; lo < len(y); lo += embedChunk {
		hi := min(lo+embedChunk, len(y))
		h.forward(x[lo*d:hi*d], hi-lo, p)
		for i := lo; i < hi; i++ {
			row := p.logits[(i-lo)*c : (i-lo+1)*c]
			if argmax(row) == y[i] {
				hit++
			}
			loss -= math.Log(max(float64(row[y[i]]), 1e-30))
		}
	}
	return float64(hit) / float64(len(y)), loss / float64(len(y))
}

func argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}

// fitHead trains a copy of start with weight decay wd and returns the
// weights of its best dev epoch.
func fitHead(ctx context.Context, start *Head, cfg HeadConfig, wd float64, xtr []float32, ytr []int, xdev []float32, ydev []int) (*Head, error) {
	h := start.clone()
	h.Meta.WeightDecay = wd
	d := h.Meta.InputDim
	n := len(ytr)
	ws, _ := h.layers()
	m := make([][]float32, len(ws))
	v := make([][]float32, len(ws))
	for i, w := range ws {
		m[i], v[i] = make([]float32, len(w)), make([]float32, len(w))
	}
	const b1, b2, eps = 0.9, 0.999, 1e-8
	rng := rand.New(rand.NewPCG(cfg.Seed, math.Float64bits(wd)))
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	bs := min(cfg.BatchSize, n)
	xb := make([]float32, bs*d)
	yb := make([]int, bs)
	var pass, evalPass headPass
	var best *Head
	bestAcc, bestLoss := -1.0, math.Inf(1)
	since, t := 0, 0
	for epoch := 1; epoch <= cfg.MaxEpochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		for lo := 0; lo < n; lo += bs {
			hi := min(lo+bs, n)
			k := hi - lo
			for i := range k {
				copy(xb[i*d:(i+1)*d], xtr[perm[lo+i]*d:(perm[lo+i]+1)*d])
				yb[i] = ytr[perm[lo+i]]
			}
			h.forward(xb[:k*d], k, &pass)
			h.backward(xb[:k*d], yb[:k], k, float32(wd), &pass)
			t++
			c1 := 1 - math.Pow(b1, float64(t))
			c2 := 1 - math.Pow(b2, float64(t))
			lr := float32(cfg.LR * math.Sqrt(c2) / c1)
			for i, w := range ws {
				g, mi, vi := pass.grads[i], m[i], v[i]
				for j := range w {
					mi[j] = b1*mi[j] + (1-b1)*g[j]
					vi[j] = b2*vi[j] + (1-b2)*g[j]*g[j]
					w[j] -= lr * mi[j] / (float32(math.Sqrt(float64(vi[j]))) + eps)
				}
			}
		}
		acc, loss := h.score(xdev, ydev, &evalPass)
		if math.IsNaN(loss) {
			break
		}
		if acc > bestAcc || (acc == bestAcc && loss < bestLoss) {
			bestAcc, bestLoss, since = acc, loss, 0
			best = h.clone()
			best.Meta.Epochs = epoch
			best.Meta.DevAccuracy, best.Meta.DevLoss = acc, loss
			continue
		}
		if since++; since >= cfg.Patience {
			break
		}
	}
	if best == nil {
		return nil, fmt.Errorf("train: head with weight decay %g diverged", wd)
	}
	return best, nil
}

// Probs returns the class probabilities (in Meta.Classes order) of each
// embedding (of the head's layer); a hybrid head scores only their dense
// part (see ProbsHybrid). It checks only the width: use Bind to check the
// encoder.
func (h *Head) Probs(xs [][]float32) ([][]float32, error) {
	d := h.Meta.InputDim
	for i, x := range xs {
		if len(x) != d {
			return nil, fmt.Errorf("%w: embedding %d is %d wide, the head takes %d", ErrHeadMismatch, i, len(x), d)
		}
	}
	return h.probs(xs, nil), nil
}

// probs scores dense rows of the head's width and, for a hybrid head,
// their lexical parts.
func (h *Head) probs(xs [][]float32, lex []Sparse) [][]float32 {
	d, c := h.Meta.InputDim, len(h.Meta.Classes)
	out := make([][]float32, len(xs))
	if len(xs) == 0 {
		return out
	}
	x := h.transform(xs)
	flat := make([]float32, len(xs)*c)
	var p headPass
	for lo := 0; lo < len(xs); lo += embedChunk {
		hi := min(lo+embedChunk, len(xs))
		h.logits(x[lo*d:hi*d], hi-lo, &p)
		z := p.logits[:(hi-lo)*c]
		if lex != nil {
			h.lexLogits(lex[lo:hi], z)
		}
		for i := range hi - lo {
			softmaxInPlace(z[i*c : (i+1)*c])
		}
		copy(flat[lo*c:hi*c], z)
	}
	for i := range out {
		out[i] = flat[i*c : (i+1)*c : (i+1)*c]
	}
	return out
}

// ProbsHybrid returns the class probabilities of each hybrid
// representation (EmbedHybrid over the head's layer) for a hybrid head. It
// checks only the widths: use Bind to check the encoder.
func (h *Head) ProbsHybrid(rows []Hybrid) ([][]float32, error) {
	if !h.Meta.Hybrid() {
		return nil, fmt.Errorf("%w: head %q reads %s features, not hybrid ones", ErrHeadMismatch, h.Meta.Task, HeadFeaturesEncoder)
	}
	xs := make([][]float32, len(rows))
	lex := make([]Sparse, len(rows))
	for i, r := range rows {
		if len(r.Dense) != h.Meta.InputDim {
			return nil, fmt.Errorf("%w: embedding %d is %d wide, the head takes %d", ErrHeadMismatch, i, len(r.Dense), h.Meta.InputDim)
		}
		xs[i], lex[i] = r.Dense, r.Lex
	}
	return h.probs(xs, lex), nil
}

// Predict returns the most probable class index of each embedding.
func (h *Head) Predict(xs [][]float32) ([]int, error) {
	ps, err := h.Probs(xs)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = argmax(p)
	}
	return out, nil
}

// Prediction is a head's answer for one text: the most probable label and
// the probability of every label.
type Prediction struct {
	Label  string             `json:"label"`
	Scores map[string]float64 `json:"scores"`
}

// Classifier is a head bound to the encoder it was trained on. It is safe
// for concurrent use.
type Classifier struct {
	head *Head
	enc  *Encoder
}

// Bind checks that enc is the encoder h was trained on (its EncoderHash) and
// returns the pair; another encoder is an error wrapping ErrHeadMismatch.
func (h *Head) Bind(enc *Encoder) (*Classifier, error) {
	return h.bind(enc, EncoderHash(enc))
}

func (h *Head) bind(enc *Encoder, hash string) (*Classifier, error) {
	layer := h.Meta.layer()
	d, err := enc.LayerDim(layer)
	if err != nil {
		return nil, fmt.Errorf("%w: head %q reads layer %q: %v", ErrHeadMismatch, h.Meta.Task, layer, err)
	}
	if d != h.Meta.InputDim || hash != h.Meta.EncoderHash {
		return nil, fmt.Errorf("%w: head %q was trained on the encoder of checkpoint %s (step %d, encoder %s, %s layer %d wide), not on this one (encoder %s, %d wide); train the head again on this checkpoint with thresher adapt",
			ErrHeadMismatch, h.Meta.Task, h.Meta.Checkpoint, h.Meta.Step, h.Meta.EncoderHash, layer, h.Meta.InputDim, hash, d)
	}
	if n := len(h.lexCols); n > 0 && int(h.lexCols[n-1]) >= enc.cfg.LexBuckets {
		return nil, fmt.Errorf("%w: head %q weighs lexical column %d, the encoder has %d", ErrHeadMismatch, h.Meta.Task, h.lexCols[n-1], enc.cfg.LexBuckets)
	}
	if h.Meta.Hybrid() {
		enc = enc.WithLexWeight(h.Meta.LexWeight)
	}
	return &Classifier{head: h, enc: enc}, nil
}

// Head returns the classifier's head.
func (c *Classifier) Head() *Head { return c.head }

// Classify embeds the texts with the classifier's encoder and returns a
// prediction for each.
func (c *Classifier) Classify(texts []string) []Prediction {
	ps, err := c.probs(texts)
	if err != nil { // Bind checked the layer and the width
		panic(err)
	}
	out := make([]Prediction, len(ps))
	for i, p := range ps {
		sc := make(map[string]float64, len(p))
		for j, v := range p {
			sc[c.head.Meta.Classes[j]] = float64(v)
		}
		out[i] = Prediction{Label: c.head.Meta.Classes[argmax(p)], Scores: sc}
	}
	return out
}

func (c *Classifier) probs(texts []string) ([][]float32, error) {
	layer := c.head.Meta.layer()
	if c.head.Meta.Hybrid() {
		rows, err := c.enc.EmbedHybrid(texts, layer)
		if err != nil {
			return nil, err
		}
		return c.head.ProbsHybrid(rows)
	}
	xs, err := c.enc.EmbedLayer(texts, layer)
	if err != nil {
		return nil, err
	}
	return c.head.Probs(xs)
}

// NewLinearHead builds a linear head from weights fitted outside
// TrainHead (thresher adapt fits hybrid heads with the linear probe's
// logistic regression). meta names the task, classes, encoder, layer and
// features (Kind, Hidden and LexColumns are set here); w is
// (meta.InputDim + len(lexCols)) x C, row-major, the rows of the dense
// columns then those of lexCols (ascending lexical columns, hybrid heads
// only), and b is C. The dense part is not standardised.
func NewLinearHead(meta HeadMeta, lexCols []uint32, w, b []float32) (*Head, error) {
	meta.Kind, meta.Hidden, meta.LexColumns = HeadLinear, 0, len(lexCols)
	meta.Classes = slices.Clone(meta.Classes)
	if err := checkMeta(&meta); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeadConfig, err)
	}
	d, c := meta.InputDim, len(meta.Classes)
	if len(w) != (d+len(lexCols))*c || len(b) != c {
		return nil, fmt.Errorf("%w: %d weights and %d biases, a linear head of %d+%d columns and %d classes has %d and %d",
			ErrHeadConfig, len(w), len(b), d, len(lexCols), c, (d+len(lexCols))*c, c)
	}
	if err := checkLexCols(lexCols); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeadConfig, err)
	}
	for _, ws := range [][]float32{w, b} {
		for _, x := range ws {
			if !(x >= -maxHeadParam && x <= maxHeadParam) {
				return nil, fmt.Errorf("%w: a weight is not finite or over %g in magnitude", ErrHeadConfig, maxHeadParam)
			}
		}
	}
	h := newHead(meta)
	for j := range h.scale {
		h.scale[j] = 1
	}
	copy(h.w1, w)
	copy(h.b1, b)
	copy(h.lexCols, lexCols)
	return h, nil
}

// checkLexCols checks that lexical columns ascend strictly and fit a head.
func checkLexCols(cols []uint32) error {
	for i, c := range cols {
		if c >= maxHeadLexCols || (i > 0 && c <= cols[i-1]) {
			return fmt.Errorf("lexical column %d of %d is %d: columns must ascend below %d", i, len(cols), c, maxHeadLexCols)
		}
	}
	return nil
}

// MarshalBinary encodes the head (see the format in the file's
// documentation).
func (h *Head) MarshalBinary() ([]byte, error) {
	meta, err := json.Marshal(h.Meta)
	if err != nil {
		return nil, fmt.Errorf("train: head metadata: %w", err)
	}
	d, hid, c := h.dims()
	n := paramCount(h.Meta.Kind, d, hid, c, len(h.lexCols))
	buf := make([]byte, 0, headHeaderLen+len(meta)+int(n)*4+4*len(h.lexCols)+4)
	buf = append(buf, headMagic[:]...)
	buf = binary.LittleEndian.AppendUint16(buf, HeadVersion)
	buf = binary.LittleEndian.AppendUint16(buf, 0)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(meta)))
	buf = binary.LittleEndian.AppendUint64(buf, n)
	buf = append(buf, meta...)
	for _, p := range h.params() {
		for _, x := range p {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
	}
	for _, col := range h.lexCols {
		buf = binary.LittleEndian.AppendUint32(buf, col)
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, checkpointCRC))
	return buf, nil
}

// UnmarshalBinary decodes and verifies a head; any damage is an error
// wrapping ErrCorruptHead, and h is unchanged.
func (h *Head) UnmarshalBinary(data []byte) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptHead, fmt.Sprintf(format, args...))
	}
	if len(data) < headHeaderLen+4 {
		return corrupt("%d bytes, shorter than a header", len(data))
	}
	if !bytes.Equal(data[:8], headMagic[:]) {
		return corrupt("not a head (bad magic)")
	}
	version := binary.LittleEndian.Uint16(data[8:])
	if version != 1 && version != HeadVersion {
		return corrupt("format version %d, this build reads 1 to %d", version, HeadVersion)
	}
	metaLen := uint64(binary.LittleEndian.Uint32(data[12:]))
	nparams := binary.LittleEndian.Uint64(data[16:])
	body := uint64(len(data) - headHeaderLen - 4)
	if metaLen > body || nparams > body/4 || metaLen+4*nparams > body || (body-metaLen-4*nparams)%4 != 0 {
		return corrupt("section lengths %d + 4x%d do not fit %d bytes", metaLen, nparams, body)
	}
	ncols := (body - metaLen - 4*nparams) / 4
	end := len(data) - 4
	if got, want := crc32.Checksum(data[:end], checkpointCRC), binary.LittleEndian.Uint32(data[end:]); got != want {
		return corrupt("checksum %08x, want %08x", got, want)
	}
	var meta HeadMeta
	if err := json.Unmarshal(data[headHeaderLen:headHeaderLen+metaLen], &meta); err != nil {
		return corrupt("metadata: %v", err)
	}
	if version == 1 && (meta.Layer != "" || meta.Features != "" || meta.LexColumns != 0) {
		return corrupt("metadata: a version-1 head with a layer, features or lexical columns")
	}
	if err := checkMeta(&meta); err != nil {
		return corrupt("metadata: %v", err)
	}
	if ncols != uint64(meta.LexColumns) {
		return corrupt("%d lexical columns, the metadata says %d", ncols, meta.LexColumns)
	}
	if want := paramCount(meta.Kind, meta.InputDim, meta.Hidden, len(meta.Classes), meta.LexColumns); nparams != want {
		return corrupt("%d parameters, a %s head of %d+%dx%dx%d has %d", nparams, meta.Kind, meta.InputDim, meta.LexColumns, meta.Hidden, len(meta.Classes), want)
	}
	nh := newHead(meta)
	p := data[headHeaderLen+metaLen:]
	for _, xs := range nh.params() {
		for i := range xs {
			x := math.Float32frombits(binary.LittleEndian.Uint32(p))
			if !(x >= -maxHeadParam && x <= maxHeadParam) {
				return corrupt("a parameter is not finite or over %g in magnitude", maxHeadParam)
			}
			xs[i] = x
			p = p[4:]
		}
	}
	for i := range nh.lexCols {
		nh.lexCols[i] = binary.LittleEndian.Uint32(p)
		p = p[4:]
	}
	if err := checkLexCols(nh.lexCols); err != nil {
		return corrupt("%v", err)
	}
	*h = *nh
	return nil
}

func checkMeta(m *HeadMeta) error {
	switch {
	case !ValidTaskName(m.Task):
		return fmt.Errorf("task name %q", truncate(m.Task, 64))
	case m.Kind != HeadLinear && m.Kind != HeadMLP:
		return fmt.Errorf("kind %q", truncate(string(m.Kind), 64))
	case m.InputDim < 1 || m.InputDim > maxHeadDim:
		return fmt.Errorf("input width %d", m.InputDim)
	case m.Kind == HeadMLP && (m.Hidden < 1 || m.Hidden > maxHeadDim):
		return fmt.Errorf("hidden width %d", m.Hidden)
	case m.Kind == HeadLinear && m.Hidden != 0:
		return fmt.Errorf("a linear head with hidden width %d", m.Hidden)
	case m.Step < 0:
		return fmt.Errorf("checkpoint step %d", m.Step)
	case m.Layer != "" && !slices.Contains(Layers, m.Layer):
		return fmt.Errorf("layer %q", truncate(m.Layer, 64))
	case m.Features != "" && m.Features != HeadFeaturesEncoder && m.Features != HeadFeaturesHybrid:
		return fmt.Errorf("features %q", truncate(m.Features, 64))
	case m.LexColumns < 0 || m.LexColumns > maxHeadLexCols:
		return fmt.Errorf("%d lexical columns", m.LexColumns)
	case m.LexColumns > 0 && !m.Hybrid():
		return fmt.Errorf("%d lexical columns in a head of %s features", m.LexColumns, HeadFeaturesEncoder)
	case m.Hybrid() && m.Kind != HeadLinear:
		return fmt.Errorf("a hybrid %s head (hybrid heads are linear)", m.Kind)
	case m.Hybrid() && !(m.LexWeight >= 0 && !math.IsInf(m.LexWeight, 0)):
		return fmt.Errorf("lexical weight %g", m.LexWeight)
	}
	return checkClasses(m.Classes)
}

// ReadHeadFile reads and verifies a head file.
func ReadHeadFile(path string) (*Head, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := new(Head)
	if err := h.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// WriteHeadFile writes h to path atomically: a temporary file in the same
// folder, fsync, rename over path, fsync of the folder.
func WriteHeadFile(path string, h *Head) error {
	data, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SaveHead writes h to the lake at HeadKey(h.Meta.Step, h.Meta.Task),
// replacing an older head of the same checkpoint and task, and returns the
// key.
func SaveHead(ctx context.Context, store lake.Store, h *Head) (string, error) {
	data, err := h.MarshalBinary()
	if err != nil {
		return "", err
	}
	key := HeadKey(h.Meta.Step, h.Meta.Task)
	if err := store.Replace(ctx, key, data); err != nil {
		return "", fmt.Errorf("train: write head %s: %w", key, err)
	}
	return key, nil
}

// LatestHead returns the key of the head of task trained on the newest
// checkpoint step, or an error wrapping ErrNoHead.
func LatestHead(ctx context.Context, store lake.Store, task string) (string, error) {
	objs, err := store.List(ctx, CheckpointPrefix)
	if err != nil {
		return "", fmt.Errorf("train: list heads: %w", err)
	}
	best, bestStep := "", int64(-1)
	for _, o := range objs {
		if step, t, ok := parseHeadKey(o.Key); ok && t == task && step > bestStep {
			best, bestStep = o.Key, step
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w %q in %s", ErrNoHead, truncate(task, 64), CheckpointPrefix)
	}
	return best, nil
}
