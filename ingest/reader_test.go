package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// kgoClient returns a franz-go client of the broker at addr, closed by the
// test's cleanup.
func kgoClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceRecords writes records, each to the partition it names, and
// fails the test on any error.
func produceRecords(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// transaction produces recs in one transaction and commits or aborts it.
func transaction(t testing.TB, cl *kgo.Client, commit bool, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceRecords(t, cl, recs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// textRecords returns n JSON records {"text": "<prefix> i"}, spread over
// partitions.
func textRecords(topic, prefix string, n, partitions int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i % partitions),
			Value: fmt.Appendf(nil, `{"text": "%s %d"}`, prefix, i)}
	}
	return recs
}

func texts(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		if s, ok := strings.CutPrefix(string(r.Value), `{"text": "`); ok {
			out = append(out, strings.TrimSuffix(s, `"}`))
		}
	}
	return out
}

func rawTexts(lc lakeContent) []string {
	var out []string
	for _, r := range lc.raw {
		out = append(out, r.Text)
	}
	return out
}

// checkLake runs the lake checker over dir: no error, no warning.
func checkLake(t testing.TB, dir string) {
	t.Helper()
	rep, err := lake.Check(context.Background(), openLake(t, dir), lake.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity != lake.SeverityInfo {
			t.Errorf("lake check: %+v", f)
		}
	}
}

// sameSet fails unless got and want hold the same strings, each once.
func sameSet(t testing.TB, what string, got, want []string) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %d values, want %d:\n got %q\nwant %q", what, len(got), len(want), got, want)
	}
}

// TestIngestTransactions lands a transactional stream: committed
// transactions, aborted ones (one at the very end of a partition), a
// malformed record inside a committed one. With read_committed (the
// default) every committed record lands once and no aborted one; with
// read_uncommitted the aborted ones land too. Transaction markers land in
// neither raw nor the DLQ, yet every offset, markers and aborted records
// included, lies in the range of a raw segment: the ranges cover each
// partition from 0 to its end.
func TestIngestTransactions(t *testing.T) {
	for _, isolation := range []string{ingest.IsolationReadCommitted, ingest.IsolationReadUncommitted} {
		t.Run("isolation="+isolation, func(t *testing.T) {
			const topic, parts = "txn", 2
			b := startBroker(t, topic, parts)
			tx := kgoClient(t, b.Addr(), kgo.TransactionalID("tx-"+isolation))
			plain := kgoClient(t, b.Addr())

			first := textRecords(topic, "committed", 30, parts)
			bad := &kgo.Record{Topic: topic, Partition: 1, Value: []byte(`{"text": 7}`)}
			aborted := textRecords(topic, "aborted", 20, parts)
			more := textRecords(topic, "more", 30, parts)
			plainRecs := textRecords(topic, "plain", 10, parts)
			tail := textRecords(topic, "aborted at the end", 4, parts)

			transaction(t, tx, true, append(first, bad)...)
			transaction(t, tx, false, aborted...)
			produceRecords(t, plain, plainRecs...)
			transaction(t, tx, true, more...)
			transaction(t, tx, false, tail...)

			dir := t.TempDir()
			cfg := testConfig(b.Addr(), topic, dir)
			cfg.Isolation = isolation
			cfg.RollRecords = 7 // spans end inside transactions too
			sum, err := runIngest(t, cfg, openLake(t, dir), nil)
			if err != nil {
				t.Fatal(err)
			}
			lc := readLake(t, dir, topic)
			want := texts(slices.Concat(first, more, plainRecs))
			if isolation == ingest.IsolationReadUncommitted {
				want = append(want, texts(slices.Concat(aborted, tail))...)
			}
			sameSet(t, "raw texts", rawTexts(lc), want)
			if len(lc.dlq) != 1 || string(lc.dlq[0].Value) != string(bad.Value) {
				t.Fatalf("dlq holds %+v, want only the malformed record", lc.dlq)
			}
			if sum.Records != int64(len(want)) || sum.DLQ != 1 {
				t.Fatalf("summary %v, want %d records and 1 DLQ", sum, len(want))
			}
			checkCovered(t, lc, highWatermarks(t, b.Addr(), topic, parts))
			checkLake(t, dir)
		})
	}
}

