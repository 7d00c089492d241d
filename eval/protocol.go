package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("eval: invalid configuration")

// Classifier names, as they appear in Result.Classifier.
const (
	ClassifierLinear = "linear"
	ClassifierKNN    = "knn"
)

// LabelsPerClass is a number of labeled train examples per class, or
// AllLabels; it marshals as the number or the string "all".
type LabelsPerClass int

// MarshalJSON writes the number, or "all".
func (l LabelsPerClass) MarshalJSON() ([]byte, error) {
	if l == AllLabels {
		return []byte(`"all"`), nil
	}
	return []byte(strconv.Itoa(int(l))), nil
}

// UnmarshalJSON reads a positive number or "all".
func (l *LabelsPerClass) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := ParseLabelsPerClass(s)
		if err != nil {
			return err
		}
		*l = v[0]
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil || n < 1 {
		return fmt.Errorf("%w: labels_per_class %s is not a positive number or \"all\"", ErrConfig, b)
	}
	*l = LabelsPerClass(n)
	return nil
}

func (l LabelsPerClass) String() string {
	if l == AllLabels {
		return "all"
	}
	return strconv.Itoa(int(l))
}

// ParseLabelsPerClass parses a comma-separated list such as "16,64,all".
func ParseLabelsPerClass(s string) ([]LabelsPerClass, error) {
	var out []LabelsPerClass
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p == "all" {
			out = append(out, AllLabels)
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: labels per class %q is not a positive number or \"all\"", ErrConfig, p)
		}
		out = append(out, LabelsPerClass(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no labels per class in %q", ErrConfig, s)
	}
	return out, nil
}

