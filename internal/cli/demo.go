package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/sample"
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *trainSteps < 1 {
		return usagef("--train-steps %d must be positive", *trainSteps)
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

	step := func(n int, what string) { fmt.Fprintf(w, "[%d/5] %s\n", n, what) }
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

	step(5, "train the encoder on the curated records (a short run)")
	if err := runTrain(ctx, e, []string{"--lake", abs, "--max-steps", strconv.Itoa(*trainSteps), "--progress", "2s"}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := printNeighbours(ctx, w, e, store); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nlake: %s\n", abs)
	fmt.Fprintf(w, "query it, for example with DuckDB:\n"+
		"  SELECT domain, count(*) FROM '%[1]s/raw/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT reason, count(*) FROM '%[1]s/dlq/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT decision, count(*) FROM '%[1]s/audit/records/*.parquet' GROUP BY ALL;\n"+
		"  SELECT a.domain, a.dup_of, r.text FROM '%[1]s/audit/records/*.parquet' a JOIN '%[1]s/raw/**/*.parquet' r\n"+
		"    USING (topic, partition, \"offset\") WHERE a.dup_of IS NOT NULL LIMIT 5;\n", abs)
	fmt.Fprintf(w, "serve the trained encoder:\n"+
		"  thresher train --lake %[1]s --listen 127.0.0.1:8080   # resumes from checkpoints/CURRENT and keeps learning\n"+
		"  curl -s -d '{\"texts\": [\"a small dog\"]}' 127.0.0.1:8080/v1/embed\n", abs)
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
		objs, err := store.List(ctx, table+"/")
		n := 0
		for _, o := range objs {
			if strings.HasSuffix(o.Key, ".parquet") {
				n++
			}
		}
		return n, err
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
