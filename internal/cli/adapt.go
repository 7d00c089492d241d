package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/train"
)

const adaptUsage = `--checkpoint PATH --task DIR [--head linear|mlp] [--features hybrid|encoder] [--layer bag+hidden] [--hidden 256] [--labels-per-class N|all] [--seed N]

Trains a classification head on the frozen representations of a checkpoint's
encoder and writes it beside the checkpoint: X.ckpt gives X.<task>.head
(in a lake, checkpoints/<step>.<task>.head, which POST /v1/classify serves).

A linear head reads the hybrid representation by default (the encoder's
layer joined with the text's TF-IDF over the stream, as thresher eval's
hybrid row) and is fitted by the same logistic regression as eval's linear
probe, C chosen on dev; an mlp head reads the encoder's layer alone.`

func runAdapt(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "adapt", adaptUsage)
	ckptPath := fs.String("checkpoint", "", "a checkpoint `file` (.ckpt), or a lake folder (the checkpoint its checkpoints/CURRENT names)")
	taskDir := fs.String("task", "", "a labeled task `folder` holding {train,dev,test}.jsonl.gz; its base name names the head")
	kind := fs.String("head", string(train.HeadLinear), "head architecture: linear or mlp (one hidden layer)")
	features := fs.String("features", "", "what the head reads: hybrid (linear heads only) or encoder (default: hybrid for a linear head, encoder for an mlp head)")
	layer := fs.String("layer", train.DefaultLayer, "representation of the encoder read (the dense part of hybrid): "+strings.Join(train.Layers, ", "))
	lexWeight := fs.Float64("lex-weight", 0, "weight of the hybrid's lexical part against its dense part (0: the checkpoint's lex_weight)")
	hidden := fs.Int("hidden", train.DefaultHeadHidden, "hidden units of an mlp head")
	labels := fs.String("labels-per-class", "all", "labeled train examples per class (a number, or all)")
	seed := fs.Uint64("seed", 1, "seed of the label draw (as thresher eval's draw 0) and of the head's initialisation")
	maxEpochs := fs.Int("max-epochs", train.DefaultHeadMaxEpochs, "passes over the labeled examples at most")
	patience := fs.Int("patience", train.DefaultHeadPatience, "epochs without a better dev accuracy before stopping")
	decays := fs.String("weight-decays", "0,1e-4,1e-3,1e-2", "L2 coefficients tried, the best on dev kept (comma-separated)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "goroutines for embedding")
	progress := fs.Duration("progress", 2*time.Second, "print a progress line to stderr this often (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	var problems []string
	if *ckptPath == "" {
		problems = append(problems, "--checkpoint is required")
	}
	if *taskDir == "" {
		problems = append(problems, "--task is required")
	} else if name := filepath.Base(filepath.Clean(*taskDir)); !train.ValidTaskName(name) {
		problems = append(problems, fmt.Sprintf("--task %s: the folder name %q cannot name a head (1 to 128 of A-Z a-z 0-9 _ . -, not starting with a dot)", *taskDir, name))
	}
	lpc, err := eval.ParseLabelsPerClass(*labels)
	switch {
	case err != nil:
		problems = append(problems, "--labels-per-class: "+err.Error())
	case len(lpc) != 1:
		problems = append(problems, fmt.Sprintf("--labels-per-class %q: give one value", *labels))
	}
	var wds []float64
	for _, s := range splitList(*decays) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--weight-decays: %q is not a number", s))
			continue
		}
		wds = append(wds, v)
	}
	if *workers < 1 {
		problems = append(problems, fmt.Sprintf("--workers %d: must be at least 1", *workers))
	}
	if *features == "" {
		*features = train.HeadFeaturesHybrid
		if train.HeadKind(*kind) == train.HeadMLP {
			*features = train.HeadFeaturesEncoder
		}
	}
	switch {
	case *features != train.HeadFeaturesHybrid && *features != train.HeadFeaturesEncoder:
		problems = append(problems, fmt.Sprintf("--features %q is not hybrid or encoder", *features))
	case *features == train.HeadFeaturesHybrid && train.HeadKind(*kind) == train.HeadMLP:
		problems = append(problems, "--features hybrid takes a linear head (--head linear); an mlp head reads --features encoder")
	}
	if !slices.Contains(train.Layers, *layer) {
		problems = append(problems, fmt.Sprintf("--layer %q is not one of %s", *layer, strings.Join(train.Layers, ", ")))
	}
	if !(*lexWeight >= 0) || math.IsInf(*lexWeight, 0) {
		problems = append(problems, "--lex-weight must be a finite number, not negative")
	}
	if *progress < 0 {
		problems = append(problems, "--progress must not be negative")
	}
	cfg := train.HeadConfig{Kind: train.HeadKind(*kind), Hidden: *hidden, MaxEpochs: *maxEpochs, Patience: *patience, WeightDecays: wds, Seed: *seed}
	if wds == nil {
		cfg.WeightDecays = []float64{} // an empty list is a problem, not "use the defaults"
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n")[1:] {
			problems = append(problems, strings.TrimPrefix(line, "  - "))
		}
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}

	// Everything that can be wrong with the inputs is found before any work.
	task, err := eval.LoadTask(*taskDir)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--task %s: %w", *taskDir, err)}
	}
	if len(task.Classes) < 2 {
		return usagef("--task %s: %d class, a head needs at least 2", *taskDir, len(task.Classes))
	}
	ck, ckFile, err := resolveCheckpoint(ctx, e, *ckptPath)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("checkpoint %s: %w", *ckptPath, err)}
	}
	headPath, err := train.HeadPath(ckFile, task.Name)
	if err != nil {
		return &UsageError{Err: err}
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("checkpoint %s: %w", ckFile, err)}
	}
	if *lexWeight > 0 {
		enc = enc.WithLexWeight(*lexWeight)
	}
	dim, _ := enc.LayerDim(*layer) // checked above

	per := int(lpc[0])
	idx := eval.Draw(task.Train.Labels, len(task.Classes), per, *seed, 0)
	perText := "all"
	if per != eval.AllLabels {
		perText = strconv.Itoa(per)
	}
	fmt.Fprintf(e.stderr, "adapt: checkpoint %s (step %d, %s layer %d wide, %s features), task %s: %d classes, %d labeled train examples (%s per class), dev %d, test %d\n",
		ckFile, ck.Meta.Step, *layer, dim, *features, task.Name, len(task.Classes), len(idx), perText, task.Dev.Len(), task.Test.Len())

	texts := make([]string, len(idx))
	ytr := make([]int, len(idx))
	for i, j := range idx {
		texts[i], ytr[i] = task.Train.Texts[j], task.Train.Labels[j]
	}
	pr := &adaptProgress{w: e.stderr, period: *progress, total: len(texts) + task.Dev.Len() + task.Test.Len(), began: time.Now()}
	data := train.HeadData{
		Task: task.Name, Classes: task.Classes, Layer: *layer,
		Checkpoint: train.CheckpointKey(ck.Meta.Step), Step: ck.Meta.Step, EncoderHash: train.EncoderHash(enc),
	}
	began := time.Now()
	var head *train.Head
	if *features == train.HeadFeaturesHybrid {
		head, err = fitHybridHead(ctx, enc, data, texts, ytr, task, *seed, *workers, pr)
	} else {
		head, err = fitEncoderHead(ctx, enc, cfg, data, texts, ytr, task, *workers, pr)
	}
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	cls, err := head.Bind(enc)
	if err != nil {
		return err
	}
	// The test split is scored through the head as it is served.
	pred := classifyAll(cls, task.Test.Texts, *workers, pr)
	pr.finish()
	hit := 0
	for i, p := range pred {
		if p == task.Classes[task.Test.Labels[i]] {
			hit++
		}
	}
	testAcc := float64(hit) / float64(len(pred))
	fmt.Fprintf(e.stderr, "adapt: fitted in %v\n", time.Since(began).Round(time.Millisecond))
	if err := train.WriteHeadFile(headPath, head); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	m := head.Meta
	var what string
	switch {
	case m.Hybrid():
		what = fmt.Sprintf("linear on hybrid features (%s layer + %d lexical columns, lexical weight %g), C %g, %d iterations", m.Layer, m.LexColumns, m.LexWeight, m.C, m.Epochs)
	case m.Kind == train.HeadMLP:
		what = fmt.Sprintf("mlp, %d hidden, on the %s layer, weight decay %g, epoch %d", m.Hidden, m.Layer, m.WeightDecay, m.Epochs)
	default:
		what = fmt.Sprintf("linear on the %s layer, weight decay %g, epoch %d", m.Layer, m.WeightDecay, m.Epochs)
	}
	fmt.Fprintf(e.stdout, "task            %s (%d classes)\n", task.Name, len(task.Classes))
	fmt.Fprintf(e.stdout, "checkpoint      %s (step %d, encoder %s)\n", ckFile, m.Step, m.EncoderHash)
	fmt.Fprintf(e.stdout, "head            %s\n", what)
	fmt.Fprintf(e.stdout, "labels          %d train examples (%s per class, seed %d)\n", len(idx), perText, *seed)
	fmt.Fprintf(e.stdout, "dev accuracy    %.3f\n", m.DevAccuracy)
	fmt.Fprintf(e.stdout, "test accuracy   %.3f\n", testAcc)
	fmt.Fprintf(e.stdout, "majority rate   %.3f (test accuracy of the train split's most frequent class)\n", task.MajorityRate())
	fmt.Fprintf(e.stdout, "wrote           %s\n", headPath)
	return nil
}

