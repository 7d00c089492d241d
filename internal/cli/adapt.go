package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/train"
)

const adaptUsage = `--checkpoint PATH --task DIR [--head linear|mlp] [--hidden 256] [--labels-per-class N|all] [--seed N]

Trains a classification head on the frozen embeddings of a checkpoint's
encoder and writes it beside the checkpoint: X.ckpt gives X.<task>.head
(in a lake, checkpoints/<step>.<task>.head, which POST /v1/classify serves).`

func runAdapt(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "adapt", adaptUsage)
	ckptPath := fs.String("checkpoint", "", "a checkpoint `file` (.ckpt), or a lake folder (the checkpoint its checkpoints/CURRENT names)")
	taskDir := fs.String("task", "", "a labeled task `folder` holding {train,dev,test}.jsonl.gz; its base name names the head")
	kind := fs.String("head", string(train.HeadLinear), "head architecture: linear or mlp (one hidden layer)")
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

	per := int(lpc[0])
	idx := eval.Draw(task.Train.Labels, len(task.Classes), per, *seed, 0)
	perText := "all"
	if per != eval.AllLabels {
		perText = strconv.Itoa(per)
	}
	fmt.Fprintf(e.stderr, "adapt: checkpoint %s (step %d, dim %d), task %s: %d classes, %d labeled train examples (%s per class), dev %d, test %d\n",
		ckFile, ck.Meta.Step, enc.Dim(), task.Name, len(task.Classes), len(idx), perText, task.Dev.Len(), task.Test.Len())

	texts := make([]string, len(idx))
	ytr := make([]int, len(idx))
	for i, j := range idx {
		texts[i], ytr[i] = task.Train.Texts[j], task.Train.Labels[j]
	}
	pr := &adaptProgress{w: e.stderr, period: *progress, total: len(texts) + task.Dev.Len() + task.Test.Len(), began: time.Now()}
	xtr := embedAll(enc, texts, *workers, pr)
	xdev := embedAll(enc, task.Dev.Texts, *workers, pr)
	xtest := embedAll(enc, task.Test.Texts, *workers, pr)
	pr.finish()

	began := time.Now()
	fmt.Fprintf(e.stderr, "adapt: fitting a %s head for each of %d weight decays, up to %d epochs\n", cfg.Kind, len(cfg.WeightDecays), cfg.MaxEpochs)
	head, err := train.TrainHead(ctx, cfg, train.HeadData{
		Task: task.Name, Classes: task.Classes,
		Checkpoint: train.CheckpointKey(ck.Meta.Step), Step: ck.Meta.Step, EncoderHash: train.EncoderHash(enc),
		Train: train.HeadSplit{X: xtr, Y: ytr}, Dev: train.HeadSplit{X: xdev, Y: task.Dev.Labels},
	})
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	pred, err := head.Predict(xtest)
	if err != nil {
		return err
	}
	hit := 0
	for i, p := range pred {
		if p == task.Test.Labels[i] {
			hit++
		}
	}
	testAcc := float64(hit) / float64(len(pred))
	fmt.Fprintf(e.stderr, "adapt: fitted in %v\n", time.Since(began).Round(time.Millisecond))
	if err := train.WriteHeadFile(headPath, head); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	m := head.Meta
	hid := ""
	if m.Kind == train.HeadMLP {
		hid = fmt.Sprintf(", %d hidden", m.Hidden)
	}
	fmt.Fprintf(e.stdout, "task            %s (%d classes)\n", task.Name, len(task.Classes))
	fmt.Fprintf(e.stdout, "checkpoint      %s (step %d, encoder %s)\n", ckFile, m.Step, m.EncoderHash)
	fmt.Fprintf(e.stdout, "head            %s%s, weight decay %g, epoch %d\n", m.Kind, hid, m.WeightDecay, m.Epochs)
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

// embedAll embeds texts in chunks over workers goroutines; the result does
// not depend on workers.
func embedAll(enc *train.Encoder, texts []string, workers int, pr *adaptProgress) [][]float32 {
	const chunk = 512
	out := make([][]float32, len(texts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				hi := min(lo+chunk, len(texts))
				copy(out[lo:hi], enc.Embed(texts[lo:hi]))
				pr.add(hi - lo)
			}
		}()
	}
	for lo := 0; lo < len(texts); lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
	return out
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
