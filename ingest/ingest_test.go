package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

func testConfig(addr, topic, lakeDir string) ingest.Config {
	cfg := ingest.Config{
		Brokers: []string{addr}, Topics: []string{topic}, Group: "g-" + topic, Lake: lakeDir,
		ExitOnIdle:     ingest.Duration(500 * time.Millisecond),
		SessionTimeout: ingest.Duration(2 * time.Second), HeartbeatInterval: ingest.Duration(200 * time.Millisecond),
		RollInterval: ingest.Duration(300 * time.Millisecond),
	}
	cfg.SetDefaults()
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runIngest runs one in-process member until it is idle.
func runIngest(t testing.TB, cfg ingest.Config, store lake.Store, reg prometheus.Registerer) (ingest.Summary, error) {
	t.Helper()
	in, err := ingest.New(cfg, store, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := in.CheckBrokers(ctx); err != nil {
		t.Fatal(err)
	}
	err = in.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("ingest did not become idle in time")
	}
	return in.Summary(), err
}

func openLake(t testing.TB, dir string) *lake.Dir {
	t.Helper()
	d, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestIngestRealStream lands 50k real records over TCP and reads them back.
func TestIngestRealStream(t *testing.T) {
	lines := realtest.CorpusLines(t, 50_000)
	const topic, parts = "records", 4
	b := startBroker(t, topic, parts)
	keys := make([][]byte, len(lines))
	ids := map[string]int{}
	for i, l := range lines {
		var v struct{ ID string }
		_ = json.Unmarshal(l, &v)
		keys[i] = []byte(v.ID)
		ids[v.ID]++
	}
	produce(t, b.Addr(), topic, lines, keys)

	dir := t.TempDir()
	sum, err := runIngest(t, testConfig(b.Addr(), topic, dir), openLake(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != int64(len(lines)) || sum.DLQ != 0 {
		t.Fatalf("summary %v, want %d records and no DLQ", sum, len(lines))
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	got := make([]string, 0, len(lc.raw))
	gotIDs := map[string]int{}
	for _, r := range lc.raw {
		got = append(got, r.Text)
		gotIDs[r.ID]++
		if r.Topic != topic || r.Source == "" || r.Domain == "" || r.Lang != "en" || string(r.Key) != r.ID {
			t.Fatalf("row %d/%d: topic %q source %q domain %q lang %q key %q id %q",
				r.Partition, r.Offset, r.Topic, r.Source, r.Domain, r.Lang, r.Key, r.ID)
		}
		if r.KafkaTS.IsZero() || !r.TS.IsZero() || r.Attrs != "" {
			t.Fatalf("row %d/%d: kafka_ts %v ts %v attrs %q", r.Partition, r.Offset, r.KafkaTS, r.TS, r.Attrs)
		}
	}
	sort.Strings(got)
	want := textsOf(t, lines)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("text %d differs after the round trip:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	for id, n := range ids {
		if gotIDs[id] != n {
			t.Fatalf("id %q: %d rows, want %d", id, gotIDs[id], n)
		}
	}

	// DuckDB, an independent reader, sees the same table.
	var textBytes int
	for _, s := range want {
		textBytes += len(s)
	}
	rows := realtest.DuckDB(t, fmt.Sprintf(`SELECT count(*)::INT AS n, count(DISTINCT (partition, "offset"))::INT AS d,
		sum(strlen(text))::BIGINT AS bytes, count(DISTINCT id)::INT AS ids, min(kafka_ts) IS NOT NULL AS ts
		FROM read_parquet('%s/raw/**/*.parquet', hive_partitioning = false)`, dir))
	r := rows[0]
	if r["n"] != float64(len(lines)) || r["d"] != float64(len(lines)) || r["ids"] != float64(len(ids)) || r["ts"] != true {
		t.Fatalf("duckdb sees %v; want %d rows, %d distinct offsets, %d ids", r, len(lines), len(lines), len(ids))
	}
	if fmt.Sprint(r["bytes"]) != fmt.Sprint(textBytes) {
		t.Fatalf("duckdb counts %v text bytes, want %d", r["bytes"], textBytes)
	}
}

// TestIngestDLQReasons sends one kind of fault per reason, a different
// number of each, among valid records.
func TestIngestDLQReasons(t *testing.T) {
	big := `{"text": "` + strings.Repeat("a", 70<<10) + `"}`
	cases := map[string][]string{
		schemas.ReasonInvalidJSON:   {`{"text": "unterminated`, `{"text": "x",}`, `not json at all`},
		schemas.ReasonNotObject:     {`[1, 2]`, `42`, `null`, `"just a string"`},
		schemas.ReasonMissingText:   {`{"id": "x"}`},
		schemas.ReasonTextNotString: {`{"text": 1}`, `{"text": ["a"]}`},
		schemas.ReasonEmptyText:     {`{"text": ""}`, `{"text": " \n\t "}`, `{"text": "\u0020"}`},
		schemas.ReasonInvalidUTF8:   {"{\"text\": \"caf\xe9\"}", `{"text": "\ud800 lone"}`},
		schemas.ReasonTooLarge:      {big},
		schemas.ReasonInvalidTS:     {`{"text": "ok", "ts": "not a time"}`, `{"text": "ok", "ts": true}`},
	}
	var values [][]byte
	valid := 0
	for _, r := range schemas.Reasons {
		if len(cases[r]) == 0 {
			t.Fatalf("no case for reason %s", r)
		}
		for _, v := range cases[r] {
			values = append(values, []byte(v))
			values = append(values, []byte(fmt.Sprintf(`{"text": "valid %d", "extra": {"n": %d}}`, valid, valid)))
			valid++
		}
	}
	const topic = "faults"
	b := startBroker(t, topic, 2)
	produce(t, b.Addr(), topic, values, nil)

	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.MaxValueBytes = 64 << 10
	reg := prometheus.NewRegistry()
	sum, err := runIngest(t, cfg, openLake(t, dir), reg)
	if err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, 2))
	if len(lc.raw) != valid || sum.Records != int64(valid) {
		t.Fatalf("raw holds %d rows (summary %d), want %d", len(lc.raw), sum.Records, valid)
	}
	for _, r := range lc.raw {
		if !strings.HasPrefix(r.Attrs, `{"extra":{"n":`) {
			t.Fatalf("attrs %q", r.Attrs)
		}
	}
	got := map[string][]string{}
	for _, d := range lc.dlq {
		got[d.Reason] = append(got[d.Reason], string(d.Value))
	}
	for _, r := range schemas.Reasons {
		want := append([]string(nil), cases[r]...)
		sort.Strings(want)
		sort.Strings(got[r])
		if strings.Join(got[r], "\x00") != strings.Join(want, "\x00") {
			t.Errorf("reason %s: DLQ holds %q, want %q", r, got[r], want)
		}
		if n := metricDLQ(t, reg, topic, r); int(n) != len(cases[r]) {
			t.Errorf("reason %s: metric %v, want %d", r, n, len(cases[r]))
		}
	}
	if sum.DLQ != int64(len(lc.dlq)) {
		t.Errorf("summary counts %d DLQ records, lake holds %d", sum.DLQ, len(lc.dlq))
	}
	rows := realtest.DuckDB(t, fmt.Sprintf(`SELECT reason, count(*)::INT AS n, sum(octet_length(value))::INT AS bytes
		FROM read_parquet('%s/dlq/**/*.parquet') GROUP BY reason ORDER BY reason`, dir))
	if len(rows) != len(schemas.Reasons) {
		t.Fatalf("duckdb sees reasons %v", rows)
	}
	for _, r := range rows {
		reason := r["reason"].(string)
		n := 0
		for _, v := range cases[reason] {
			n += len(v)
		}
		if r["n"] != float64(len(cases[reason])) || r["bytes"] != float64(n) {
			t.Errorf("duckdb: reason %s: %v, want %d rows of %d bytes", reason, r, len(cases[reason]), n)
		}
	}
}

// metricDLQ finds thresher_ingest_dlq_records_total{topic,reason} in reg.
func metricDLQ(t testing.TB, reg *prometheus.Registry, topic, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "thresher_ingest_dlq_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lbl := map[string]string{}
			for _, l := range m.GetLabel() {
				lbl[l.GetName()] = l.GetValue()
			}
			if lbl["topic"] == topic && lbl["reason"] == reason {
				v = m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// failingStore fails the next Put of a raw segment once failRaw is set, as a crash between the DLQ commit and the raw commit would.
type failingStore struct {
	lake.Store
	failRaw atomic.Bool
}

var errInjected = errors.New("injected failure")

func (s *failingStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, schemas.TableRaw+"/") && s.failRaw.CompareAndSwap(true, false) {
		return errInjected
	}
	return s.Store.Put(ctx, key, data)
}

// TestIngestResume stops and restarts ingest, once after a failure between
// the DLQ commit and the raw commit of a span: the redo must not write the
// malformed records twice nor lose the valid ones.
func TestIngestResume(t *testing.T) {
	lines := realtest.CorpusLines(t, 6000)
	var first, second [][]byte
	for i, l := range lines {
		dst := &first
		if i >= 3000 {
			dst = &second
		}
		*dst = append(*dst, l)
		if i%500 == 0 {
			*dst = append(*dst, []byte(`{"text": 7}`))
		}
	}
	const topic = "resume"
	b := startBroker(t, topic, 2)
	dir := t.TempDir()
	store := openLake(t, dir)
	cfg := testConfig(b.Addr(), topic, dir)

	produce(t, b.Addr(), topic, first, nil)
	fs := &failingStore{Store: store}
	fs.failRaw.Store(true)
	if _, err := runIngest(t, cfg, fs, nil); !errors.Is(err, errInjected) {
		t.Fatalf("first run: %v, want the injected failure", err)
	}
	dlqAfterFail := len(readLake(t, dir, topic).dlq)
	if dlqAfterFail == 0 {
		t.Fatal("the failed run committed no DLQ segment first; the test needs one")
	}
	if _, err := runIngest(t, cfg, store, nil); err != nil {
		t.Fatal(err)
	}
	checkExact(t, readLake(t, dir, topic), highWatermarks(t, b.Addr(), topic, 2))

	produce(t, b.Addr(), topic, second, nil)
	sum, err := runIngest(t, cfg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records+sum.DLQ != int64(len(second)) {
		t.Fatalf("second run read %d records, want only the %d new ones", sum.Records+sum.DLQ, len(second))
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, 2))
	if len(lc.raw) != len(lines) {
		t.Fatalf("raw holds %d rows, want %d", len(lc.raw), len(lines))
	}
}

// TestIngestText reads plain-text values.
func TestIngestText(t *testing.T) {
	const topic = "plain"
	b := startBroker(t, topic, 1)
	produce(t, b.Addr(), topic, [][]byte{[]byte("first line"), []byte(""), []byte("second\nline"), []byte("\xff")}, nil)
	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.Format = "text"
	if _, err := runIngest(t, cfg, openLake(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	var texts []string
	for _, r := range lc.raw {
		texts = append(texts, r.Text)
	}
	if strings.Join(texts, "|") != "first line|second\nline" {
		t.Fatalf("texts %q", texts)
	}
	reasons := map[string]int{}
	for _, d := range lc.dlq {
		reasons[d.Reason]++
	}
	if reasons[schemas.ReasonEmptyText] != 1 || reasons[schemas.ReasonInvalidUTF8] != 1 {
		t.Fatalf("dlq reasons %v", reasons)
	}
}

// TestConfigValidate lists every problem at once.
func TestConfigValidate(t *testing.T) {
	cfg := ingest.Config{Brokers: []string{"nohostport"}, Topics: []string{"bad topic!"}, RollRecords: -1, Format: "xml"}
	cfg.SetDefaults()
	err := cfg.Validate()
	if !errors.Is(err, ingest.ErrConfig) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"brokers:", "topics:", "group:", "lake:", "format:", "roll_records:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]ingest.Size{"1": 1, "1KiB": 1024, "2 MiB": 2 << 20, "3MB": 3_000_000, "1GiB": 1 << 30, "7B": 7} {
		got, err := ingest.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "ten", "1TiB", "99999999999GiB"} {
		if _, err := ingest.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

// TestIngestMetamorphic lands the same records under different partition
// counts, segment sizes and group names: the lake must hold the same records.
// The shortest roll interval, with small fetches, seals spans by time while
// records keep arriving.
func TestIngestMetamorphic(t *testing.T) {
	lines := withFaults(realtest.CorpusLines(t, 8000))
	want := textsOf(t, realtest.CorpusLines(t, 8000))
	for _, c := range []struct {
		parts        int
		rollRecords  int
		rollBytes    ingest.Size
		rollInterval time.Duration
	}{{1, 100_000, 8 << 20, 0}, {3, 700, 8 << 20, 0}, {5, 100_000, 64 << 10, 0}, {2, 100_000, 8 << 20, 10 * time.Millisecond}} {
		t.Run(fmt.Sprintf("partitions=%d/roll_records=%d/roll_bytes=%d/roll_interval=%v", c.parts, c.rollRecords, c.rollBytes, c.rollInterval), func(t *testing.T) {
			topic := fmt.Sprintf("meta-%d", c.parts)
			b := startBroker(t, topic, c.parts)
			produce(t, b.Addr(), topic, lines, nil)
			dir := t.TempDir()
			cfg := testConfig(b.Addr(), topic, dir)
			cfg.RollRecords, cfg.RollBytes = c.rollRecords, c.rollBytes
			if c.rollInterval > 0 {
				cfg.RollInterval = ingest.Duration(c.rollInterval)
				cfg.FetchMaxBytes = 16 << 10
			}
			if _, err := runIngest(t, cfg, openLake(t, dir), nil); err != nil {
				t.Fatal(err)
			}
			lc := readLake(t, dir, topic)
			checkExact(t, lc, highWatermarks(t, b.Addr(), topic, c.parts))
			got := make([]string, 0, len(lc.raw))
			for _, r := range lc.raw {
				got = append(got, r.Text)
			}
			sort.Strings(got)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("raw texts differ from the input (%d rows, want %d)", len(got), len(want))
			}
			if len(lc.dlq) != len(lines)-len(want) {
				t.Fatalf("dlq holds %d rows, want %d", len(lc.dlq), len(lines)-len(want))
			}
		})
	}
}

// intruderStore plays a newer holder of partition 0: the first time the
// member claims a span of it (not its takeover), the intruder takes the
// partition over first, so the member's claim loses.
type intruderStore struct {
	lake.Store
	topic string
	done  atomic.Bool
}

func (s *intruderStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, lake.ClaimPrefix(s.topic, 0)) && !s.done.Load() {
		if c, err := lake.DecodeClaim(data); err == nil && c.Last > c.First {
			s.done.Store(true)
			if _, err := lake.Takeover(ctx, s.Store, s.topic, 0, c.First, "intruder"); err != nil {
				return err
			}
		}
	}
	return s.Store.Put(ctx, key, data)
}

// TestIngestFencedPartition: a member fenced on one partition gives that
// partition up and goes on with its other one; it does not fail.
func TestIngestFencedPartition(t *testing.T) {
	const topic = "fenced"
	b := startBroker(t, topic, 2)
	dir := t.TempDir()
	store := &intruderStore{Store: openLake(t, dir), topic: topic}
	reg := prometheus.NewRegistry()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.ExitOnIdle = 0
	in, err := ingest.New(cfg, store, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	// Values go to partition 0 or 1 by their key.
	produceTo := func(part, n, from int) {
		w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, BatchTimeout: time.Millisecond,
			Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0] - '0') })}
		defer w.Close()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(part)), Value: []byte(fmt.Sprintf(`{"text": "record %d"}`, from+i))}
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	// waitLake waits until partition 1 holds n offsets in the lake.
	waitLake := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			next, ok, err := lake.NextOffset(context.Background(), store.Store, schemas.TableRaw, topic, 1)
			if err == nil && ok && next >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition 1 holds %d offsets after 30s, want %d", next, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	produceTo(0, 500, 0)
	produceTo(1, 500, 0)
	waitLake(500)
	deadline := time.Now().Add(30 * time.Second)
	for metricFenced(t, reg, topic) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("partition 0 was not fenced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Partition 1 goes on after partition 0 is given up.
	produceTo(0, 300, 500)
	produceTo(1, 300, 500)
	waitLake(800)
	if st := in.Status(); st.Error != "" {
		t.Fatalf("status error %q", st.Error)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v, want nil", err)
	}
	// Partition 0 holds what the member committed before it was fenced:
	// nothing past the intruder's claim.
	c, ok, err := lake.GetClaim(context.Background(), store.Store, topic, 0, 0)
	if err != nil || !ok {
		t.Fatalf("claim at 0: %v %v", ok, err)
	}
	next, _, err := lake.NextOffset(context.Background(), store.Store, schemas.TableRaw, topic, 0)
	if err != nil || next > 1 {
		t.Fatalf("partition 0: lake at %d (%v), claim %v: the fenced member wrote past its takeover", next, err, c)
	}
}

func metricFenced(t testing.TB, reg *prometheus.Registry, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "thresher_ingest_fenced_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestIngestCompacts: with a short compact_interval, a member merges the
// small segments of the partitions it holds while it ingests, and the lake
// stays exact.
func TestIngestCompacts(t *testing.T) {
	lines := realtest.CorpusLines(t, 6000)
	const topic, parts = "compacted", 2
	b := startBroker(t, topic, parts)
	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.RollInterval = ingest.Duration(50 * time.Millisecond)
	every := ingest.Duration(time.Second)
	cfg.CompactInterval = &every
	cfg.ExitOnIdle = ingest.Duration(1500 * time.Millisecond)
	reg := prometheus.NewRegistry()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(lines); i += 500 {
			produce(t, b.Addr(), topic, lines[i:i+500], nil)
			time.Sleep(250 * time.Millisecond)
		}
	}()
	sum, err := runIngest(t, cfg, openLake(t, dir), reg)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	// The member may have gone idle between two produced chunks: finish.
	if _, err := runIngest(t, cfg, openLake(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	checkResolved(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	compacted := metricValue(t, reg, "thresher_ingest_compacted_segments_total")
	live, _, err := lake.ListSegments(context.Background(), openLake(t, dir), schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	if compacted == 0 || int64(len(live)) >= sum.Segments {
		t.Fatalf("%d segments committed, %d left, %v replaced by compaction", sum.Segments, len(live), compacted)
	}
	t.Logf("%d segments committed, %d left, %v replaced by compaction", sum.Segments, len(live), compacted)
}

func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