// resolveCheckpoint reads the checkpoint at path (a .ckpt file, or a lake
// folder: the one its CURRENT names) and returns it with its file.
func resolveCheckpoint(ctx context.Context, e *env, path string) (*train.Checkpoint, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	if !fi.IsDir() {
		ck, err := train.ReadCheckpointFile(path)
		return ck, path, err
	}
	if _, err := os.Stat(filepath.Join(path, filepath.FromSlash(train.CheckpointPrefix))); err != nil {
		return nil, "", fmt.Errorf("%s is a folder without %s: not a lake with checkpoints", path, train.CheckpointPrefix)
	}
	store, err := lake.OpenDir(path)
	if err != nil {
		return nil, "", err
	}
	ck, key, err := train.NewCheckpointStore(store, 1, e.log).Load(ctx)
	if err != nil {
		return nil, "", err
	}
	return ck, filepath.Join(path, filepath.FromSlash(key)), nil
}

// fitEncoderHead trains a head (TrainHead) on the encoder's layer.
func fitEncoderHead(ctx context.Context, enc *train.Encoder, cfg train.HeadConfig, data train.HeadData, texts []string, ytr []int, task *eval.Task, workers int, pr *adaptProgress) (*train.Head, error) {
	embed := func(texts []string) [][]float32 {
		out := make([][]float32, len(texts))
		inChunks(len(texts), workers, func(lo, hi int) {
			xs, _ := enc.EmbedLayer(texts[lo:hi], data.Layer) // the layer was checked
			copy(out[lo:hi], xs)
			pr.add(hi - lo)
		})
		return out
	}
	data.Train = train.HeadSplit{X: embed(texts), Y: ytr}
	data.Dev = train.HeadSplit{X: embed(task.Dev.Texts), Y: task.Dev.Labels}
	fmt.Fprintf(pr.w, "adapt: fitting a %s head for each of %d weight decays, up to %d epochs\n", cfg.Kind, len(cfg.WeightDecays), cfg.MaxEpochs)
	return train.TrainHead(ctx, cfg, data)
}

