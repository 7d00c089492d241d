package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/train"
)

const evalUsage = `--checkpoint PATH | --lake DIR  --task DIR [--task DIR ...] [--labels-per-class 16,64,all] [--draws 5] [--features encoder,hybrid] [--layer bag+hidden] [--lex-weight W] [--baseline tfidf,random] [--vectors NAME=DIR ...] [--json] [--seed N]`

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runEval(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "eval", evalUsage)
	ckptPath := fs.String("checkpoint", "", "a checkpoint `file` (.ckpt), or a lake folder (the checkpoint its checkpoints/CURRENT names)")
	lakeDir := fs.String("lake", "", "a lake `folder`: score the checkpoint its checkpoints/CURRENT names")
	var tasks stringList
	fs.Var(&tasks, "task", "a labeled task `folder` holding {train,dev,test}.jsonl.gz (repeatable)")
	labels := fs.String("labels-per-class", "16,64,all", "labeled train examples per class, comma-separated (numbers or all)")
	draws := fs.Int("draws", 5, "seeded draws of the train labels per labels-per-class value")
	baselines := fs.String("baseline", "tfidf,random", "baselines scored beside the encoder, comma-separated: tfidf, random (or none)")
	var vectors stringList
	fs.Var(&vectors, "vectors", "external vectors scored as feature set NAME, `NAME=DIR`: DIR/TASK/{train,dev,test}.vec (or DIR/{train,dev,test}.vec), one vector a line aligned with the split's lines, as fasttext print-sentence-vectors writes them (repeatable)")
	layer := fs.String("layer", train.DefaultLayer, "representation of the encoder (the dense part of hybrid, and the random baseline) scored: "+strings.Join(train.Layers, ", "))
	encFeats := fs.String("features", "encoder,hybrid", "representations of the checkpoint scored, comma-separated: encoder (the dense embedding), hybrid (the embedding joined with TF-IDF over the stream's term statistics)")
	lexWeight := fs.Float64("lex-weight", 0, "weight of the hybrid's lexical part against its dense part (0: the checkpoint's lex_weight)")
	asJSON := fs.Bool("json", false, "print a JSON array of result rows on stdout instead of a table")
	seed := fs.Uint64("seed", 1, "seed of the label draws and of the random encoder")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "goroutines for embedding and fitting")
	progress := fs.Duration("progress", 2*time.Second, "print a progress line to stderr this often (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	var problems []string
	switch {
	case *ckptPath == "" && *lakeDir == "":
		problems = append(problems, "--checkpoint or --lake is required")
	case *ckptPath != "" && *lakeDir != "":
		problems = append(problems, "give --checkpoint or --lake, not both")
	}
	if len(tasks) == 0 {
		problems = append(problems, "--task is required")
	}
	lpc, err := eval.ParseLabelsPerClass(*labels)
	if err != nil {
		problems = append(problems, "--labels-per-class: "+err.Error())
	}
	var withTFIDF, withRandom bool
	for _, b := range splitList(*baselines) {
		switch b {
		case eval.FeaturesTFIDF:
			withTFIDF = true
		case eval.FeaturesRandom:
			withRandom = true
		case "none":
		default:
			problems = append(problems, fmt.Sprintf("--baseline %q is not tfidf, random or none", b))
		}
	}
	type vectorSet struct{ name, dir string }
	var vsets []vectorSet
	seen := map[string]bool{eval.FeaturesEncoder: true, eval.FeaturesTFIDF: true, eval.FeaturesRandom: true}
	for _, v := range vectors {
		name, dir, ok := strings.Cut(v, "=")
		switch {
		case !ok || name == "" || dir == "":
			problems = append(problems, fmt.Sprintf("--vectors %q is not NAME=DIR", v))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("--vectors %q: the name %q is taken", v, name))
		default:
			seen[name] = true
			vsets = append(vsets, vectorSet{name, dir})
		}
	}
	var withEncoder, withHybrid bool
	for _, f := range strings.Split(*encFeats, ",") {
		switch strings.TrimSpace(f) {
		case eval.FeaturesEncoder:
			withEncoder = true
		case eval.FeaturesHybrid:
			withHybrid = true
		case "":
		default:
			problems = append(problems, fmt.Sprintf("--features: %q is not encoder or hybrid", f))
		}
	}
	if *lexWeight < 0 {
		problems = append(problems, "--lex-weight must not be negative")
	}
	if !slices.Contains(train.Layers, *layer) {
		problems = append(problems, fmt.Sprintf("--layer %q is not one of %s", *layer, strings.Join(train.Layers, ", ")))
	}
	if *progress < 0 {
		problems = append(problems, "--progress must not be negative")
	}
	if *draws < 1 {
		problems = append(problems, fmt.Sprintf("--draws %d: must be at least 1", *draws))
	}
	if *workers < 1 {
		problems = append(problems, fmt.Sprintf("--workers %d: must be at least 1", *workers))
	}
	cfg := eval.Config{LabelsPerClass: lpc, Draws: *draws, Seed: *seed, Workers: *workers}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil && lpc != nil && *draws >= 1 && *workers >= 1 {
		problems = append(problems, err.Error())
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}

	// Everything that can be wrong with the inputs is found before any work.
	var loaded []*eval.Task
	for _, dir := range tasks {
		t, err := eval.LoadTask(dir)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--task %s: %w", dir, err)}
		}
		loaded = append(loaded, t)
	}
	vfeats := make([][]eval.Features, len(loaded))
	for i, t := range loaded {
		for _, v := range vsets {
			f, err := eval.NewVectorFeatures(v.name, t, v.dir)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("--vectors %s=%s: task %s: %w", v.name, v.dir, t.Name, err)}
			}
			vfeats[i] = append(vfeats[i], f)
		}
	}
	path := *ckptPath
	if path == "" {
		path = *lakeDir
	}
	ck, err := openCheckpoint(ctx, e, path)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("checkpoint %s: %w", path, err)}
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("checkpoint %s: %w", path, err)}
	}
	dim, _ := enc.LayerDim(*layer)
	fmt.Fprintf(e.stderr, "eval: checkpoint step %d, layer %s, dim %d, %d task(s)\n", ck.Meta.Step, *layer, dim, len(loaded))
	var feats []eval.Features
	var random eval.Features
	if *lexWeight > 0 {
		enc = enc.WithLexWeight(*lexWeight)
	}
	if withEncoder {
		if *layer == train.LayerOutput {
			feats = append(feats, eval.NewEncoderFeatures(eval.FeaturesEncoder, enc, *workers))
		} else {
			f, err := eval.NewLayerFeatures(eval.FeaturesEncoder, enc, *layer, *workers)
			if err != nil {
				return err
			}
			feats = append(feats, f)
		}
	}
	if withHybrid {
		f, err := eval.NewHybridFeatures(eval.FeaturesHybrid, enc, *layer, *workers)
		if err != nil {
			return err
		}
		feats = append(feats, f)
	}
	if withRandom {
		var err error
		if *layer == train.LayerOutput {
			random, err = eval.NewRandomFeatures(enc.Config(), *seed, *workers)
		} else {
			random, err = eval.NewRandomLayerFeatures(enc.Config(), *seed, *layer, *workers)
		}
		if err != nil {
			return err
		}
	}

	pr := newEvalProgress(e.stderr, *progress)
	var rows []eval.Result
	for i, t := range loaded {
		fs := append([]eval.Features(nil), feats...)
		if withTFIDF {
			fs = append(fs, eval.NewTFIDF(t.Train.Texts))
		}
		if random != nil {
			fs = append(fs, random)
		}
		fs = append(fs, vfeats[i]...)
		res, err := eval.Evaluate(ctx, t, fs, cfg, pr.update)
		if err != nil {
			return fmt.Errorf("task %s: %w", t.Name, err)
		}
		pr.finish(t.Name)
		rows = append(rows, res...)
	}

	if *asJSON {
		if rows == nil {
			rows = []eval.Result{}
		}
		data, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", data)
		return err
	}
	return writeEvalTable(e.stdout, loaded, rows)
}

