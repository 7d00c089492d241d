package report_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/internal/sample"
	"github.com/thresher-ml/thresher/report"
	"github.com/thresher-ml/thresher/sampler"
	"github.com/thresher-ml/thresher/schemas"
	"github.com/thresher-ml/thresher/train"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if trainedRoot != "" {
		os.RemoveAll(trainedRoot)
	}
	realtest.Cleanup()
	os.Exit(code)
}

// The trained lake: real records curated in two windows, trained on for
// 40 steps with a checkpoint every 20, and both checkpoints scored on the
// bundled task against the baselines; built once per test binary.
var (
	trainedOnce sync.Once
	trainedRoot string
	trainedDir  string
	trainedRes  map[int64][]eval.Result
	trainedNote string
	trainedErr  = errors.New("the trained lake was not built")
)

const (
	trainedRecords = 4000
	trainedSteps   = 40
)

func trainedLake(t *testing.T) (string, lake.Store) {
	t.Helper()
	realtest.Corpus(t) // skips (fails under CI) without the real data
	trainedOnce.Do(func() {
		root, err := os.MkdirTemp("", "thresher-report-test-")
		if err != nil {
			trainedErr = err
			return
		}
		trainedRoot, trainedDir = root, filepath.Join(root, "lake")
		store, err := lake.OpenDir(trainedDir)
		if err != nil {
			trainedErr = err
			return
		}
		began := time.Now()
		curatetest.WriteRaw(t, store, realtest.CorpusLines(t, trainedRecords), 2, 1000)
		curatetest.Curate(t, trainedDir, store, trainedRecords/2)
		t.Logf("lake curated in %v", time.Since(began))
		trainedRes, trainedNote, trainedErr = trainAndEvaluate(root, trainedDir, store)
		t.Logf("trained and evaluated by %v", time.Since(began))
	})
	if trainedErr != nil {
		t.Fatal(trainedErr)
	}
	store, err := lake.OpenDir(trainedDir)
	if err != nil {
		t.Fatal(err)
	}
	return trainedDir, store
}

