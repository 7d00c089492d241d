package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/sample"
	"github.com/thresher-ml/thresher/report"
	"github.com/thresher-ml/thresher/schemas"
	"github.com/thresher-ml/thresher/train"
)

// demoMalformed are values the demo produces after the sample so that the
// DLQ shows one record of each kind of fault.
var demoMalformed = []string{
	`{"id": "broken-1", "text": "unterminated`,
	`["an", "array"]`,
	`{"id": "no-text", "source": "demo"}`,
	`{"id": "bad-text", "text": 42}`,
	`{"id": "empty", "text": "   "}`,
	"{\"id\": \"latin1\", \"text\": \"caf\xe9\"}",
	`{"id": "bad-ts", "text": "when?", "ts": "yesterday"}`,
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "demo", "[--lake DIR]")
	lakeDir := fs.String("lake", "", "lake `folder` to create (default ./thresher-demo-<time>)")
	partitions := fs.Int("partitions", 4, "partitions of the demo topic")
	trainSteps := fs.Int("train-steps", 300, "optimiser steps of the demo's training run")
	probeLabels := fs.Int("probe-labels", 16, "labelled examples per class of the demo's probe on the bundled task")
	probeDraws := fs.Int("probe-draws", 3, "seeded label draws of the demo's probe")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *trainSteps < 1 {
		return usagef("--train-steps %d must be positive", *trainSteps)
	}
	if *probeLabels < 1 || *probeDraws < 1 || *probeDraws > 100 {
		return usagef("--probe-labels %d must be positive and --probe-draws %d in [1, 100]", *probeLabels, *probeDraws)
	}
	if *partitions < 1 || *partitions > 64 {
		return usagef("--partitions %d must be between 1 and 64", *partitions)
	}
	if *lakeDir == "" {
		*lakeDir = "thresher-demo-" + time.Now().Format("20060102-150405")
	}
	abs, err := filepath.Abs(*lakeDir)
	if err != nil {
		return usagef("--lake: %v", err)
	}
	if _, err := lake.OpenDir(abs); err != nil {
		return &UsageError{Err: err}
	}
	const topic = "records"
	w := e.stdout
	fmt.Fprintf(w, "thresher demo: %d real records (see internal/sample/DATA_LICENSES.md) into lake %s\n\n", sample.Records, abs)

	step := func(n int, what string) { fmt.Fprintf(w, "[%d/%d] %s\n", n, demoSteps, what) }
	step(1, "embedded Kafka broker")
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: *partitions, Topics: []string{topic}, Logger: e.log})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "      listening on %s, topic %q with %d partitions\n", b.Addr(), topic, *partitions)

	step(2, "produce the bundled sample and a few malformed values")
	rc, err := sample.Open()
	if err != nil {
		return err
	}
	bad := strings.Join(demoMalformed, "\n") + "\n"
	n, nb, err := produceLines(ctx, []string{b.Addr()}, topic, "json", io.MultiReader(rc, strings.NewReader(bad)), e.stderr)
	rc.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Fprintf(w, "      produced %d records (%.1f MB)\n", n, float64(nb)/1e6)

	step(3, "ingest into the lake (consumer group, exactly once)")
	cfg := ingest.Config{
		Brokers: []string{b.Addr()}, Topics: []string{topic}, Group: "thresher-demo", Lake: abs,
		ExitOnIdle: ingest.Duration(time.Second),
	}
	cfg.SetDefaults()
	sum, err := ingestRun(ctx, e, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "      %s\n\n", sum)
	if err := printLakeSummary(ctx, w, abs); err != nil {
		return err
	}

	step(4, "curate: dedup, audit, curriculum")
	ccfg := curate.Config{Lake: abs, WindowRecords: 5000, ExitOnIdle: time.Millisecond}
	ccfg.SetDefaults()
	if _, err := curateRun(ctx, e, ccfg, ""); err != nil {
		return err
	}
	store, err := lake.OpenDir(abs)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printAudit(ctx, w, store); err != nil {
		return err
	}

	step(5, "train the encoder on the curated records (a short run), probing it on a bundled labeled task as it goes")
	tmp, err := os.MkdirTemp("", "thresher-demo-task-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	taskDir, err := sample.WriteTask(tmp)
	if err != nil {
		return err
	}
	// Periodic evaluation (and the promotion gate) about every third of the
	// run, off the last step, which step 6 scores against the baselines.
	every := max(1, *trainSteps/3)
	for every > 1 && *trainSteps%every == 0 {
		every--
	}
	if err := runTrain(ctx, e, []string{"--lake", abs, "--max-steps", strconv.Itoa(*trainSteps), "--progress", "2s",
		"--eval-task", taskDir, "--eval-every", strconv.Itoa(every),
		"--eval-labels-per-class", strconv.Itoa(*probeLabels), "--eval-draws", "1"}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := printNeighbours(ctx, w, e, store); err != nil {
		return err
	}

	step(6, "score the trained encoder on a bundled labeled task, against TF-IDF and a random encoder")
	if err := demoEval(ctx, w, e, store, taskDir, *probeLabels, *probeDraws); err != nil {
		return fmt.Errorf("eval: %w", err)
	}

	step(7, "write the report")
	reportPath, rsum, err := writeReport(ctx, store, filepath.Join(abs, "report.html"), report.Options{LakePath: abs, Log: e.log})
	if err != nil {
		return err
	}
	charts := 0
	for _, s := range rsum.Sections {
		charts += len(s.Charts)
	}
	fmt.Fprintf(w, "      %d charts in %d sections\n", charts, len(rsum.Sections))

	fmt.Fprintf(w, "\nquery the lake, for example with DuckDB:\n"+
		"  SELECT domain, count(*) FROM '%[1]s/raw/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT reason, count(*) FROM '%[1]s/dlq/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT decision, count(*) FROM '%[1]s/audit/records/*.parquet' GROUP BY ALL;\n"+
		"  SELECT a.domain, a.dup_of, r.text FROM '%[1]s/audit/records/*.parquet' a JOIN '%[1]s/raw/**/*.parquet' r\n"+
		"    USING (topic, partition, \"offset\") WHERE a.dup_of IS NOT NULL LIMIT 5;\n"+
		"  SELECT step, task, labels_per_class, value FROM '%[1]s/eval/*.parquet' WHERE metric = 'accuracy' ORDER BY step;\n", abs)
	fmt.Fprintf(w, "serve the trained encoder:\n"+
		"  thresher train --lake %[1]s --listen 127.0.0.1:8080   # resumes from checkpoints/CURRENT and keeps learning\n"+
		"  curl -s -d '{\"texts\": [\"a small dog\"]}' 127.0.0.1:8080/v1/embed\n"+
		"  thresher report --lake %[1]s --out report.html   # the report again, after more training\n", abs)
	fmt.Fprintf(w, "\nwhat the demo left:\n")
	fmt.Fprintf(w, "  the lake       %s  (raw, dlq, audit, curated, curriculum, train/history, eval, checkpoints)\n", abs)
	fmt.Fprintf(w, "  the report     open it in a browser: audits, curriculum, training, probe accuracy, embeddings\n")
	fmt.Fprintf(w, "lake: %s\n", abs)
	fmt.Fprintf(w, "report: %s\n", reportPath)
	return nil
}

// demoSteps is the number of steps the demo announces.
const demoSteps = 7

// demoEval scores the newest checkpoint's frozen encoder on the bundled
// task with a linear probe and kNN at labels labelled examples per class
// over draws seeded draws, beside TF-IDF and a random encoder of the same
// shape; it prints a table and adds the scores to the lake's eval table.
func demoEval(ctx context.Context, w io.Writer, e *env, store lake.Store, dir string, labels, draws int) error {
	task, err := eval.LoadTask(dir)
	if err != nil {
		return err
	}
	ck, key, err := train.NewCheckpointStore(store, 1, e.log).Load(ctx)
	if err != nil {
		return err
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return err
	}
	const seed = 1
	random, err := eval.NewRandomLayerFeatures(enc.Config(), seed, train.DefaultLayer, 0)
	if err != nil {
		return err
	}
	hyb, err := eval.NewHybridFeatures(eval.FeaturesHybrid, enc, train.DefaultLayer, 0)
	if err != nil {
		return err
	}
	encF, err := eval.NewLayerFeatures(eval.FeaturesEncoder, enc, train.DefaultLayer, 0)
	if err != nil {
		return err
	}
	feats := []eval.Features{hyb, encF, eval.NewTFIDF(task.Train.Texts), random}
	fmt.Fprintf(w, "      %s: %d classes (WordNet noun glosses by lexicographer file), %d labelled examples per class drawn %d times from train %d, C and k chosen on dev %d, scored on test %d\n",
		task.Name, len(task.Classes), labels, draws, task.Train.Len(), task.Dev.Len(), task.Test.Len())
	cfg := eval.Config{LabelsPerClass: []eval.LabelsPerClass{eval.LabelsPerClass(labels)}, Draws: draws, Seed: seed}
	pr := newEvalProgress(e.stderr, 2*time.Second)
	res, err := eval.Evaluate(ctx, task, feats, cfg, pr.update)
	if err != nil {
		return err
	}
	pr.finish(task.Name)
	acc := map[[2]string]eval.Result{}
	for _, r := range res {
		acc[[2]string{r.Features, r.Classifier}] = r
	}
	fmt.Fprintf(w, "      %-22s %-18s %-18s %s\n", "features", "linear probe", "kNN", "macro-F1 (linear)")
	names := map[string]string{
		eval.FeaturesHybrid:  fmt.Sprintf("hybrid (step %d)", ck.Meta.Step),
		eval.FeaturesEncoder: fmt.Sprintf("encoder (step %d)", ck.Meta.Step),
		eval.FeaturesTFIDF:   "TF-IDF",
		eval.FeaturesRandom:  "random encoder",
	}
	for _, f := range []string{eval.FeaturesHybrid, eval.FeaturesEncoder, eval.FeaturesTFIDF, eval.FeaturesRandom} {
		lin, knn := acc[[2]string{f, eval.ClassifierLinear}], acc[[2]string{f, eval.ClassifierKNN}]
		fmt.Fprintf(w, "      %-22s %.3f ± %.3f      %.3f ± %.3f      %.3f\n", names[f], lin.AccuracyMean, lin.AccuracyStd, knn.AccuracyMean, knn.AccuracyStd, lin.MacroF1Mean)
	}
	fmt.Fprintf(w, "      (test accuracy, mean ± std over the draws; always answering the most frequent class: %.3f)\n", task.MajorityRate())
	hybAcc := acc[[2]string{eval.FeaturesHybrid, eval.ClassifierLinear}].AccuracyMean
	encAcc := acc[[2]string{eval.FeaturesEncoder, eval.ClassifierLinear}].AccuracyMean
	tfAcc := acc[[2]string{eval.FeaturesTFIDF, eval.ClassifierLinear}].AccuracyMean
	if hybAcc > tfAcc {
		fmt.Fprintf(w, "      thresher's hybrid representation beats TF-IDF by %.3f with %d labels per class (the encoder alone: %+.3f)\n", hybAcc-tfAcc, labels, encAcc-tfAcc)
	} else {
		fmt.Fprintf(w, "      TF-IDF is ahead of the hybrid representation by %.3f: %d steps are too few (train longer with --train-steps, or resume with thresher train)\n", tfAcc-hybAcc, ck.Meta.Step)
	}

	// The scores join the eval table, where the report reads them.
	var rows []schemas.Eval
	now := time.Now().UTC()
	for _, r := range res {
		for _, m := range []struct {
			name      string
			mean, std float64
		}{{"accuracy", r.AccuracyMean, r.AccuracyStd}, {"macro_f1", r.MacroF1Mean, r.MacroF1Std}} {
			rows = append(rows, schemas.Eval{Step: ck.Meta.Step, Time: now, Checkpoint: key, Task: r.Task, Features: r.Features,
				Classifier: r.Classifier, LabelsPerClass: int32(r.LabelsPerClass), Metric: m.name, Value: m.mean, Std: m.std,
				Draws: int32(r.Draws), Reason: "thresher demo", Baseline: -1})
		}
	}
	data, err := lake.EncodeRows(schemas.TableEval, schemas.EvalVersion, rows)
	if err != nil {
		return err
	}
	evalKey := fmt.Sprintf("%s/%020d.parquet", schemas.TableEval, ck.Meta.Step)
	switch err := store.Put(ctx, evalKey, data); {
	case errors.Is(err, lake.ErrExist):
		fmt.Fprintf(w, "      %s already holds an evaluation of step %d; the demo's scores were not added\n", evalKey, ck.Meta.Step)
	case err != nil:
		return err
	}
	return nil
}

// printNeighbours embeds curated records with the newest checkpoint's
// encoder and prints, for a few of them, their nearest neighbours.
func printNeighbours(ctx context.Context, w io.Writer, e *env, store lake.Store) error {
	ck, _, err := train.NewCheckpointStore(store, 1, e.log).Load(ctx)
	if err != nil {
		return err
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return err
	}
	rows, err := lake.ReadTable[schemas.Curated](ctx, store, schemas.TableCurated)
	if err != nil {
		return err
	}
	// Every 5th record, up to 4000: a spread over the domains.
	var texts, domains []string
	for i := 0; i < len(rows) && len(texts) < 4000; i += 5 {
		texts = append(texts, rows[i].Text)
		domains = append(domains, rows[i].Domain)
	}
	vecs := enc.Embed(texts)
	fmt.Fprintf(w, "\nnearest neighbours by the trained encoder (cosine, among %d curated records):\n", len(texts))
	short := func(s string) string {
		s = strings.Join(strings.Fields(s), " ")
		if r := []rune(s); len(r) > 70 {
			return string(r[:70]) + "..."
		}
		return s
	}
	for _, q := range []int{0, len(texts) / 3, 2 * len(texts) / 3} {
		if q >= len(texts) {
			continue
		}
		best, second := -1, -1
		var bs, ss float32 = -2, -2
		for j := range vecs {
			if j == q {
				continue
			}
			var dot float32
			for k := range vecs[q] {
				dot += vecs[q][k] * vecs[j][k]
			}
			switch {
			case dot > bs:
				second, ss = best, bs
				best, bs = j, dot
			case dot > ss:
				second, ss = j, dot
			}
		}
		fmt.Fprintf(w, "  [%s] %s\n", domains[q], short(texts[q]))
		for _, n := range []struct {
			i int
			s float32
		}{{best, bs}, {second, ss}} {
			if n.i >= 0 {
				fmt.Fprintf(w, "      %.2f [%s] %s\n", n.s, domains[n.i], short(texts[n.i]))
			}
		}
	}
	return nil
}

// printLakeSummary reads the raw and DLQ tables back and prints counts.
func printLakeSummary(ctx context.Context, w io.Writer, root string) error {
	store, err := lake.OpenDir(root)
	if err != nil {
		return err
	}
	segments := func(table string) (int, error) {
		live, _, err := lake.ListSegments(ctx, store, table)
		return len(live), err
	}
	raw, err := lake.ReadTable[schemas.Raw](ctx, store, schemas.TableRaw)
	if err != nil {
		return err
	}
	dlq, err := lake.ReadTable[schemas.DLQ](ctx, store, schemas.TableDLQ)
	if err != nil {
		return err
	}
	byDomain, byReason := map[string]int{}, map[string]int{}
	for _, r := range raw {
		byDomain[r.Domain]++
	}
	for _, r := range dlq {
		byReason[r.Reason]++
	}
	rawFiles, err := segments(schemas.TableRaw)
	if err != nil {
		return err
	}
	dlqFiles, err := segments(schemas.TableDLQ)
	if err != nil {
		return err
	}
	printCounts(w, fmt.Sprintf("raw: %d segments", rawFiles), "domain", byDomain)
	printCounts(w, fmt.Sprintf("dlq: %d segments", dlqFiles), "reason", byReason)
	return nil
}

func printCounts(w io.Writer, title, col string, m map[string]int) {
	keys := make([]string, 0, len(m))
	total := 0
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	fmt.Fprintf(w, "%s, %d rows\n", title, total)
	fmt.Fprintf(w, "  %-18s %8s\n", col, "rows")
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(null)"
		}
		fmt.Fprintf(w, "  %-18s %8d\n", name, m[k])
	}
}