// fitHybridHead fits a linear head on the hybrid representation with the
// linear probe's logistic regression, C chosen on dev as thresher eval
// does, and turns it into a head that weighs the dense columns and the
// lexical columns the training texts use.
func fitHybridHead(ctx context.Context, enc *train.Encoder, data train.HeadData, texts []string, ytr []int, task *eval.Task, seed uint64, workers int, pr *adaptProgress) (*train.Head, error) {
	feats, err := eval.NewHybridFeatures(train.HeadFeaturesHybrid, enc, data.Layer, workers)
	if err != nil {
		return nil, err
	}
	xtr, err := feats.Transform(ctx, texts, pr.add)
	if err != nil {
		return nil, err
	}
	xdev, err := feats.Transform(ctx, task.Dev.Texts, pr.add)
	if err != nil {
		return nil, err
	}
	k := len(task.Classes)
	fmt.Fprintf(pr.w, "adapt: fitting a linear head on hybrid features for each C of %v\n", eval.DefaultCs)
	best, accs := eval.SelectC(xtr, ytr, k, xdev, task.Dev.Labels, eval.DefaultCs)
	cols, w := best.Weights()
	dim, _ := enc.LayerDim(data.Layer)
	// Rows of the head: the dense columns in order, then the lexical
	// columns the training rows use, ascending.
	type lexRow struct {
		col uint32
		src int
	}
	dense := make([]int, dim)
	for i := range dense {
		dense[i] = -1
	}
	var lex []lexRow
	for l, g := range cols {
		if int(g) < dim {
			dense[g] = l
		} else {
			lex = append(lex, lexRow{uint32(int(g) - dim), l})
		}
	}
	slices.SortFunc(lex, func(a, b lexRow) int { return cmp.Compare(a.col, b.col) })
	hw := make([]float32, (dim+len(lex))*k)
	put := func(row, src int) {
		for c := range k {
			hw[row*k+c] = float32(w[src*k+c])
		}
	}
	for j, src := range dense {
		if src >= 0 {
			put(j, src)
		}
	}
	lexCols := make([]uint32, len(lex))
	for i, r := range lex {
		lexCols[i] = r.col
		put(dim+i, r.src)
	}
	hb := make([]float32, k)
	for c := range k {
		hb[c] = float32(w[len(cols)*k+c])
	}
	devAcc := slices.Max(accs)
	return train.NewLinearHead(train.HeadMeta{
		Task: data.Task, Classes: data.Classes, InputDim: dim,
		Checkpoint: data.Checkpoint, Step: data.Step, EncoderHash: data.EncoderHash,
		Layer: data.Layer, Features: train.HeadFeaturesHybrid, LexWeight: enc.Config().LexWeight, C: best.C,
		WeightDecay: 1 / (best.C * float64(len(ytr))), Epochs: best.Iterations, DevAccuracy: devAcc,
		TrainRows: len(ytr), Seed: seed, Time: time.Now().UTC().Truncate(time.Second),
	}, lexCols, hw, hb)
}