// trainAndEvaluate runs the trainer briefly and scores each checkpoint,
// writing the scores as the eval table's rows. When the trainer writes no
// train/history rows itself, rows of the steps are written from the
// checkpoints' meta so the section is exercised; the note says which.
func trainAndEvaluate(root, dir string, store lake.Store) (map[int64][]eval.Result, string, error) {
	ctx := context.Background()
	cfg := train.ServiceConfig{
		Lake: dir, MaxSteps: trainedSteps, CheckpointSteps: trainedSteps / 2, HealthEvery: 10, Deterministic: true,
		Learner: train.Config{Buckets: 1 << 14, EmbedDim: 32, HiddenDim: 64, OutDim: 32, QueueSize: 256, WarmupSteps: 10, Seed: 3},
		Sampler: sampler.Config{BatchSize: 64, Poll: 20 * time.Millisecond},
	}
	tr, err := train.NewTrainer(ctx, cfg, store, nil, nil)
	if err != nil {
		return nil, "", err
	}
	if err := tr.Run(ctx); err != nil {
		tr.Close()
		return nil, "", err
	}
	tr.Close()
	hist, err := lake.ReadTable[schemas.TrainHistory](ctx, store, schemas.TableTrainHistory)
	if err != nil {
		return nil, "", err
	}
	note := "train/history written by the trainer"
	if len(hist) == 0 {
		note = "train/history written by the test"
		var rows []schemas.TrainHistory
		for s := int64(1); s <= trainedSteps; s++ {
			f := float64(s) / trainedSteps
			rows = append(rows, schemas.TrainHistory{
				Step: s, Time: time.UnixMilli(1_700_000_000_000 + s*1000).UTC(), ExamplesSeen: s * 64, TokensSeen: s * 2000,
				LR: float32(1e-3 * math.Min(1, f*4)), Loss: float32(4 - 2*f), LossInfoNCE: float32(4 - 2*f), Accuracy: float32(0.2 + 0.6*f),
				Std: float32(0.1 + 0.01*f), Alignment: float32(1 - 0.5*f), Uniformity: float32(-1 - f), RankMe: float32(10 + 5*f),
				Stage: int32(s / 15), Collapsed: s == 7,
			})
		}
		data, err := lake.EncodeRows(schemas.TableTrainHistory, schemas.TrainHistoryVersion, rows)
		if err != nil {
			return nil, "", err
		}
		if err := store.Put(ctx, fmt.Sprintf("%s/%020d.parquet", schemas.TableTrainHistory, 1), data); err != nil {
			return nil, "", err
		}
	}

	taskDir, err := sample.WriteTask(root)
	if err != nil {
		return nil, "", err
	}
	task, err := eval.LoadTask(taskDir)
	if err != nil {
		return nil, "", err
	}
	ckpts := train.NewCheckpointStore(store, 3, nil)
	keys, err := ckpts.Keys(ctx)
	if err != nil {
		return nil, "", err
	}
	res := map[int64][]eval.Result{}
	for _, key := range keys {
		ck, err := ckpts.Read(ctx, key)
		if err != nil {
			return nil, "", err
		}
		enc, err := train.LoadEncoder(ck.Learner)
		if err != nil {
			return nil, "", err
		}
		feats := []eval.Features{eval.NewEncoderFeatures(eval.FeaturesEncoder, enc, 0)}
		if ck.Meta.Step == trainedSteps {
			// The baselines do not change with the checkpoint: scored once.
			random, err := eval.NewRandomFeatures(enc.Config(), 1, 0)
			if err != nil {
				return nil, "", err
			}
			feats = append(feats, eval.NewTFIDF(task.Train.Texts), random)
		}
		r, err := eval.Evaluate(ctx, task, feats, eval.Config{LabelsPerClass: []eval.LabelsPerClass{16}, Draws: 2, Seed: 1}, nil)
		if err != nil {
			return nil, "", err
		}
		res[ck.Meta.Step] = r
		var rows []schemas.Eval
		for _, x := range r {
			for _, m := range []struct {
				name      string
				mean, std float64
			}{{"accuracy", x.AccuracyMean, x.AccuracyStd}, {"macro_f1", x.MacroF1Mean, x.MacroF1Std}} {
				rows = append(rows, schemas.Eval{Step: ck.Meta.Step, Time: ck.Meta.Time, Checkpoint: key, Task: x.Task, Features: x.Features,
					Classifier: x.Classifier, LabelsPerClass: int32(x.LabelsPerClass), Metric: m.name, Value: m.mean, Std: m.std, Draws: int32(x.Draws), Baseline: -1})
			}
		}
		rows = append(rows, schemas.Eval{Step: ck.Meta.Step, Checkpoint: key, Metric: "decision", Promoted: true, Reason: "first", Baseline: -1})
		data, err := lake.EncodeRows(schemas.TableEval, schemas.EvalVersion, rows)
		if err != nil {
			return nil, "", err
		}
		if err := store.Put(ctx, fmt.Sprintf("%s/%020d.parquet", schemas.TableEval, ck.Meta.Step), data); err != nil {
			return nil, "", err
		}
	}
	if len(res) < 2 {
		return nil, "", fmt.Errorf("%d checkpoints kept, want 2 (steps %d and %d)", len(res), trainedSteps/2, trainedSteps)
	}
	return res, note, nil
}

// wantCharts are the charts a fully populated lake draws, by section.
var wantCharts = map[string][]string{
	"timeline":      {"plot-records-time", "plot-duprate-time"},
	"distributions": {"plot-hist-char-entropy", "plot-hist-word-entropy", "plot-hist-length"},
	"balance":       {"plot-domain-share", "plot-target-gap", "plot-share-windows"},
	"curriculum":    {"plot-stage-records", "plot-difficulty", "plot-pacing"},
	"training":      {"plot-loss", "plot-accuracy", "plot-lr", "plot-std", "plot-alignment", "plot-uniformity", "plot-rankme", "plot-drift", "plot-stage"},
	"probes":        {"plot-probe-0"},
	"embeddings":    {"plot-embeddings"},
}