// Config configures Evaluate.
type Config struct {
	LabelsPerClass []LabelsPerClass `yaml:"labels_per_class"` // 16, 64, all
	Draws          int              `yaml:"draws"`            // seeded label draws per labels-per-class value (5)
	Seed           uint64           `yaml:"seed"`             // seed of the draws
	Cs             []float64        `yaml:"cs"`               // grid of the linear probe's C, ascending (DefaultCs)
	Ks             []int            `yaml:"ks"`               // grid of the kNN probe's k, ascending (DefaultKs)
	Classifiers    []string         `yaml:"classifiers"`      // linear, knn (both)
	Workers        int              `yaml:"workers"`          // goroutines for the fits (GOMAXPROCS)
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if len(c.LabelsPerClass) == 0 {
		c.LabelsPerClass = []LabelsPerClass{16, 64, AllLabels}
	}
	if c.Draws == 0 {
		c.Draws = 5
	}
	if len(c.Cs) == 0 {
		c.Cs = slices.Clone(DefaultCs)
	}
	if len(c.Ks) == 0 {
		c.Ks = slices.Clone(DefaultKs)
	}
	if len(c.Classifiers) == 0 {
		c.Classifiers = []string{ClassifierLinear, ClassifierKNN}
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
}

// Validate reports every problem at once, wrapped in ErrConfig.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, l := range c.LabelsPerClass {
		if l < 0 {
			add("labels_per_class: %d is negative", l)
		}
	}
	if c.Draws < 1 || c.Draws > 1000 {
		add("draws: %d is not in [1, 1000]", c.Draws)
	}
	if !slices.IsSorted(c.Cs) || len(c.Cs) == 0 || c.Cs[0] <= 0 {
		add("cs: %v is not an ascending list of positive numbers", c.Cs)
	}
	if !slices.IsSorted(c.Ks) || len(c.Ks) == 0 || c.Ks[0] < 1 {
		add("ks: %v is not an ascending list of positive numbers", c.Ks)
	}
	if c.Workers < 1 || c.Workers > 256 {
		add("workers: %d is not in [1, 256]", c.Workers)
	}
	for i, cl := range c.Classifiers {
		if cl != ClassifierLinear && cl != ClassifierKNN || slices.Contains(c.Classifiers[:i], cl) {
			add("classifiers: %q is not %s or %s, once each", cl, ClassifierLinear, ClassifierKNN)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

// Result is one row of an evaluation: a feature set and a classifier at
// one labels-per-class value, mean and sample standard deviation over the
// draws of test accuracy and macro-F1.
type Result struct {
	Task           string         `json:"task"`
	Features       string         `json:"features"`
	Classifier     string         `json:"classifier"`
	LabelsPerClass LabelsPerClass `json:"labels_per_class"`
	AccuracyMean   float64        `json:"accuracy_mean"`
	AccuracyStd    float64        `json:"accuracy_std"`
	MacroF1Mean    float64        `json:"macro_f1_mean"`
	MacroF1Std     float64        `json:"macro_f1_std"`
	Draws          int            `json:"draws"`
	DevAccuracy    float64        `json:"dev_accuracy_mean"` // mean over the draws of the accuracy on dev of the chosen C or k

	// Chosen is the C (linear) or k (knn) each draw chose on dev.
	Chosen []float64 `json:"-"`
}

// Progress stages.
const (
	StageEmbed = "embed" // Done, Total count texts of one feature set
	StageFit   = "fit"   // Done, Total count fits (one feature set, labels value and draw each)
)

// Progress reports how far Evaluate is.
type Progress struct {
	Task     string
	Stage    string
	Features string // the feature set being transformed (StageEmbed)
	Done     int
	Total    int
}

// drawsFor is how many distinct draws a labels-per-class value has: with
// AllLabels every draw would hold the same examples, so there is one.
func drawsFor(l LabelsPerClass, draws int) int {
	if l == AllLabels {
		return 1
	}
	return draws
}

// Evaluate scores every feature set with both classifiers on task, for
// every labels-per-class value of cfg, over cfg.Draws seeded draws of the
// train labels (the same draws for every feature set). progress, when not
// nil, is called from the calling goroutine or the workers, serialised.
func Evaluate(ctx context.Context, task *Task, feats []Features, cfg Config, progress func(Progress)) ([]Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := len(task.Classes)
	// The draws, and the train rows any of them uses.
	type drawKey struct{ l, d int }
	draws := map[drawKey][]int{}
	used := map[int]bool{}
	for li, l := range cfg.LabelsPerClass {
		for d := range drawsFor(l, cfg.Draws) {
			idx := Draw(task.Train.Labels, k, int(l), cfg.Seed, d)
			draws[drawKey{li, d}] = idx
			for _, i := range idx {
				used[i] = true
			}
		}
	}
	rows := make([]int, 0, len(used))
	for i := range used {
		rows = append(rows, i)
	}
	slices.Sort(rows)
	pos := make(map[int]int, len(rows))
	texts := make([]string, len(rows))
	for p, i := range rows {
		pos[i] = p
		texts[p] = task.Train.Texts[i]
	}

	var mu sync.Mutex
	report := func(p Progress) {
		if progress != nil {
			mu.Lock()
			progress(p)
			mu.Unlock()
		}
	}

	// Transform the splits once per feature set.
	type mats struct{ train, dev, test *Matrix }
	fm := make([]mats, len(feats))
	for fi, f := range feats {
		total := len(texts) + task.Dev.Len() + task.Test.Len()
		var done atomic.Int64
		tick := func(n int) {
			report(Progress{Task: task.Name, Stage: StageEmbed, Features: f.Name(), Done: int(done.Add(int64(n))), Total: total})
		}
		var err error
		if fm[fi].train, err = f.Transform(ctx, texts, tick); err != nil {
			return nil, err
		}
		if fm[fi].dev, err = f.Transform(ctx, task.Dev.Texts, tick); err != nil {
			return nil, err
		}
		if fm[fi].test, err = f.Transform(ctx, task.Test.Texts, tick); err != nil {
			return nil, err
		}
	}

	// One job per (feature set, labels value, draw).
	type job struct{ fi, li, d int }
	type score struct{ acc, f1, chosen, dev float64 }
	var jobs []job
	for li, l := range cfg.LabelsPerClass {
		for d := range drawsFor(l, cfg.Draws) {
			for fi := range feats {
				jobs = append(jobs, job{fi, li, d})
			}
		}
	}
	linear, knn := slices.Contains(cfg.Classifiers, ClassifierLinear), slices.Contains(cfg.Classifiers, ClassifierKNN)
	scores := make([][2]score, len(jobs))
	next := atomic.Int64{}
	var done atomic.Int64
	var wg sync.WaitGroup
	for range min(cfg.Workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(jobs) || ctx.Err() != nil {
					return
				}
				jb := jobs[j]
				idx := draws[drawKey{jb.li, jb.d}]
				local := make([]int, len(idx))
				y := make([]int, len(idx))
				for i, r := range idx {
					local[i], y[i] = pos[r], task.Train.Labels[r]
				}
				m := fm[jb.fi]
				x := m.train.Select(local)
				if linear {
					lin, devAccs := SelectC(x, y, k, m.dev, task.Dev.Labels, cfg.Cs)
					pred := lin.Predict(m.test)
					scores[j][0] = score{Accuracy(task.Test.Labels, pred), MacroF1(task.Test.Labels, pred, k), lin.C, slices.Max(devAccs)}
				}
				if knn {
					kmax := cfg.Ks[len(cfg.Ks)-1]
					bestK, devAccs := SelectK(Neighbours(x, m.dev, kmax), y, k, task.Dev.Labels, cfg.Ks)
					pred := KNNPredict(Neighbours(x, m.test, bestK), y, k, bestK)
					scores[j][1] = score{Accuracy(task.Test.Labels, pred), MacroF1(task.Test.Labels, pred, k), float64(bestK), slices.Max(devAccs)}
				}
				report(Progress{Task: task.Name, Stage: StageFit, Done: int(done.Add(1)), Total: len(jobs)})
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var out []Result
	for fi, f := range feats {
		for ci, cl := range []string{ClassifierLinear, ClassifierKNN} {
			if !slices.Contains(cfg.Classifiers, cl) {
				continue
			}
			for li, l := range cfg.LabelsPerClass {
				var accs, f1s, chosen, devs []float64
				for j, jb := range jobs {
					if jb.fi == fi && jb.li == li {
						s := scores[j][ci]
						accs, f1s, chosen, devs = append(accs, s.acc), append(f1s, s.f1), append(chosen, s.chosen), append(devs, s.dev)
					}
				}
				r := Result{Task: task.Name, Features: f.Name(), Classifier: cl, LabelsPerClass: l, Draws: len(accs), Chosen: chosen}
				r.AccuracyMean, r.AccuracyStd = meanStd(accs)
				r.MacroF1Mean, r.MacroF1Std = meanStd(f1s)
				r.DevAccuracy, _ = meanStd(devs)
				out = append(out, r)
			}
		}
	}
	return out, nil
}
