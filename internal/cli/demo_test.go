package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// TestDemo runs the README's first command (with a shorter training run):
// every step, on the embedded broker and the bundled sample; the lake it
// leaves holds every table and a checkpoint, the encoder is scored on the
// bundled task against the baselines, and the report it names on a line
// of its own exists and shows the lake.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	// The whole pipeline takes longer than run's minute under -race on a
	// busy 2-core machine.
	var outb, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	code := Run(ctx, []string{"demo", "--lake", dir, "--train-steps", "20", "--probe-draws", "1"}, strings.NewReader(""), &outb, &errb)
	out, stderr := outb.String(), errb.String()
	t.Logf("demo ran in %v", time.Since(began))
	if code != ExitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"[1/7]", "[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]", "records=20000", "dlq=7",
		"curate: windows=", "train: step=20 ", "nearest neighbours", "wordnet_lexname: 25 classes",
		"hybrid (step 20)", "encoder (step 20)", "TF-IDF ", "random encoder ", "lake: " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"eval: wordnet_lexname: fitting probes", "fits/s"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("demo shows no eval progress %q:\n%s", want, stderr)
		}
	}
	for _, p := range []string{"raw", "dlq", "audit/records", "audit/summary", "curated", "curriculum", "checkpoints/CURRENT", "eval"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("the demo lake lacks %s: %v", p, err)
		}
	}
	m := regexp.MustCompile(`(?m)^report: (.+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line \"report: PATH\" in the output:\n%s", out)
	}
	if !strings.HasSuffix(out, m[0]+"\n") {
		t.Errorf("the demo does not end with its report line:\n%s", out)
	}
	// The training run probed itself on the bundled task (steps 6, 12, 18)
	// and gated promotion; step 6 scored the last step with the baselines.
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lake.ReadTable[schemas.Eval](context.Background(), store, schemas.TableEval)
	if err != nil {
		t.Fatal(err)
	}
	evaluated := map[int64]map[string]bool{}
	for _, r := range rows {
		if evaluated[r.Step] == nil {
			evaluated[r.Step] = map[string]bool{}
		}
		evaluated[r.Step][r.Features] = true
	}
	for _, st := range []int64{6, 12, 18} {
		if !evaluated[st]["encoder"] {
			t.Errorf("no periodic evaluation at step %d: %v", st, evaluated)
		}
	}
	if !evaluated[20]["tfidf"] || !evaluated[20]["encoder"] || !evaluated[20]["hybrid"] {
		t.Errorf("step 20 not scored against TF-IDF: %v", evaluated)
	}
	if want := filepath.Join(dir, "report.html"); m[1] != want {
		t.Errorf("report path %q, want %q", m[1], want)
	}
	page, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatalf("the report the demo names: %v", err)
	}
	for _, want := range []string{"thresher report", dir, "wordnet_lexname, linear probe, 16 labels per class, step 20", `id="plot-embeddings"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the report does not show %q", want)
		}
	}
	if strings.Contains(string(page), "could not read") {
		t.Error("a section of the demo's report could not be read")
	}

	for _, args := range [][]string{{"demo", "--train-steps", "0"}, {"demo", "--probe-labels", "0"}, {"demo", "--probe-draws", "0"}} {
		if code, _, stderr := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
}