// TestBuildRealLake renders the report of a lake of real records after a
// real training run and evaluation: every section holds its charts, the
// headline numbers agree with the tables, the page loads nothing from
// outside, and headless Chromium draws every mark.
func TestBuildRealLake(t *testing.T) {
	dir, store := trainedLake(t)
	t.Log(trainedNote)
	var page bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sum, err := report.Build(context.Background(), store, &page, report.Options{LakePath: dir, Now: now, Sample: 600})
	if err != nil {
		t.Fatal(err)
	}
	html := page.String()

	// Headline numbers.
	if sum.Records != trainedRecords || sum.Kept <= 0 || sum.Kept > sum.Records || sum.Windows != 2 || sum.Domains < 2 {
		t.Errorf("summary %+v", sum)
	}
	if want := float64(sum.ExactDuplicates+sum.NearDuplicates) / float64(sum.Records); sum.DupRate != want {
		t.Errorf("dup rate %v, want %v", sum.DupRate, want)
	}
	if sum.Steps != trainedSteps || !strings.HasPrefix(sum.Checkpoint, "checkpoints/") {
		t.Errorf("steps %d checkpoint %q, want %d", sum.Steps, sum.Checkpoint, trainedSteps)
	}
	var enc, tfidf float64
	for _, r := range trainedRes[trainedSteps] {
		if r.Classifier == eval.ClassifierLinear && r.Features == eval.FeaturesEncoder {
			enc = r.AccuracyMean
		}
		if r.Classifier == eval.ClassifierLinear && r.Features == eval.FeaturesTFIDF {
			tfidf = r.AccuracyMean
		}
	}
	if p := sum.Probe; p == nil || p.Step != trainedSteps || p.Task != sample.TaskName || p.Classifier != "linear" || p.LabelsPerClass != 16 ||
		p.Encoder != enc || p.TFIDF != tfidf || math.IsNaN(p.Random) {
		t.Errorf("probe %+v, want encoder %v tfidf %v at step %d", sum.Probe, enc, tfidf, trainedSteps)
	}
	for _, want := range []string{"thresher report", dir, "2026-01-02 03:04:05 UTC", fmt.Sprintf("%d in 2 curate windows", trainedRecords),
		fmt.Sprintf("encoder %.3f vs TF-IDF %.3f", enc, tfidf), "wordnet_lexname, linear probe, 16 labels per class, step 40"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not say %q", want)
		}
	}

	// Every section has its charts and no note.
	for id, charts := range wantCharts {
		s := sum.Section(id)
		if s == nil {
			t.Errorf("no section %s", id)
			continue
		}
		if s.Note != "" || s.Err != nil {
			t.Errorf("section %s: note %q, err %v", id, s.Note, s.Err)
		}
		for _, c := range charts {
			if s.Charts[c] == 0 {
				t.Errorf("section %s: chart %s has no marks (%v)", id, c, s.Charts)
			}
		}
	}
	if n := sum.Section("embeddings").Charts["plot-embeddings"]; n != 600 {
		t.Errorf("the projection draws %d points, want the 600 sampled", n)
	}
	// Two evaluated checkpoints: the encoder's line and points, a point for
	// each baseline.
	if n := sum.Section("probes").Charts["plot-probe-0"]; n != 1+2+1+1 {
		t.Errorf("probe chart has %d marks, want the encoder's line and 2 points, and a point for each baseline", n)
	}

	if out := os.Getenv("THRESHER_REPORT_OUT"); out != "" {
		// To look at the page: THRESHER_REPORT_OUT=/tmp/report.html go test -run TestBuildRealLake ./report/
		if err := os.WriteFile(out, page.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkSelfContained(t, html)
	checkInChromium(t, html, sum)
}

// externalRef finds anything that would make the browser fetch: a src or
// href with a scheme or a protocol-relative URL, CSS url() and @import.
var externalRef = regexp.MustCompile(`(?i)(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//))|url\(|@import`)

func checkSelfContained(t *testing.T, html string) {
	t.Helper()
	if m := externalRef.FindAllString(html, 5); len(m) > 0 {
		t.Errorf("the page references something outside it: %q", m)
	}
	if strings.Contains(html, "<link") || strings.Contains(html, "<img") || strings.Contains(html, "<iframe") {
		t.Error("the page has a link, img or iframe element")
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if strings.Contains(tag, "src") {
			t.Errorf("script with a source: %s", tag)
		}
	}
}

var (
	svgTag    = regexp.MustCompile(`<svg [^>]*class="plot"[^>]*>`)
	attrValue = func(tag, name string) string {
		m := regexp.MustCompile(`\b` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return ""
		}
		return m[1]
	}
)

// checkInChromium loads the page in headless Chromium and checks, in the
// DOM after the page's script ran, that every chart drew every mark with
// a non-empty box.
func checkInChromium(t *testing.T, html string, sum *report.Summary) {
	t.Helper()
	chromium := realtest.Tool(t, "chromium", "apt-get install chromium")
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--window-size=1400,3000", "--dump-dom", "file://"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	plots := 0
	for _, s := range sum.Sections {
		plots += len(s.Charts)
	}
	if m := regexp.MustCompile(`<body[^>]*data-report-ready="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] != strconv.Itoa(plots) {
		t.Fatalf("the page's script did not run to the end over %d charts (body: %v)", plots, m)
	}
	seen := map[string]bool{}
	for _, tag := range svgTag.FindAllString(dom, -1) {
		id, marks, drawn := attrValue(tag, "id"), attrValue(tag, "data-marks"), attrValue(tag, "data-drawn")
		seen[id] = true
		if marks == "" || marks == "0" || drawn != marks {
			t.Errorf("chart %s: %s marks, the browser drew %q", id, marks, drawn)
		}
	}
	for _, s := range sum.Sections {
		for id := range s.Charts {
			if !seen[id] {
				t.Errorf("chart %s is not in the DOM Chromium built", id)
			}
		}
	}
	if len(seen) != plots {
		t.Errorf("%d charts in the DOM, %d in the summary", len(seen), plots)
	}
	t.Logf("Chromium drew all marks of %d charts", len(seen))
}

// TestBuildEmptyLake: a lake with nothing in it gives a page whose every
// section says there is no data yet, and the headline says what to run.
func TestBuildEmptyLake(t *testing.T) {
	var page bytes.Buffer
	sum, err := report.Build(context.Background(), lake.NewMem(), &page, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 0 || sum.Steps != -1 || sum.Probe != nil || sum.Checkpoint != "" {
		t.Errorf("summary %+v", sum)
	}
	for _, s := range sum.Sections {
		if s.Note == "" || len(s.Charts) != 0 || s.Err != nil {
			t.Errorf("section %s: note %q, charts %v, err %v", s.ID, s.Note, s.Charts, s.Err)
		}
	}
	html := page.String()
	if n := strings.Count(html, `data-empty="true"`); n != len(sum.Sections) {
		t.Errorf("%d sections marked empty, want %d", n, len(sum.Sections))
	}
	for _, want := range []string{"No data yet", "run thresher train", "No checkpoint yet", "thresher curate"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	checkSelfContained(t, html)
}

// TestBuildPartialLake: each section stands on its own: a lake with only
// training figures and an unreadable eval object shows the training
// charts, says the curate sections have no data, and reports the eval
// object's error in its section without failing.
func TestBuildPartialLake(t *testing.T) {
	ctx := context.Background()
	store := lake.NewMem()
	var rows []schemas.TrainHistory
	for s := int64(1); s <= 5; s++ {
		rows = append(rows, schemas.TrainHistory{Step: s, Loss: float32(5 - s), Accuracy: 0.1 * float32(s),
			DriftMixTV: 0.05 * float32(s), DriftAlert: s >= 3})
	}
	data, err := lake.EncodeRows(schemas.TableTrainHistory, schemas.TrainHistoryVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, schemas.TableTrainHistory+"/00000000000000000001.parquet", data); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, schemas.TableEval+"/00000000000000000005.parquet", []byte("not parquet")); err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	sum, err := report.Build(ctx, store, &page, report.Options{Sample: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.Section("training"); s.Note != "" || s.Charts["plot-loss"] == 0 || sum.Steps != 5 {
		t.Errorf("training: %+v, steps %d", s, sum.Steps)
	}
	if !strings.Contains(page.String(), "Alert raised once (red), first at step 3.") {
		t.Errorf("the drift chart does not mark the alert raised at step 3")
	}
	if s := sum.Section("probes"); s.Err == nil || !strings.Contains(page.String(), "could not read") {
		t.Errorf("probes: %+v", s)
	}
	for _, id := range []string{"timeline", "distributions", "balance", "curriculum", "embeddings"} {
		if s := sum.Section(id); s.Note == "" || s.Err != nil {
			t.Errorf("%s: %+v", id, s)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts report.Options
		want []string
	}{
		{report.Options{Sample: -2, Buckets: 5000}, []string{"sample: -2", "buckets: 5000"}},
		{report.Options{Sample: report.MaxSample + 1}, []string{"sample"}},
	} {
		tc.opts.SetDefaults()
		err := tc.opts.Validate()
		if err == nil {
			t.Errorf("%+v: no error", tc.opts)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v does not say %q", tc.opts, err, w)
			}
		}
		if _, err := report.Build(context.Background(), lake.NewMem(), &bytes.Buffer{}, tc.opts); err == nil {
			t.Errorf("Build with %+v: no error", tc.opts)
		}
	}
	o := report.Options{}
	o.SetDefaults()
	if err := o.Validate(); err != nil || o.Sample != report.DefaultSample || o.Buckets != report.DefaultBuckets {
		t.Errorf("defaults %+v: %v", o, err)
	}
}

// TestBuildCancelled: a cancelled context stops Build with its error.
func TestBuildCancelled(t *testing.T) {
	_, store := trainedLake(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := report.Build(ctx, store, &bytes.Buffer{}, report.Options{}); err == nil || ctx.Err() == nil {
		t.Fatalf("Build on a cancelled context: %v", err)
	}
}

// TestBuildTargetedLake: on a lake curated with a target sample (the
// debian_section task's train texts), the domain balance section shows
// what target weighting favours: the software domain above its share.
func TestBuildTargetedLake(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	curatetest.WriteRaw(t, store, realtest.CorpusLines(t, 6000), 2, 1000)
	var target []byte
	for _, l := range realtest.Lines(t, realtest.Data(t, "tasks/debian_section/train.jsonl.gz"), 400) {
		target = append(append(target, l...), '\n')
	}
	tf := filepath.Join(t.TempDir(), "target.jsonl")
	if err := os.WriteFile(tf, target, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := curate.Config{Lake: dir, WindowRecords: 3000, Poll: 10 * time.Millisecond, ExitOnIdle: time.Millisecond, Target: tf}
	cfg.SetDefaults()
	st, err := curate.New(ctx, cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		weight float64
		want   *regexp.Regexp
	}{
		{0, regexp.MustCompile(`<td>software</td><td>\d+</td><td>([0-9.]+)%</td><td>([0-9.]+)%</td><td>([0-9.]+)&times;</td>`)},
		{-1, regexp.MustCompile(`Target weighting is off`)},
	} {
		var page bytes.Buffer
		if _, err := report.Build(ctx, store, &page, report.Options{Sample: -1, TargetWeight: c.weight}); err != nil {
			t.Fatal(err)
		}
		m := c.want.FindStringSubmatch(page.String())
		if m == nil {
			t.Fatalf("target_weight %v: the balance section does not show the target weighting", c.weight)
		}
		if len(m) == 4 {
			kept, _ := strconv.ParseFloat(m[1], 64)
			w, _ := strconv.ParseFloat(m[2], 64)
			t.Logf("software: %s%% of the kept records, %s%% with target weighting (%s×)", m[1], m[2], m[3])
			if !(w > 1.2*kept) {
				t.Errorf("software is not favoured: %v%% of the kept records, %v%% weighted", kept, w)
			}
		}
	}
}