// classifyAll labels texts with cls over workers goroutines.
func classifyAll(cls *train.Classifier, texts []string, workers int, pr *adaptProgress) []string {
	out := make([]string, len(texts))
	inChunks(len(texts), workers, func(lo, hi int) {
		for i, p := range cls.Classify(texts[lo:hi]) {
			out[lo+i] = p.Label
		}
		pr.add(hi - lo)
	})
	return out
}

// inChunks calls fn on chunks [lo, hi) of n items over workers goroutines.
func inChunks(n, workers int, fn func(lo, hi int)) {
	const chunk = 512
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				fn(lo, min(lo+chunk, n))
			}
		}()
	}
	for lo := 0; lo < n; lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
}

// adaptProgress prints an embedding progress line with rate and ETA at
// most every period.
type adaptProgress struct {
	w      io.Writer
	period time.Duration
	total  int
	began  time.Time

	mu   sync.Mutex
	done int
	last time.Time
}

func (p *adaptProgress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.period <= 0 || time.Since(p.last) < p.period {
		return
	}
	p.last = time.Now()
	p.line()
}

func (p *adaptProgress) line() {
	el := time.Since(p.began).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "adapt: embedding %d/%d texts (%.0f texts/s), eta %s\n", p.done, p.total, rate, eta)
}

func (p *adaptProgress) finish() {
	if p.period > 0 {
		p.mu.Lock()
		p.line()
		p.mu.Unlock()
	}
}
