package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/train"
)

// stridedTask writes every stride-th line of each split of a real task into
// a new task folder of the same name (the files are sorted by label, so a
// prefix would hold one class).
func stridedTask(t *testing.T, name string, strides map[string]int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for split, stride := range strides {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		for i, l := range realtest.Lines(t, realtest.Data(t, "tasks/"+name+"/"+split+".jsonl.gz"), 0) {
			if i%stride == 0 {
				gz.Write(append(l, '\n'))
			}
		}
		gz.Close()
		if err := os.WriteFile(filepath.Join(dir, split+".jsonl.gz"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var adaptFigure = regexp.MustCompile(`(?m)^(dev accuracy|test accuracy|majority rate) +([0-9.]+)`)

// adaptFigures reads the accuracies thresher adapt prints.
func adaptFigures(t *testing.T, out string) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	for _, m := range adaptFigure.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		got[m[1]] = v
	}
	if len(got) != 3 {
		t.Fatalf("output lacks the dev, test and majority figures:\n%s", out)
	}
	return got
}

// TestAdapt trains a small checkpoint with `thresher train` on a lake of
// real records, then `thresher adapt` fits heads on a sample of the real
// wordnet_lexname task (every 10th train example, every 20th of dev and
// test): a linear head on every label must beat the majority class by 0.1
// on dev and test (it measures about 0.29 against 0.14, as thresher eval's
// logistic regression does on the same checkpoint), an mlp head on 128
// labels per class by 0.05 (about 0.23), and the head file must land beside
// the checkpoint. Then the trainer service over that
// lake serves the head, and its answers equal the head's offline
// predictions under the checkpoint's encoder.
func TestAdapt(t *testing.T) {
	task := stridedTask(t, "wordnet_lexname", map[string]int{"train": 10, "dev": 20, "test": 20})
	began := time.Now()
	lakeDir, _ := curatetest.Lake(t, 3000, 3000)
	t.Logf("lake built in %v", time.Since(began))
	// A wider encoder than the file's, so that the head has something to read.
	t.Setenv("THRESHER_TRAIN_LEARNER_BUCKETS", "32768")
	t.Setenv("THRESHER_TRAIN_LEARNER_EMBED_DIM", "64")
	t.Setenv("THRESHER_TRAIN_LEARNER_HIDDEN_DIM", "64")
	t.Setenv("THRESHER_TRAIN_LEARNER_OUT_DIM", "64")
	code, _, stderr := run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--max-steps", "40", "--progress", "0")
	if code != ExitOK {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	t.Logf("trained by %v", time.Since(began))
	ckFile := filepath.Join(lakeDir, "checkpoints", "000000000040.ckpt")
	headFile := filepath.Join(lakeDir, "checkpoints", "000000000040.wordnet_lexname.head")

	code, out, stderr := run(t, "adapt", "--checkpoint", lakeDir, "--task", task, "--features", "encoder", "--progress", "1ms", "--max-epochs", "40", "--patience", "5")
	if code != ExitOK {
		t.Fatalf("adapt: exit %d: %s", code, stderr)
	}
	t.Logf("adapted by %v:\n%s", time.Since(began), out)
	fig := adaptFigures(t, out)
	if fig["test accuracy"] < fig["majority rate"]+0.1 || fig["dev accuracy"] < fig["majority rate"]+0.1 {
		t.Errorf("linear head on every label: dev %.3f, test %.3f, not well above the majority rate %.3f", fig["dev accuracy"], fig["test accuracy"], fig["majority rate"])
	}
	for _, want := range []string{"task            wordnet_lexname (25 classes)", "checkpoint      " + ckFile + " (step 40, encoder ",
		"head            linear on the bag+hidden layer, weight decay ", "labels          5745 train examples (all per class, seed 1)", "wrote           " + headFile} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"adapt: checkpoint " + ckFile + " (step 40, bag+hidden layer 128 wide, encoder features)", "texts/s", "eta ", "fitting a linear head for each of 4 weight decays"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	linear, err := train.ReadHeadFile(headFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := linear.Meta; m.Kind != train.HeadLinear || m.Step != 40 || m.TrainRows != 5745 || m.Hybrid() || m.Layer != train.DefaultLayer {
		t.Fatalf("head file metadata %+v", linear.Meta)
	}

	// The default: a linear head on the hybrid representation, here on 32
	// labels per class.
	code, out, stderr = run(t, "adapt", "--checkpoint", lakeDir, "--task", task, "--labels-per-class", "32", "--progress", "0")
	if code != ExitOK {
		t.Fatalf("adapt hybrid: exit %d: %s", code, stderr)
	}
	t.Logf("adapted (hybrid) by %v:\n%s", time.Since(began), out)
	hfig := adaptFigures(t, out)
	if hfig["test accuracy"] < fig["test accuracy"] {
		t.Errorf("hybrid head on 32 labels per class: test %.3f, below the encoder head's %.3f on every label", hfig["test accuracy"], fig["test accuracy"])
	}
	for _, want := range []string{"head            linear on hybrid features (bag+hidden layer + ", " train examples (32 per class, seed 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "(step 40, bag+hidden layer 128 wide, hybrid features)") || !strings.Contains(stderr, "fitting a linear head on hybrid features for each C") {
		t.Errorf("stderr: %s", stderr)
	}
	hybrid, err := train.ReadHeadFile(headFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := hybrid.Meta; m.Kind != train.HeadLinear || m.TrainRows < 700 || m.TrainRows > 800 || !m.Hybrid() || m.Layer != train.DefaultLayer || m.LexColumns < 1000 || m.C == 0 || m.LexWeight != 3 {
		t.Fatalf("hybrid head metadata %+v", hybrid.Meta)
	}
	ck, err := train.ReadCheckpointFile(ckFile)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		t.Fatal(err)
	}
	servedMatches(t, lakeDir, enc, hybrid)

	// Few labels, an mlp head, the checkpoint given as a file.
	code, out, stderr = run(t, "adapt", "--checkpoint", ckFile, "--task", task, "--head", "mlp", "--hidden", "64", "--layer", "output",
		"--labels-per-class", "128", "--progress", "0", "--max-epochs", "40", "--patience", "5", "--weight-decays", "1e-3,1e-2")
	if code != ExitOK {
		t.Fatalf("adapt mlp: exit %d: %s", code, stderr)
	}
	t.Logf("adapted again by %v:\n%s", time.Since(began), out)
	fig = adaptFigures(t, out)
	if fig["test accuracy"] < fig["majority rate"]+0.05 {
		t.Errorf("mlp head on 128 labels per class: test %.3f, not well above the majority rate %.3f", fig["test accuracy"], fig["majority rate"])
	}
	mlp, err := train.ReadHeadFile(headFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := mlp.Meta; m.Kind != train.HeadMLP || m.Hidden != 64 || m.TrainRows > 25*128 || m.TrainRows < 2000 || m.Hybrid() || m.Layer != train.LayerOutput {
		t.Fatalf("mlp head metadata %+v", mlp.Meta)
	}
	servedMatches(t, lakeDir, enc, mlp)
}

// servedMatches checks that the trainer over the lake classifies with the
// newest head (h) and the encoder of its checkpoint as h does offline.
func servedMatches(t *testing.T, lakeDir string, enc *train.Encoder, h *train.Head) {
	t.Helper()
	cls, err := h.Bind(enc)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a large wild cat of africa", "the act of writing a letter", "an instrument that measures time",
		"a feeling of deep sadness", "a red fruit that grows on trees"}
	want := cls.Classify(texts)
	served := classifyServed(t, lakeDir, enc.Config(), texts)
	if served.Task != "wordnet_lexname" || served.CheckpointStep != 40 || len(served.Predictions) != len(texts) {
		t.Fatalf("served %+v", served)
	}
	for i, p := range served.Predictions {
		if p.Label != want[i].Label {
			t.Errorf("text %d: served %s, offline %s", i, p.Label, want[i].Label)
		}
		for k, v := range want[i].Scores {
			if p.Scores[k] != v {
				t.Fatalf("text %d: served score of %s %v, offline %v", i, k, p.Scores[k], v)
			}
		}
	}
}

// classifyServed builds the trainer service over lakeDir and classifies
// texts with the wordnet_lexname head through its POST /v1/classify.
func classifyServed(t *testing.T, lakeDir string, learner train.Config, texts []string) train.ClassifyResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := lake.OpenDir(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.ServiceConfig{Lake: lakeDir, Learner: learner}
	tr, err := train.NewTrainer(ctx, cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	body, _ := json.Marshal(train.ClassifyRequest{Task: "wordnet_lexname", Texts: texts})
	srv := httptest.NewServer(tr.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/classify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var got train.ClassifyResponse
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/classify: %d %s", resp.StatusCode, out)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAdaptUsage(t *testing.T) {
	task := stridedTask(t, "wordnet_lexname", map[string]int{"train": 2000, "dev": 500, "test": 500})
	lakeDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"adapt"}, []string{"--checkpoint is required", "--task is required"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "--head", "tree", "--labels-per-class", "0",
			"--weight-decays", "a,-1", "--workers", "0"}, []string{`kind "tree"`, "--labels-per-class", `"a" is not a number`, "weight_decays: -1", "--workers 0"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "--labels-per-class", "16,64"}, []string{"give one value"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "--head", "mlp", "--hidden", "-1"}, []string{"hidden: -1"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "--features", "tfidf", "--layer", "top", "--lex-weight", "-1"},
			[]string{`--features "tfidf"`, `--layer "top"`, "--lex-weight"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "--head", "mlp", "--features", "hybrid"}, []string{"--features hybrid takes a linear head"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", "/tmp/.x"}, []string{"cannot name a head"}},
		{[]string{"adapt", "--checkpoint", "x.ckpt", "--task", task, "extra"}, []string{"unexpected arguments"}},
		{[]string{"adapt", "--checkpoint", lakeDir, "--task", task}, []string{"not a lake with checkpoints"}},
		{[]string{"adapt", "--checkpoint", filepath.Join(lakeDir, "no.ckpt"), "--task", task}, []string{"no such file"}},
		{[]string{"adapt", "--checkpoint", lakeDir, "--task", filepath.Join(lakeDir, "none")}, []string{"--task", "no such file"}},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, ExitUsage, stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not say %q: %s", tc.args, w, stderr)
			}
		}
	}
}
