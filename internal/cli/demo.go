package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/sample"
	"github.com/thresher-ml/thresher/schemas"
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
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

	step := func(n int, what string) { fmt.Fprintf(w, "[%d/4] %s\n", n, what) }
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
	fmt.Fprintf(w, "\nlake: %s\n", abs)
	fmt.Fprintf(w, "query it, for example with DuckDB:\n"+
		"  SELECT domain, count(*) FROM '%[1]s/raw/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT reason, count(*) FROM '%[1]s/dlq/**/*.parquet' GROUP BY ALL;\n"+
		"  SELECT decision, count(*) FROM '%[1]s/audit/records/*.parquet' GROUP BY ALL;\n"+
		"  SELECT a.domain, a.dup_of, r.text FROM '%[1]s/audit/records/*.parquet' a JOIN '%[1]s/raw/**/*.parquet' r\n"+
		"    USING (topic, partition, \"offset\") WHERE a.dup_of IS NOT NULL LIMIT 5;\n", abs)
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
