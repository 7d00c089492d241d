package curate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

func writeRaw(t testing.TB, store lake.Store, lines [][]byte, partitions, segLen int) {
	curatetest.WriteRaw(t, store, lines, partitions, segLen)
}

func testConfig(dir string, window int) curate.Config {
	cfg := curate.Config{Lake: dir, WindowRecords: window, Poll: 10 * time.Millisecond, ExitOnIdle: time.Millisecond}
	cfg.SetDefaults()
	return cfg
}

func runStage(t testing.TB, cfg curate.Config, store lake.Store) error {
	t.Helper()
	st, err := curate.New(context.Background(), cfg, store, nil, nil)
	if err != nil {
		return err
	}
	return st.Run(context.Background())
}

func readAll[T any](t testing.TB, store lake.Store, table string) []T {
	t.Helper()
	rows, err := lake.ReadTable[T](context.Background(), store, table)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkAudit checks the invariants of the audit table against n inputs.
func checkAudit(t testing.TB, store lake.Store, n int) []schemas.AuditRecord {
	t.Helper()
	audits := readAll[schemas.AuditRecord](t, store, schemas.TableAuditRecords)
	if len(audits) != n {
		t.Fatalf("audit/records holds %d rows, want one per input record: %d", len(audits), n)
	}
	byKey := map[string]schemas.AuditRecord{}
	for _, a := range audits {
		k := fmt.Sprintf("%s/%d/%d", a.Topic, a.Partition, a.Offset)
		if _, dup := byKey[k]; dup {
			t.Fatalf("record %s audited twice", k)
		}
		byKey[k] = a
		if a.ClusterID == "" {
			t.Fatalf("record %s has no cluster id", k)
		}
	}
	kept := 0
	for k, a := range byKey {
		switch a.Decision {
		case schemas.DecisionExactDuplicate, schemas.DecisionNearDuplicate:
			orig, ok := byKey[a.DupOf]
			if !ok {
				t.Fatalf("%s duplicates %q, which is not in the audit", k, a.DupOf)
			}
			if orig.ClusterID != a.ClusterID {
				t.Fatalf("%s and its original %s are in clusters %s and %s", k, a.DupOf, a.ClusterID, orig.ClusterID)
			}
		case schemas.DecisionKept:
			kept++
			if a.DupOf != "" {
				t.Fatalf("kept record %s names dup_of %s", k, a.DupOf)
			}
		case schemas.DecisionFiltered:
			if a.Reason == "" {
				t.Fatalf("filtered record %s has no reason", k)
			}
		default:
			t.Fatalf("record %s: decision %q", k, a.Decision)
		}
	}
	curated := readAll[schemas.Curated](t, store, schemas.TableCurated)
	if len(curated) != kept {
		t.Fatalf("curated holds %d rows, audit says %d kept", len(curated), kept)
	}
	return audits
}

func TestCurateRealStream(t *testing.T) {
	lines := realtest.CorpusLines(t, 30_000)
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, store, lines, 3, 4000)
	if err := runStage(t, testConfig(dir, 10_000), store); err != nil {
		t.Fatal(err)
	}
	audits := checkAudit(t, store, len(lines))
	dec := map[string]int{}
	for _, a := range audits {
		dec[a.Decision]++
	}
	t.Logf("decisions: %v", dec)
	if dec[schemas.DecisionExactDuplicate] == 0 || dec[schemas.DecisionNearDuplicate] == 0 {
		t.Fatalf("the real stream has exact and near duplicates; found %v", dec)
	}
	summary := readAll[schemas.AuditSummary](t, store, schemas.TableAuditSummary)
	windows := map[int64]int64{}
	for _, s := range summary {
		if s.Domain == curate.AllDomains {
			windows[s.Window] += s.Records
		}
	}
	var total int64
	for _, n := range windows {
		total += n
	}
	if len(windows) < 3 || total != int64(len(lines)) {
		t.Fatalf("summary: %d windows covering %d records", len(windows), total)
	}
	plans := readAll[schemas.CurriculumPlan](t, store, schemas.TableCurriculum)
	versions := map[int64]bool{}
	for _, p := range plans {
		versions[p.Version] = true
	}
	if len(versions) != len(windows) {
		t.Fatalf("%d curriculum versions for %d windows", len(versions), len(windows))
	}
	stages := map[int32]int{}
	for _, a := range audits {
		stages[a.CurriculumStage]++
	}
	if len(stages) != 4 {
		t.Fatalf("stages %v", stages)
	}

	// DuckDB, an independent reader, reads every table.
	for _, q := range []string{
		fmt.Sprintf(`SELECT count(*)::INT AS n FROM '%s/audit/records/*.parquet'`, dir),
		fmt.Sprintf(`SELECT count(*)::INT AS n FROM '%s/curated/*.parquet' WHERE len(text) > 0`, dir),
		fmt.Sprintf(`SELECT count(*)::INT AS n FROM '%s/audit/summary/*.parquet' WHERE domain = '*'`, dir),
		fmt.Sprintf(`SELECT count(DISTINCT version)::INT AS n FROM '%s/curriculum/*.parquet'`, dir),
	} {
		rows := realtest.DuckDB(t, q)
		if rows[0]["n"].(float64) <= 0 {
			t.Fatalf("duckdb %q: %v", q, rows)
		}
	}
	rows := realtest.DuckDB(t, fmt.Sprintf(`SELECT count(*)::INT AS n, count(DISTINCT cluster_id)::INT AS c,
		sum(CASE WHEN decision = 'kept' THEN 1 ELSE 0 END)::INT AS kept, max(len(pii_flags))::INT AS pii
		FROM '%s/audit/records/*.parquet'`, dir))
	if rows[0]["n"].(float64) != float64(len(lines)) || rows[0]["c"].(float64) >= float64(len(lines)) {
		t.Fatalf("duckdb audit: %v", rows)
	}
}