// writeEvalTable prints the rows for people, then one line per task.
func writeEvalTable(w io.Writer, tasks []*eval.Task, rows []eval.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "task\tfeatures\tclassifier\tlabels/class\taccuracy\tmacro-F1\tdraws\tchosen (C or k)")
	for _, r := range rows {
		var chosen []string
		for _, c := range r.Chosen {
			chosen = append(chosen, fmt.Sprintf("%g", c))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f ± %.3f\t%.3f ± %.3f\t%d\t%s\n", r.Task, r.Features, r.Classifier,
			r.LabelsPerClass, r.AccuracyMean, r.AccuracyStd, r.MacroF1Mean, r.MacroF1Std, r.Draws, strings.Join(chosen, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, t := range tasks {
		fmt.Fprintf(w, "%s: %d classes, train %d / dev %d / test %d, majority-class test accuracy %.3f\n",
			t.Name, len(t.Classes), t.Train.Len(), t.Dev.Len(), t.Test.Len(), t.MajorityRate())
	}
	return nil
}

// evalProgress prints a progress line with rate and ETA at most every
// period.
type evalProgress struct {
	w      io.Writer
	period time.Duration
	mu     sync.Mutex
	key    string
	began  time.Time
	last   time.Time
}

func newEvalProgress(w io.Writer, period time.Duration) *evalProgress {
	return &evalProgress{w: w, period: period}
}

func (p *evalProgress) update(pr eval.Progress) {
	if p.period <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	key := pr.Task + "/" + pr.Stage + "/" + pr.Features
	if key != p.key {
		p.key, p.began, p.last = key, now, now
	}
	if now.Sub(p.last) < p.period && pr.Done < pr.Total {
		return
	}
	p.last = now
	el := now.Sub(p.began).Seconds()
	rate := float64(pr.Done) / max(el, 1e-9)
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(pr.Total-pr.Done)/rate) * time.Second).Round(time.Second).String()
	}
	switch pr.Stage {
	case eval.StageEmbed:
		fmt.Fprintf(p.w, "eval: %s: embedding with %s, %d/%d texts (%.0f texts/s), eta %s\n", pr.Task, pr.Features, pr.Done, pr.Total, rate, eta)
	default:
		fmt.Fprintf(p.w, "eval: %s: fitting probes, %d/%d fits (%.2f fits/s), eta %s\n", pr.Task, pr.Done, pr.Total, rate, eta)
	}
}

func (p *evalProgress) finish(task string) {
	if p.period > 0 {
		fmt.Fprintf(p.w, "eval: %s: done\n", task)
	}
}
