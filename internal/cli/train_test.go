package cli

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
	"github.com/thresher-ml/thresher/train"
)

func TestTrainConfiguration(t *testing.T) {
	code, _, stderr := run(t, "train", "--config", "testdata/config/train-bad.yaml")
	if code != ExitUsage {
		t.Fatalf("bad config: exit %d, want %d: %s", code, ExitUsage, stderr)
	}
	data, err := os.ReadFile("testdata/config/train-bad.errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	lakeDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train"}, "lake: a lake folder is required"},
		{[]string{"train", "--lake", lakeDir, "--config", "testdata/config/train-unknown-key.yaml"}, "embeddim"},
		{[]string{"train", "--lake", lakeDir, "--config", "/no/such/file.yaml"}, "no such file"},
		{[]string{"train", "--lake", lakeDir, "--max-steps", "-1"}, "max_steps"},
		{[]string{"train", "--lake", lakeDir, "--listen", "nonsense"}, "listen"},
		{[]string{"train", "--lake", lakeDir, "--frobnicate"}, "frobnicate"},
		{[]string{"train", "--lake", lakeDir, "extra"}, "unexpected arguments"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
	// Flags win over the file: the good file with a bad flag fails on the flag only.
	code, _, stderr = run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--checkpoint-steps", "-4")
	if code != ExitUsage || !strings.Contains(stderr, "checkpoint_steps: -4") || strings.Count(stderr, "\n  - ") != 1 {
		t.Fatalf("good file, bad flag: exit %d: %s", code, stderr)
	}
}

// TestTrainAndSampleEnvironment: THRESHER_TRAIN_<KEY> and
// THRESHER_SAMPLE_<KEY> variables override the file and lose to flags; bad
// values are listed with every other problem.
func TestTrainAndSampleEnvironment(t *testing.T) {
	lakeDir := t.TempDir()
	t.Setenv("THRESHER_TRAIN_MAX_STEPS", "many")
	t.Setenv("THRESHER_TRAIN_LEARNER_QUEUE_SIZE", "-7")
	t.Setenv("THRESHER_TRAIN_SAMPLER_BATCH_SIZE", "-2")
	code, _, stderr := run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir)
	if code != ExitUsage {
		t.Fatalf("bad environment: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"THRESHER_TRAIN_MAX_STEPS", "queue_size", "batch_size"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr)
		}
	}
	// A flag wins over the variable.
	t.Setenv("THRESHER_TRAIN_MAX_STEPS", "-3")
	t.Setenv("THRESHER_TRAIN_LEARNER_QUEUE_SIZE", "64")
	t.Setenv("THRESHER_TRAIN_SAMPLER_BATCH_SIZE", "8")
	code, _, stderr = run(t, "train", "--lake", lakeDir, "--max-steps", "1", "--checkpoint-steps", "-1")
	if code != ExitUsage || strings.Contains(stderr, "max_steps") || !strings.Contains(stderr, "checkpoint_steps") {
		t.Fatalf("flags over the environment: exit %d: %s", code, stderr)
	}

	t.Setenv("THRESHER_SAMPLE_BATCH_SIZE", "-9")
	t.Setenv("THRESHER_SAMPLE_REPLAY_RATIO", "lots")
	code, _, stderr = run(t, "sample", "--lake", lakeDir, "--listen", "127.0.0.1:0")
	if code != ExitUsage || !strings.Contains(stderr, "batch_size: -9") || !strings.Contains(stderr, "THRESHER_SAMPLE_REPLAY_RATIO") {
		t.Fatalf("sample, bad environment: exit %d: %s", code, stderr)
	}
	code, _, stderr = run(t, "sample", "--lake", lakeDir, "--listen", "127.0.0.1:0", "--batch-size", "-4")
	if code != ExitUsage || strings.Contains(stderr, "batch_size: -9") || !strings.Contains(stderr, "batch_size: -4") {
		t.Fatalf("sample, flag over the environment: exit %d: %s", code, stderr)
	}
}

// TestTrainEvaluates: `thresher train --eval-task` scores checkpoints on a
// real task during training, records them in LAKE/eval, promotes the first
// and names it on its last line; bad evaluation settings are usage errors.
func TestTrainEvaluates(t *testing.T) {
	task := realtest.Data(t, "tasks/sotu_party")
	lakeDir, store := curatetest.Lake(t, 3000, 3000)
	t.Setenv("THRESHER_TRAIN_EVAL_MAX_EXAMPLES", "150")
	code, out, stderr := run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--max-steps", "40",
		"--progress", "0", "--eval-task", task, "--eval-every", "20", "--eval-labels-per-class", "8,16", "--eval-draws", "1", "--promote-tolerance", "0.5")
	if code != ExitOK {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	// A tolerance of 0.5 promotes every checkpoint that is not far worse.
	if !strings.Contains(out, "train: step=40 ") || !strings.Contains(out, "promoted_step=40 ") {
		t.Fatalf("train output %q\n%s", out, stderr)
	}
	if !strings.Contains(stderr, "checkpoint promoted") || !strings.Contains(stderr, "first evaluated checkpoint") {
		t.Fatalf("the promotions are not logged: %s", stderr)
	}
	rows, err := lake.ReadTable[schemas.Eval](context.Background(), store, schemas.TableEval)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, r := range rows {
		if r.Metric == train.MetricAccuracy {
			n++
			if r.Task != "sotu_party" || (r.LabelsPerClass != 8 && r.LabelsPerClass != 16) || r.Draws != 1 {
				t.Errorf("row %+v", r)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d accuracy rows, want 2 checkpoints x 2 budgets", n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--eval-task", "/no/such/task"}, "no/such/task"},
		{[]string{"--eval-task", task, "--eval-labels-per-class", "0"}, "eval_labels_per_class"},
		{[]string{"--eval-every", "-5"}, "eval_every"},
		{[]string{"--promote-tolerance", "-1"}, "promote_tolerance"},
	} {
		code, _, stderr := run(t, append([]string{"train", "--lake", t.TempDir()}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
}