// failingStore fails the n-th Put, as a crash at that point would.
type failingStore struct {
	lake.Store
	puts, failAt atomic.Int64
}

var errCrash = errors.New("injected crash")

func (s *failingStore) Put(ctx context.Context, key string, data []byte) error {
	if s.puts.Add(1) == s.failAt.Load() {
		return errCrash
	}
	return s.Store.Put(ctx, key, data)
}

// TestCurateCrashResume fails the stage at every kind of write (plan,
// tables, state) in turn and restarts it: the tables end identical to an
// uninterrupted run, with no lost or doubled rows.
func TestCurateCrashResume(t *testing.T) {
	lines := realtest.CorpusLines(t, 6000)
	refDir := t.TempDir()
	ref, _ := lake.OpenDir(refDir)
	writeRaw(t, ref, lines, 2, 1000)
	if err := runStage(t, testConfig(refDir, 2000), ref); err != nil {
		t.Fatal(err)
	}
	want := checkAudit(t, ref, len(lines))

	// The dedup index saved with every window (each put of the cycle hit),
	// and never (every resume replays the windows through dedup).
	for _, every := range []int64{1, curate.DefaultIndexEvery} {
		for failAt := int64(1); failAt <= 14; failAt += 3 {
			t.Run(fmt.Sprintf("index_every=%d/fail_put=%d", every, failAt), func(t *testing.T) {
				dir := t.TempDir()
				base, _ := lake.OpenDir(dir)
				writeRaw(t, base, lines, 2, 1000)
				fs := &failingStore{Store: base}
				fs.failAt.Store(failAt)
				cfg := testConfig(dir, 2000)
				cfg.IndexEvery = every
				if err := runStage(t, cfg, fs); !errors.Is(err, errCrash) {
					t.Fatalf("first run: %v, want the injected crash", err)
				}
				// Every window up to the committed one has its curated file.
				seq, err := curate.CommittedWindow(context.Background(), base)
				if err != nil {
					t.Fatal(err)
				}
				for w := int64(1); w <= seq; w++ {
					if _, err := base.Get(context.Background(), curate.WindowKey(schemas.TableCurated, w)); err != nil {
						t.Fatalf("window %d committed but %v", w, err)
					}
				}
				if _, err := base.Get(context.Background(), curate.WindowKey(schemas.TableAuditRecords, seq+2)); err == nil {
					t.Fatalf("window %d written past the committed %d", seq+2, seq)
				}
				if err := runStage(t, cfg, base); err != nil {
					t.Fatal(err)
				}
				got := checkAudit(t, base, len(lines))
				sortAudits(got)
				sortAudits(want)
				for i := range want {
					if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
						t.Fatalf("row %d differs after the crash:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

func sortAudits(a []schemas.AuditRecord) {
	sort.Slice(a, func(i, j int) bool {
		if a[i].Partition != a[j].Partition {
			return a[i].Partition < a[j].Partition
		}
		return a[i].Offset < a[j].Offset
	})
}

// TestCurateBadRecords: binary junk, a 10 MB text and whitespace do not stop
// the stage and get an audit row each.
func TestCurateBadRecords(t *testing.T) {
	dir := t.TempDir()
	store, _ := lake.OpenDir(dir)
	texts := []string{"ordinary text about whales and ships", "\x00\x01\x02\xff\xfe junk", strings.Repeat("all work and no play ", 500_000), " ", "ordinary text about whales and ships"}
	var rows []schemas.Raw
	for i, s := range texts {
		rows = append(rows, schemas.Raw{Topic: "records", Offset: int64(i), KafkaTS: time.UnixMilli(1_700_000_000_000).UTC(), Text: s})
	}
	data, err := lake.EncodeRows(schemas.TableRaw, schemas.RawVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), lake.SegmentKey(schemas.TableRaw, "records", 0, lake.Range{First: 0, Last: 4}), data); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := runStage(t, testConfig(dir, 100), store); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v", d)
	}
	audits := checkAudit(t, store, len(texts))
	sortAudits(audits)
	if audits[4].Decision != schemas.DecisionExactDuplicate || audits[4].DupOf != "records/0/0" {
		t.Fatalf("repeat of record 0: %+v", audits[4])
	}
}

// TestCurateAfterCompaction compacts the raw table while curate is part way
// through it: merged segments hold offsets curate has curated, offsets it
// has not, and the offsets of a window it planned but did not commit (a
// crash). The restart replays the committed windows into the dedup index
// and redoes the planned one from their offsets (their segments are gone),
// then goes on with the rest: every record is curated exactly once.
func TestCurateAfterCompaction(t *testing.T) {
	ctx := context.Background()
	lines := realtest.CorpusLines(t, 6000)
	dir := t.TempDir()
	base, _ := lake.OpenDir(dir)
	writeRaw(t, base, lines, 2, 250)
	fs := &failingStore{Store: base}
	cfg := testConfig(dir, 1000)
	st, err := curate.New(ctx, cfg, fs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := st.Step(ctx); err != nil || n != 1000 {
			t.Fatalf("step: %d records, %v", n, err)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	// Window 3: its plan is put, its first table write crashes.
	fs.failAt.Store(fs.puts.Load() + 2)
	_, err = st.Step(ctx)
	if err == nil {
		err = st.Flush()
	}
	if !errors.Is(err, errCrash) {
		t.Fatalf("window 3: %v, want the injected crash", err)
	}
	if seq, err := curate.CommittedWindow(ctx, base); err != nil || seq != 2 {
		t.Fatalf("committed window %d, %v; want 2", seq, err)
	}
	// Merge about five segments of 250 into one: at least one holds curated
	// offsets (0-999 of its partition) and the uncommitted window's.
	live, _, err := lake.ListSegments(ctx, base, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lake.Compact(ctx, base, 5*live[0].Size+live[0].Size/2); err != nil {
		t.Fatal(err)
	}
	live, _, err = lake.ListSegments(ctx, base, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	crossing := 0
	for _, sg := range live {
		if sg.Range.First < 1000 && sg.Range.Last >= 1000 {
			crossing++
		}
	}
	if crossing == 0 || len(live) > 12 {
		t.Fatalf("compaction left %d segments, %d crossing the cursor: %v", len(live), crossing, live)
	}
	if err := runStage(t, cfg, base); err != nil {
		t.Fatal(err)
	}
	checkAudit(t, base, len(lines))
}

// TestCurateDedupOff curates the same real records with dedup on and off:
// off keeps every duplicate (curated grows by exactly the duplicates the
// index finds with it on), each still naming its original in dup_of and
// sharing its cluster, and the filtered records are the same.
func TestCurateDedupOff(t *testing.T) {
	lines := realtest.CorpusLines(t, 12_000)
	decisions := map[bool]map[string]int{}
	var curatedN [2]int
	for _, on := range []bool{true, false} {
		dir := t.TempDir()
		store, err := lake.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		writeRaw(t, store, lines, 2, 3000)
		cfg := testConfig(dir, 6000)
		cfg.Dedup.Enabled = &on
		if err := runStage(t, cfg, store); err != nil {
			t.Fatal(err)
		}
		audits := readAll[schemas.AuditRecord](t, store, schemas.TableAuditRecords)
		dec := map[string]int{}
		byKey := map[string]schemas.AuditRecord{}
		for _, a := range audits {
			dec[a.Decision]++
			byKey[fmt.Sprintf("%s/%d/%d", a.Topic, a.Partition, a.Offset)] = a
		}
		decisions[on] = dec
		curated := readAll[schemas.Curated](t, store, schemas.TableCurated)
		if on {
			curatedN[0] = len(curated)
			continue
		}
		curatedN[1] = len(curated)
		named := 0
		for k, a := range byKey {
			if a.DupOf == "" {
				continue
			}
			named++
			if a.Decision != schemas.DecisionKept && a.Decision != schemas.DecisionFiltered {
				t.Fatalf("dedup off: %s is %q", k, a.Decision)
			}
			if orig, ok := byKey[a.DupOf]; !ok || orig.ClusterID != a.ClusterID {
				t.Fatalf("dedup off: %s names dup_of %s outside its cluster", k, a.DupOf)
			}
		}
		if named == 0 {
			t.Fatal("dedup off: no record names the record it duplicates")
		}
	}
	dups := decisions[true][schemas.DecisionExactDuplicate] + decisions[true][schemas.DecisionNearDuplicate]
	t.Logf("dedup on %v (curated %d), off %v (curated %d)", decisions[true], curatedN[0], decisions[false], curatedN[1])
	if dups == 0 || decisions[false][schemas.DecisionExactDuplicate]+decisions[false][schemas.DecisionNearDuplicate] != 0 {
		t.Fatalf("decisions: on %v, off %v", decisions[true], decisions[false])
	}
	// Duplicates that a quality filter also catches are filtered either way.
	if grown := curatedN[1] - curatedN[0]; grown <= 0 || grown > dups {
		t.Fatalf("curated grew by %d with dedup off, want 1..%d (the duplicates)", grown, dups)
	}
}

// TestCurateRawVersions: a lake whose raw table holds a version 1 segment
// (written before the headers column, by the version 1 encoder) followed by
// a version 2 one with headers is curated whole.
func TestCurateRawVersions(t *testing.T) {
	dir := t.TempDir()
	store, _ := lake.OpenDir(dir)
	v1, err := os.ReadFile("../internal/lake/testdata/raw-v1.parquet") // records/3, offsets 40-51
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Put(ctx, lake.SegmentKey(schemas.TableRaw, "records", 3, lake.Range{First: 40, Last: 51}), v1); err != nil {
		t.Fatal(err)
	}
	var rows []schemas.Raw
	for i := range 5 {
		rows = append(rows, schemas.Raw{Topic: "records", Partition: 3, Offset: int64(52 + i), KafkaTS: time.UnixMilli(1_700_000_000_000).UTC(),
			Text: fmt.Sprintf("a newer record, number %d, about whales", i), Headers: []schemas.Header{{Key: "trace", Value: []byte{byte(i)}}}})
	}
	v2, err := lake.EncodeRows(schemas.TableRaw, schemas.RawVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, lake.SegmentKey(schemas.TableRaw, "records", 3, lake.Range{First: 52, Last: 56}), v2); err != nil {
		t.Fatal(err)
	}
	if err := runStage(t, testConfig(dir, 100), store); err != nil {
		t.Fatal(err)
	}
	audits := checkAudit(t, store, 12+5)
	sortAudits(audits)
	if audits[0].Offset != 40 || audits[16].Offset != 56 {
		t.Fatalf("audited offsets %d to %d, want 40 to 56", audits[0].Offset, audits[16].Offset)
	}
}