// TestIngestHeaders: Kafka record headers land in the raw table's headers
// column, in order, a null value and an empty one kept apart; records
// without headers have null. Every reader of raw sees them: ReadRows,
// ReadRaw (curate's reader) and DuckDB.
func TestIngestHeaders(t *testing.T) {
	const topic = "headers"
	b := startBroker(t, topic, 1)
	cl := kgoClient(t, b.Addr())
	want := [][]kgo.RecordHeader{
		{{Key: "trace", Value: []byte("abc")}, {Key: "null"}, {Key: "empty", Value: []byte{}}, {Key: "trace", Value: []byte("again")}},
		nil,
		{{Key: "bin", Value: []byte{0, 0xff, 1}}},
	}
	var recs []*kgo.Record
	for i, hs := range want {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"text": "record %d", "lang": "en"}`, i), Headers: hs})
	}
	produceRecords(t, cl, recs...)

	dir := t.TempDir()
	if _, err := runIngest(t, testConfig(b.Addr(), topic, dir), openLake(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	check := func(reader string, rows []schemas.Raw) {
		t.Helper()
		if len(rows) != len(want) {
			t.Fatalf("%s: %d rows, want %d", reader, len(rows), len(want))
		}
		for _, r := range rows {
			w := want[r.Offset]
			ok := len(r.Headers) == len(w)
			for i := 0; ok && i < len(w); i++ {
				h := r.Headers[i]
				ok = h.Key == w[i].Key && bytes.Equal(h.Value, w[i].Value) && (h.Value == nil) == (w[i].Value == nil)
			}
			if !ok || r.Attrs != "" {
				t.Errorf("%s: offset %d: headers %+v attrs %q, want %+v and no attrs", reader, r.Offset, r.Headers, r.Attrs, w)
			}
		}
	}
	check("ReadRows", readLake(t, dir, topic).raw)
	var direct []schemas.Raw
	files, _ := filepath.Glob(filepath.Join(dir, "raw", "*", "*", "*.parquet"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		meta, _, err := lake.FileMeta(data)
		if err != nil || meta[schemas.MetaVersion] != fmt.Sprint(schemas.RawVersion) {
			t.Fatalf("%s: metadata %v, %v", f, meta, err)
		}
		rows, err := lake.ReadRaw(data)
		if err != nil {
			t.Fatal(err)
		}
		direct = append(direct, rows...)
	}
	check("ReadRaw", direct)

	rows := realtest.DuckDB(t, fmt.Sprintf(`SELECT "offset"::INT AS o, len(headers)::INT AS n, headers[1].key AS k,
		headers[2].value IS NULL AS null2, octet_length(headers[3].value)::INT AS len3
		FROM read_parquet('%s/raw/**/*.parquet') ORDER BY 1`, dir))
	got := fmt.Sprint(rows)
	const wantDuck = "[map[k:trace len3:0 n:4 null2:true o:0] map[k:<nil> len3:<nil> n:<nil> null2:true o:1] map[k:bin len3:<nil> n:1 null2:true o:2]]"
	if got != wantDuck {
		t.Fatalf("duckdb sees %s\nwant        %s", got, wantDuck)
	}
}

// deleteRecords moves a partition's log start to offset, as retention would.
func deleteRecords(t testing.TB, addr, topic string, partition int32, offset int64) {
	t.Helper()
	cl := kgoClient(t, addr)
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("delete records: %v", err)
			}
			if rp.LowWatermark != offset {
				t.Fatalf("delete records: log start %d, want %d", rp.LowWatermark, offset)
			}
		}
	}
}

// counter returns the value of the counter name{labels} in reg (0 when absent).
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestIngestOffsetGap: offsets the lake had not consumed are deleted from
// the broker (DeleteRecords, as retention does) before ingest resumes.
// on_gap: fail stops with ErrOffsetGap naming the topic, the partition and
// the missing range, and lands nothing; on_gap: record lands the range as a
// row of the gaps table, counts it, and goes on from the log start, so the
// raw and gaps ranges cover the partition. A later run does not see the
// recorded gap again.
func TestIngestOffsetGap(t *testing.T) {
	for _, policy := range []string{ingest.OnGapFail, ingest.OnGapRecord} {
		t.Run("on_gap="+policy, func(t *testing.T) {
			const topic = "gappy"
			b := startBroker(t, topic, 1)
			cl := kgoClient(t, b.Addr())
			dir := t.TempDir()
			store := openLake(t, dir)
			cfg := testConfig(b.Addr(), topic, dir)
			cfg.OnGap = policy

			before := textRecords(topic, "before", 100, 1)
			produceRecords(t, cl, before...)
			if _, err := runIngest(t, cfg, store, nil); err != nil {
				t.Fatal(err)
			}
			lost := textRecords(topic, "lost", 50, 1)
			after := textRecords(topic, "after", 50, 1)
			produceRecords(t, cl, append(lost, after...)...)
			deleteRecords(t, b.Addr(), topic, 0, 150)

			reg := prometheus.NewRegistry()
			_, err := runIngest(t, cfg, store, reg)
			lc := readLake(t, dir, topic)
			gaps := counter(t, reg, "thresher_ingest_offset_gaps_total", map[string]string{"topic": topic, "partition": "0"})
			if policy == ingest.OnGapFail {
				if !errors.Is(err, ingest.ErrOffsetGap) || !strings.Contains(err.Error(), "gappy partition 0: offsets 100-149") {
					t.Fatalf("run: %v, want ErrOffsetGap naming gappy partition 0, offsets 100-149", err)
				}
				sameSet(t, "raw texts", rawTexts(lc), texts(before))
				if len(lc.gaps) != 0 || gaps != 0 {
					t.Fatalf("gaps table %+v, metric %v; want nothing", lc.gaps, gaps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameSet(t, "raw texts", rawTexts(lc), texts(append(before, after...)))
			checkCovered(t, lc, map[int32]int64{0: 200})
			checkLake(t, dir)
			if len(lc.gaps) != 1 || lc.gaps[0].FirstOffset != 100 || lc.gaps[0].LastOffset != 149 || lc.gaps[0].Topic != topic ||
				lc.gaps[0].Reason != schemas.GapRetention || time.Since(lc.gaps[0].DetectedAt) > time.Minute || gaps != 1 {
				t.Fatalf("gaps table %+v, metric %v; want one gap 100-149", lc.gaps, gaps)
			}

			// The recorded gap is part of the lake's position.
			reg = prometheus.NewRegistry()
			sum, err := runIngest(t, cfg, store, reg)
			if err != nil || sum.Records+sum.DLQ != 0 || counter(t, reg, "thresher_ingest_offset_gaps_total", nil) != 0 {
				t.Fatalf("resume after the gap: %v, %v; want nothing to do", sum, err)
			}
			if again := readLake(t, dir, topic); len(again.gaps) != 1 || len(again.raw) != len(lc.raw) {
				t.Fatalf("resume after the gap wrote again: %d gaps, %d raw rows", len(again.gaps), len(again.raw))
			}
		})
	}
}

// TestIngestOffsetGapWhileRunning: the log start passes a running member's
// position (records deleted while it waits for them). The member is
// caught up at offset 100 with its span still open (a long roll interval);
// then 50 records are written in a transaction, so that a read_committed
// member cannot read them, deleted, and the transaction committed. The
// fetch then reports the position out of range. With on_gap: record the
// member commits the open span, lands the gap 100-149 and goes on; with
// on_gap: fail it commits the open span and stops with ErrOffsetGap.
func TestIngestOffsetGapWhileRunning(t *testing.T) {
	for _, policy := range []string{ingest.OnGapFail, ingest.OnGapRecord} {
		t.Run("on_gap="+policy, func(t *testing.T) {
			const topic = "shrinking"
			b := startBroker(t, topic, 1)
			cl := kgoClient(t, b.Addr())
			tx := kgoClient(t, b.Addr(), kgo.TransactionalID("tx-shrink"))
			dir := t.TempDir()
			store := openLake(t, dir)
			cfg := testConfig(b.Addr(), topic, dir)
			cfg.OnGap = policy
			cfg.RollInterval = ingest.Duration(time.Minute)
			cfg.ExitOnIdle = 0

			before := textRecords(topic, "before", 100, 1)
			produceRecords(t, cl, before...)
			reg := prometheus.NewRegistry()
			in, err := ingest.New(cfg, store, testLogger(t), reg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx) }()
			waitFor(t, "the member to catch up at offset 100", func() bool {
				return counter(t, reg, "thresher_ingest_idle", nil) == 1
			})

			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			produceRecords(t, tx, textRecords(topic, "lost", 50, 1)...)
			deleteRecords(t, b.Addr(), topic, 0, 150)
			if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			after := textRecords(topic, "after", 10, 1) // offsets 151-160, after the marker
			produceRecords(t, cl, after...)

			if policy == ingest.OnGapFail {
				err := <-done
				if !errors.Is(err, ingest.ErrOffsetGap) || !strings.Contains(err.Error(), "shrinking partition 0: offsets 100-149") {
					t.Fatalf("run: %v, want ErrOffsetGap naming shrinking partition 0, offsets 100-149", err)
				}
				lc := readLake(t, dir, topic)
				sameSet(t, "raw texts", rawTexts(lc), texts(before))
				// The open span, 0-99 (cut after the member's takeover
				// claim on offset 0), is committed; no gap is.
				if rs := lc.positions(0); len(rs) == 0 || rs[0].First != 0 || rs[len(rs)-1].Last != 99 || len(lc.gaps) != 0 {
					t.Fatalf("lake ranges %v, gaps %+v; want the open span 0-99 committed and no gap", rs, lc.gaps)
				}
				return
			}
			waitFor(t, "the gap to be recorded", func() bool {
				return counter(t, reg, "thresher_ingest_offset_gaps_total", nil) == 1
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// What the stopped member had not reached, a fresh one lands.
			if _, err := runIngest(t, testConfig(b.Addr(), topic, dir), store, nil); err != nil {
				t.Fatal(err)
			}
			lc := readLake(t, dir, topic)
			sameSet(t, "raw texts", rawTexts(lc), texts(append(before, after...)))
			checkCovered(t, lc, map[int32]int64{0: 161})
			checkLake(t, dir)
			// The open span ends at 99 (the segments of a new holder
			// start with its takeover claim, offset 0 alone), the gap
			// follows, then the rest.
			rs := lc.positions(0)
			i := slices.Index(rs, lake.Range{First: 100, Last: 149})
			if i < 1 || rs[i-1].Last != 99 || i == len(rs)-1 || len(lc.gaps) != 1 || lc.gaps[0].FirstOffset != 100 {
				t.Fatalf("lake ranges %v, gaps %+v; want 0-99 (the open span), the gap 100-149, then the rest", rs, lc.gaps)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIngestTopicRecreated: the topic is deleted and recreated, so its
// offsets start again below what the lake holds. Ingest stops with
// ErrOffsetsBackwards, whatever on_gap says, and lands nothing of the new
// topic.
func TestIngestTopicRecreated(t *testing.T) {
	const topic = "phoenix"
	b := startBroker(t, topic, 1)
	cl := kgoClient(t, b.Addr())
	dir := t.TempDir()
	store := openLake(t, dir)
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.OnGap = ingest.OnGapRecord
	old := textRecords(topic, "old", 100, 1)
	produceRecords(t, cl, old...)
	if _, err := runIngest(t, cfg, store, nil); err != nil {
		t.Fatal(err)
	}

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, dt)
	req.TimeoutMillis = 10_000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != nil {
		t.Fatalf("delete topic: %v %+v", err, resp)
	}
	if err := b.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	fresh := kgoClient(t, b.Addr())
	produceRecords(t, fresh, textRecords(topic, "new", 10, 1)...)

	_, err = runIngest(t, cfg, store, nil)
	if !errors.Is(err, ingest.ErrOffsetsBackwards) || !strings.Contains(err.Error(), "phoenix partition 0") {
		t.Fatalf("run: %v, want ErrOffsetsBackwards naming phoenix partition 0", err)
	}
	lc := readLake(t, dir, topic)
	sameSet(t, "raw texts", rawTexts(lc), texts(old))
}

// slowPoll delays, once per poll that returns records, the poll's return by
// d: the poll then hands over records after its context has ended.
type slowPoll struct {
	d     time.Duration
	slept bool // in this poll; only the polling goroutine touches it
}

func (s *slowPoll) OnPollStart(context.Context) { s.slept = false }

func (s *slowPoll) OnFetchRecordUnbuffered(_ *kgo.Record, polled bool) {
	if polled && !s.slept {
		s.slept = true
		time.Sleep(s.d)
	}
}

// TestIngestRollDuringPoll: polls that return records just as the open
// span's roll interval ends (made certain by delaying each poll past it)
// lose nothing: every offset lands exactly once.
func TestIngestRollDuringPoll(t *testing.T) {
	const topic = "rolling"
	b := startBroker(t, topic, 1)
	recs := textRecords(topic, "record", 1000, 1)
	cl := kgoClient(t, b.Addr())
	for i := 0; i < len(recs); i += 50 { // batches of 50, fetched one at a time
		produceRecords(t, cl, recs[i:i+50]...)
	}
	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.RollInterval = ingest.Duration(20 * time.Millisecond)
	cfg.FetchMaxBytes = 1 << 10 // a batch a fetch, so a poll a batch
	in, err := ingest.New(cfg, openLake(t, dir), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ingest.SetPartitionClientOpts(in, kgo.WithHooks(&slowPoll{d: 40 * time.Millisecond}))
	// A lost poll leaves the member short of the end, never idle: the
	// deadline stops it, and the lake shows what it lost.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.Run(ctx); err != nil || ctx.Err() != nil {
		t.Errorf("run: %v (context: %v)", err, ctx.Err())
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, map[int32]int64{0: int64(len(recs))})
	checkLake(t, dir)
	if len(lc.ranges[schemas.TableRaw][0]) < 3 {
		t.Fatalf("raw ranges %v: the test needs spans sealed by the roll interval", lc.ranges[schemas.TableRaw][0])
	}
}

// TestIngestOffsetGapInClaimedSpan: the missing offsets lie in a span an
// earlier holder claimed and never committed (it may still write it, as a
// raw segment of exactly that range, from records it read before they
// went). A gap there would overlap that segment, so even on_gap: record
// stops, with ErrOffsetGap naming the claim.
func TestIngestOffsetGapInClaimedSpan(t *testing.T) {
	const topic = "claimed"
	b := startBroker(t, topic, 1)
	cl := kgoClient(t, b.Addr())
	dir := t.TempDir()
	store := openLake(t, dir)
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.OnGap = ingest.OnGapRecord
	produceRecords(t, cl, textRecords(topic, "before", 100, 1)...)
	if _, err := runIngest(t, cfg, store, nil); err != nil {
		t.Fatal(err)
	}
	produceRecords(t, cl, textRecords(topic, "later", 100, 1)...)
	paused := lake.Claim{Range: lake.Range{First: 100, Last: 160}, Owner: "a paused member"}
	if err := lake.PutClaim(context.Background(), store, topic, 0, paused); err != nil {
		t.Fatal(err)
	}
	deleteRecords(t, b.Addr(), topic, 0, 150)
	_, err := runIngest(t, cfg, store, nil)
	if !errors.Is(err, ingest.ErrOffsetGap) || !strings.Contains(err.Error(), "claimed offsets 100-160") {
		t.Fatalf("run: %v, want ErrOffsetGap naming the claim 100-160", err)
	}
	if lc := readLake(t, dir, topic); len(lc.gaps) != 0 {
		t.Fatalf("gaps %+v recorded inside a claimed span", lc.gaps)
	}
}
