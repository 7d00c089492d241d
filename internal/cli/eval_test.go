package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// smallTask writes the first n lines of each split of a real task into a
// new task folder of the same name.
func smallTask(t *testing.T, name string, n map[string]int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for split, lines := range n {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		for _, l := range realtest.Lines(t, realtest.Data(t, "tasks/"+name+"/"+split+".jsonl.gz"), lines) {
			gz.Write(append(l, '\n'))
		}
		gz.Close()
		if err := os.WriteFile(filepath.Join(dir, split+".jsonl.gz"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type evalRow struct {
	Task           string  `json:"task"`
	Features       string  `json:"features"`
	Classifier     string  `json:"classifier"`
	LabelsPerClass any     `json:"labels_per_class"`
	AccuracyMean   float64 `json:"accuracy_mean"`
	AccuracyStd    float64 `json:"accuracy_std"`
	MacroF1Mean    float64 `json:"macro_f1_mean"`
	MacroF1Std     float64 `json:"macro_f1_std"`
	Draws          int     `json:"draws"`
	DevAccuracy    float64 `json:"dev_accuracy_mean"`
}

// TestTrainThenEval trains a small checkpoint with `thresher train` on a
// lake of real records, then scores it with `thresher eval` on the real
// debian_section task (its first 2000 / 300 / 300 examples) against the
// tfidf and random baselines: six JSON rows with --json, a table without.
func TestTrainThenEval(t *testing.T) {
	task := smallTask(t, "debian_section", map[string]int{"train": 2000, "dev": 300, "test": 300})
	began := time.Now()
	lakeDir, _ := curatetest.Lake(t, 3000, 3000)
	t.Logf("lake built in %v", time.Since(began))
	code, _, stderr := run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--max-steps", "20", "--progress", "0")
	if code != ExitOK {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}

	t.Logf("trained by %v", time.Since(began))
	code, out, stderr := run(t, "eval", "--lake", lakeDir, "--task", task, "--labels-per-class", "16", "--draws", "2",
		"--baseline", "tfidf,random", "--json", "--progress", "1ms")
	if code != ExitOK {
		t.Fatalf("eval --json: exit %d: %s", code, stderr)
	}
	t.Logf("evaluated by %v", time.Since(began))
	defer func() { t.Logf("evaluated again by %v", time.Since(began)) }()
	var rows []evalRow
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("stdout is not a JSON array of rows: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than the JSON array on stdout: %s", out)
	}
	if len(rows) != 8 {
		t.Fatalf("%d rows, want 4 feature sets x 2 classifiers:\n%s", len(rows), out)
	}
	seen := map[string]evalRow{}
	for _, r := range rows {
		if r.Task != "debian_section" || r.LabelsPerClass != float64(16) || r.Draws != 2 ||
			!(r.AccuracyMean > 0 && r.AccuracyMean <= 1) || !(r.MacroF1Mean > 0 && r.MacroF1Mean <= 1) || r.AccuracyStd < 0 || r.MacroF1Std < 0 ||
			!(r.DevAccuracy > 0 && r.DevAccuracy <= 1) {
			t.Errorf("row %+v", r)
		}
		seen[r.Features+"/"+r.Classifier] = r
	}
	for _, f := range []string{"encoder", "hybrid", "tfidf", "random"} {
		for _, c := range []string{"linear", "knn"} {
			if _, ok := seen[f+"/"+c]; !ok {
				t.Errorf("no %s %s row", f, c)
			}
		}
	}
	if tf, rnd := seen["tfidf/linear"], seen["random/linear"]; tf.AccuracyMean <= rnd.AccuracyMean {
		t.Errorf("tfidf+linear %.3f is not above the random encoder's %.3f", tf.AccuracyMean, rnd.AccuracyMean)
	}
	for _, want := range []string{"eval: checkpoint step 20", "embedding with encoder", "texts/s", "fitting probes", "fits/s", "eta "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}

	// Without --json: a table for people, the same figures, and the
	// majority-class line.
	code, out, stderr = run(t, "eval", "--checkpoint", lakeDir, "--task", task, "--labels-per-class", "16", "--draws", "2", "--baseline", "none", "--progress", "0")
	if code != ExitOK {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 || !strings.HasPrefix(lines[0], "task") || !strings.Contains(lines[0], "macro-F1") {
		t.Fatalf("table:\n%s", out)
	}
	for _, want := range []string{"debian_section  encoder   linear", "debian_section  encoder   knn", " ± ", "majority-class test accuracy"} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not hold %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "random") || strings.Contains(out, "tfidf") {
		t.Errorf("--baseline none printed a baseline row:\n%s", out)
	}
	// The same seed draws the same labels whatever the baselines.
	if r := seen["encoder/linear"]; !strings.Contains(out, fmt.Sprintf("%.3f ± %.3f  %.3f ± %.3f", r.AccuracyMean, r.AccuracyStd, r.MacroF1Mean, r.MacroF1Std)) {
		t.Errorf("table does not repeat the encoder linear figures of the JSON run %+v:\n%s", r, out)
	}
	if strings.Contains(stderr, "texts/s") || strings.Contains(stderr, "fits/s") {
		t.Errorf("--progress 0 still wrote progress lines: %q", stderr)
	}

	// External vectors are scored under their name on the same draws, and
	// --layer scores another representation of the encoder than the
	// default bag+hidden.
	vdir := hashedVectors(t, task, 32)
	code, out, stderr = run(t, "eval", "--lake", lakeDir, "--task", task, "--labels-per-class", "16", "--draws", "2",
		"--baseline", "random", "--vectors", "hashed="+vdir, "--features", "encoder", "--layer", "output", "--json", "--progress", "0")
	if code != ExitOK {
		t.Fatalf("eval --vectors --layer: exit %d: %s", code, stderr)
	}
	rows = nil
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("stdout: %v\n%s", err, out)
	}
	got := map[string]evalRow{}
	for _, r := range rows {
		got[r.Features+"/"+r.Classifier] = r
	}
	if len(rows) != 6 || got["hashed/linear"].Draws != 2 || got["encoder/linear"].Draws != 2 || got["random/knn"].Draws != 2 {
		t.Fatalf("rows %+v", rows)
	}
	if h := got["hashed/linear"]; !(h.AccuracyMean > 0 && h.AccuracyMean <= 1) {
		t.Errorf("hashed vectors row %+v", h)
	}
	if e := got["encoder/linear"]; e.AccuracyMean == seen["encoder/linear"].AccuracyMean && e.MacroF1Mean == seen["encoder/linear"].MacroF1Mean {
		t.Errorf("--layer output scored exactly as the default bag+hidden: %+v", e)
	}
	if !strings.Contains(stderr, "layer output, dim ") {
		t.Errorf("stderr does not name the layer: %s", stderr)
	}
}

// hashedVectors writes external vectors for a task folder: each text's
// words hashed into dim columns (counts), one line per text as fasttext
// print-sentence-vectors writes them, under DIR/TASK/SPLIT.vec.
func hashedVectors(t *testing.T, taskDir string, dim int) string {
	t.Helper()
	task, err := eval.LoadTask(taskDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, task.Name), 0o755)
	for _, s := range []string{"train", "dev", "test"} {
		var b strings.Builder
		for _, text := range task.Split(s).Texts {
			v := make([]int, dim)
			for _, w := range strings.Fields(strings.ToLower(text)) {
				v[xxhash.Sum64String(w)%uint64(dim)]++
			}
			for _, x := range v {
				fmt.Fprintf(&b, "%d ", x)
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, task.Name, s+".vec"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestEvalBadUsage(t *testing.T) {
	dir := t.TempDir()
	torn := filepath.Join(dir, "torn.ckpt")
	if err := os.WriteFile(torn, []byte("THRCKPT\x00 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := filepath.Join(dir, "task")
	os.Mkdir(task, 0o755)
	for _, s := range []string{"train", "dev", "test"} {
		os.WriteFile(filepath.Join(task, s+".jsonl"), []byte(`{"text": "a b", "label": "x"}`+"\n"), 0o644)
	}
	badTask := filepath.Join(dir, "bad")
	os.Mkdir(badTask, 0o755)
	for _, s := range []string{"train", "dev", "test"} {
		os.WriteFile(filepath.Join(badTask, s+".jsonl"), []byte(`{"text": "a b", "label": "x"}`+"\n{oops\n"), 0o644)
	}
	vecs := filepath.Join(dir, "vecs")
	os.Mkdir(vecs, 0o755)
	for _, s := range []string{"train", "test"} {
		os.WriteFile(filepath.Join(vecs, s+".vec"), []byte("1 2\n"), 0o644)
	}
	os.WriteFile(filepath.Join(vecs, "dev.vec"), []byte("1 2\n3 4\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval"}, "--checkpoint or --lake is required; --task is required"},
		{[]string{"eval", "--lake", dir, "--checkpoint", torn, "--task", task}, "not both"},
		{[]string{"eval", "--lake", dir, "--task", task, "--labels-per-class", "16,lots"}, `"lots" is not a positive number`},
		{[]string{"eval", "--lake", dir, "--task", task, "--baseline", "tfidf,bow"}, `--baseline "bow"`},
		{[]string{"eval", "--lake", dir, "--task", task, "--draws", "0"}, "--draws 0: must be at least 1"},
		{[]string{"eval", "--lake", dir, "--task", task, "extra"}, "unexpected arguments"},
		{[]string{"eval", "--lake", dir, "--task", filepath.Join(dir, "nope")}, "no such file"},
		{[]string{"eval", "--lake", dir, "--task", badTask}, "train.jsonl line 2"},
		{[]string{"eval", "--checkpoint", "/no/such.ckpt", "--task", task}, "no such file"},
		{[]string{"eval", "--checkpoint", torn, "--task", task}, "corrupt checkpoint"},
		{[]string{"eval", "--lake", dir, "--task", task}, "not a lake with checkpoints"},
		{[]string{"eval", "--frobnicate"}, "frobnicate"},
		{[]string{"eval", "--lake", dir, "--task", task, "--vectors", "fasttext"}, `--vectors "fasttext" is not NAME=DIR`},
		{[]string{"eval", "--lake", dir, "--task", task, "--vectors", "tfidf=" + dir}, `the name "tfidf" is taken`},
		{[]string{"eval", "--lake", dir, "--task", task, "--vectors", "v=" + dir, "--vectors", "v=" + dir}, `the name "v" is taken`},
		{[]string{"eval", "--lake", dir, "--task", task, "--vectors", "v=" + filepath.Join(dir, "nope")}, "--vectors v=" + filepath.Join(dir, "nope") + ": task task: eval: vectors: open"},
		{[]string{"eval", "--lake", dir, "--task", task, "--vectors", "v=" + vecs}, "dev.vec: eval: bad vectors: 2 vectors for 1 texts"},
		{[]string{"eval", "--lake", dir, "--task", task, "--layer", "deep"}, `--layer "deep" is not one of output, bag, hidden, bag+hidden`},
	} {
		code, out, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || out != "" {
			t.Errorf("%v: exit %d, want %d saying %q: %s (stdout %q)", tc.args, code, ExitUsage, tc.want, stderr, out)
		}
	}
}
