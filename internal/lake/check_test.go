package lake

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/schemas"
)

// testLake builds lakes for Check's tests with the segment writers ingest
// uses: Encoder for raw segments, EncodeRows for the small tables.
type testLake struct {
	t     testing.TB
	store *Mem
}

func newTestLake(t testing.TB) *testLake { return &testLake{t, NewMem()} }

const checkTopic = "records"

// every returns the offsets of r.
func every(r Range) []int64 {
	var out []int64
	for o := r.First; o <= r.Last; o++ {
		out = append(out, o)
	}
	return out
}

func (l *testLake) put(table string, p int32, r Range, data []byte) {
	l.t.Helper()
	if err := l.store.Put(context.Background(), SegmentKey(table, checkTopic, p, r), data); err != nil {
		l.t.Fatal(err)
	}
}

// raw commits a raw segment of range r holding rows at offsets.
func (l *testLake) raw(p int32, r Range, offsets ...int64) {
	l.t.Helper()
	rows := sampleRaw(len(offsets), 0)
	for i := range rows {
		rows[i].partition, rows[i].offset = p, offsets[i]
	}
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion)
	if err != nil {
		l.t.Fatal(err)
	}
	b := rawBatchOf(rows)
	defer b.Release()
	data, err := enc.Encode(b)
	if err != nil {
		l.t.Fatal(err)
	}
	l.put(schemas.TableRaw, p, r, data)
}

// dlq commits a dlq segment of range r holding rows at offsets.
func (l *testLake) dlq(p int32, r Range, offsets ...int64) {
	l.t.Helper()
	var rows []schemas.DLQ
	for _, o := range offsets {
		rows = append(rows, schemas.DLQ{Topic: checkTopic, Partition: p, Offset: o, KafkaTS: time.UnixMilli(1_700_000_000_000 + o).UTC(),
			Value: []byte(`{"text": `), Reason: schemas.ReasonInvalidJSON})
	}
	data, err := EncodeRows(schemas.TableDLQ, schemas.DLQVersion, rows)
	if err != nil {
		l.t.Fatal(err)
	}
	l.put(schemas.TableDLQ, p, r, data)
}

// gap commits a gaps segment of range r with a row per missing range.
func (l *testLake) gap(p int32, r Range, missing ...Range) {
	l.t.Helper()
	var rows []schemas.Gap
	for _, m := range missing {
		rows = append(rows, schemas.Gap{Topic: checkTopic, Partition: p, FirstOffset: m.First, LastOffset: m.Last,
			DetectedAt: time.UnixMilli(1_700_000_000_000).UTC(), Reason: schemas.GapRetention})
	}
	data, err := EncodeRows(schemas.TableGaps, schemas.GapsVersion, rows)
	if err != nil {
		l.t.Fatal(err)
	}
	l.put(schemas.TableGaps, p, r, data)
}

func (l *testLake) check(opts CheckOptions) *CheckReport {
	l.t.Helper()
	rep, err := Check(context.Background(), l.store, opts)
	if err != nil {
		l.t.Fatal(err)
	}
	return rep
}

// short describes a finding as "severity kind table partition first-last".
func short(f Finding) string {
	return fmt.Sprintf("%s %s %s %d %d-%d", f.Severity, f.Kind, f.Table, f.Partition, f.First, f.Last)
}

func rawKey(p int32, first, last int64) string {
	return SegmentKey(schemas.TableRaw, checkTopic, p, Range{first, last})
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(l *testLake)
		want  []string
		keys  [][]string // when set, the keys of each finding
	}{
		{name: "clean", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.raw(0, Range{10, 19}, 10, 11, 12, 13, 14, 16, 17, 18, 19)
			l.dlq(0, Range{10, 19}, 15)
			// Offsets 2 and 4 hold a transaction marker and an aborted
			// record: in the range, in no table.
			l.raw(1, Range{0, 4}, 0, 1, 3)
			l.raw(1, Range{5, 5}, 5)
		}},
		{name: "hole", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.raw(0, Range{20, 29}, every(Range{20, 29})...)
			l.raw(0, Range{30, 39}, every(Range{30, 39})...)
			l.raw(0, Range{45, 49}, every(Range{45, 49})...)
		}, want: []string{"error hole raw 0 10-19", "error hole raw 0 40-44"},
			keys: [][]string{{rawKey(0, 0, 9), rawKey(0, 20, 29)}, {rawKey(0, 30, 39), rawKey(0, 45, 49)}}},
		{name: "recorded gap fills the hole", build: func(l *testLake) {
			l.gap(0, Range{0, 4}, Range{0, 4}) // retention took the first offsets
			l.raw(0, Range{5, 9}, every(Range{5, 9})...)
			l.gap(0, Range{10, 19}, Range{10, 19})
			l.raw(0, Range{20, 29}, every(Range{20, 29})...)
		}},
		{name: "partial overlaps", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.raw(0, Range{5, 14}, every(Range{5, 14})...)
			l.raw(0, Range{12, 20}, every(Range{12, 20})...)
		}, want: []string{"error overlap raw 0 5-9", "error overlap raw 0 12-14"},
			keys: [][]string{{rawKey(0, 0, 9), rawKey(0, 5, 14)}, {rawKey(0, 5, 14), rawKey(0, 12, 20)}}},
		{name: "superseded run", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.raw(0, Range{10, 19}, every(Range{10, 19})...)
			l.raw(0, Range{0, 19}, every(Range{0, 19})...)
			l.raw(0, Range{20, 29}, every(Range{20, 29})...)
			l.dlq(0, Range{30, 39}, 31)
			l.dlq(0, Range{40, 49}, 42)
			l.dlq(0, Range{30, 49}, 31, 42)
			l.raw(0, Range{30, 49}, slices.DeleteFunc(every(Range{30, 49}), func(o int64) bool { return o == 31 || o == 42 })...)
		}, want: []string{"info superseded raw 0 0-9", "info superseded raw 0 10-19", "info superseded dlq 0 30-39", "info superseded dlq 0 40-49"},
			keys: [][]string{{rawKey(0, 0, 9), rawKey(0, 0, 19)}, {rawKey(0, 10, 19), rawKey(0, 0, 19)},
				{SegmentKey(schemas.TableDLQ, checkTopic, 0, Range{30, 39}), SegmentKey(schemas.TableDLQ, checkTopic, 0, Range{30, 49})},
				{SegmentKey(schemas.TableDLQ, checkTopic, 0, Range{40, 49}), SegmentKey(schemas.TableDLQ, checkTopic, 0, Range{30, 49})}}},
		{name: "row outside its segment's range", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, 0, 1, 2, 12, 13)
			l.raw(0, Range{10, 19}, every(Range{10, 19})...)
		}, want: []string{"error row_outside_range raw 0 12-13"}},
		{name: "row of another partition", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.raw(1, Range{0, 9}, every(Range{0, 9})...)
			l.dlq(1, Range{0, 9}) // no row: fine
			data, err := l.store.Get(context.Background(), rawKey(1, 0, 9))
			if err != nil {
				l.t.Fatal(err)
			}
			l.put(schemas.TableRaw, 0, Range{10, 19}, data) // partition 1's rows
		}, want: []string{"error row_outside_range raw 0 0-9"}},
		{name: "offsets not increasing", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, 0, 1, 2, 2, 3, 5, 4, 6)
		}, want: []string{"error row_order raw 0 2-4"}},
		{name: "offset in raw and dlq", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.dlq(0, Range{0, 9}, 4, 7)
			l.raw(0, Range{10, 19}, every(Range{10, 19})...)
		}, want: []string{"error raw_and_dlq raw 0 4-7"},
			keys: [][]string{{rawKey(0, 0, 9), SegmentKey(schemas.TableDLQ, checkTopic, 0, Range{0, 9})}}},
		{name: "dlq outside raw", build: func(l *testLake) {
			l.dlq(0, Range{0, 5}, 3)
			l.raw(0, Range{10, 19}, every(Range{10, 19})...)
			l.gap(0, Range{20, 29}, Range{20, 29})
			l.dlq(0, Range{25, 25}, 25) // in a recorded gap
			l.raw(0, Range{30, 39}, every(Range{30, 39})...)
		}, want: []string{"error dlq_outside_raw dlq 0 0-5", "error dlq_outside_raw dlq 0 25-25"}},
		{name: "dlq past the last raw segment", build: func(l *testLake) {
			// A crash between a span's dlq and raw commits; the redo cut
			// the raw ranges elsewhere.
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.dlq(0, Range{10, 19}, 12, 18)
			l.raw(0, Range{10, 14}, 10, 11, 13, 14)
		}, want: []string{"warning dlq_pending dlq 0 15-19"}},
		{name: "dlq across a redo's raw segments", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.dlq(0, Range{10, 19}, 12, 18)
			l.raw(0, Range{10, 14}, 10, 11, 13, 14)
			l.raw(0, Range{15, 24}, 15, 16, 17, 19, 20, 21, 22, 23, 24)
		}},
		{name: "gap overlapping raw", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.gap(0, Range{5, 14}, Range{5, 14})
		}, want: []string{"error overlap gaps 0 5-9"}},
		{name: "gap rows short of the segment", build: func(l *testLake) {
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			l.gap(0, Range{10, 19}, Range{10, 12}, Range{14, 15})
			l.raw(0, Range{20, 29}, every(Range{20, 29})...)
		}, want: []string{"error gap_rows gaps 0 13-13", "error gap_rows gaps 0 16-19"}},
		{name: "gap rows outside the segment", build: func(l *testLake) {
			l.gap(0, Range{0, 9}, Range{0, 12}, Range{5, 9})
		}, want: []string{"error gap_rows gaps 0 0-4", "error row_outside_range gaps 0 0-12", "error row_order gaps 0 5-9"}},
		{name: "stray and unreadable files", build: func(l *testLake) {
			ctx := context.Background()
			l.raw(0, Range{0, 9}, every(Range{0, 9})...)
			for key, data := range map[string]string{
				"raw/topic=records/partition=0/junk.parquet":     "x",
				"raw/topic=records/partition=0/notes.txt":        "not read by a glob",
				rawKey(0, 10, 19):                                "not parquet",
				rawKey(0, 30, 39):                                "PAR1PAR1", // a footer longer than the file
				"gaps/topic=records/partition=0/0-9.parquet":     "x",
				"dlq/topic=records/partition=00/5-9.parquet.tmp": "x",
			} {
				if err := l.store.Put(ctx, key, []byte(data)); err != nil {
					l.t.Fatal(err)
				}
			}
			// A dlq file under a raw key.
			dlq, err := EncodeRows(schemas.TableDLQ, schemas.DLQVersion, []schemas.DLQ{{Topic: checkTopic, Offset: 20}})
			if err != nil {
				l.t.Fatal(err)
			}
			l.put(schemas.TableRaw, 0, Range{20, 29}, dlq)
		}, want: []string{"error stray gaps -1 -1--1", "error stray raw -1 -1--1",
			"error unreadable raw 0 10-19", "error unreadable raw 0 20-29", "error unreadable raw 0 30-39"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLake(t)
			c.build(l)
			rep := l.check(CheckOptions{})
			var got []string
			for _, f := range rep.Findings {
				got = append(got, short(f))
			}
			want := c.want
			if !slices.Equal(got, want) {
				t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if c.keys != nil {
				for i, f := range rep.Findings {
					if !slices.Equal(f.Keys, c.keys[i]) {
						t.Errorf("finding %s: keys %v, want %v", short(f), f.Keys, c.keys[i])
					}
				}
			}
			for _, f := range rep.Findings {
				if f.Detail == "" || len(f.Keys) == 0 {
					t.Errorf("finding %s lacks a detail or keys: %+v", short(f), f)
				}
			}
		})
	}
}

// TestCheckSummary: the tables' counts cover live segments; superseded
// ones are counted apart.
func TestCheckSummary(t *testing.T) {
	l := newTestLake(t)
	l.raw(0, Range{0, 9}, every(Range{0, 9})...)
	l.raw(0, Range{10, 19}, 10, 11, 13, 14, 15, 16, 17, 18, 19)
	l.dlq(0, Range{10, 19}, 12)
	l.raw(0, Range{0, 19}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19)
	l.gap(1, Range{0, 99}, Range{0, 99})
	l.raw(1, Range{100, 104}, 100, 102) // 101, 103, 104: a transaction's records and marker
	rep := l.check(CheckOptions{})
	got := rep.Tables
	for i := range got {
		got[i].Bytes = 0
	}
	want := []TableSummary{
		{Table: "raw", Partitions: 2, Segments: 4, Superseded: 2, Rows: 21, Offsets: 25},
		{Table: "dlq", Partitions: 1, Segments: 1, Rows: 1, Offsets: 10},
		{Table: "gaps", Partitions: 1, Segments: 1, Rows: 1, Offsets: 100},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summary:\n%+v\nwant\n%+v", got, want)
	}
	if rep.Count(SeverityError) != 0 || rep.Count(SeverityWarning) != 0 || rep.Count(SeverityInfo) != 2 {
		t.Fatalf("findings: %v", rep.Findings)
	}
	if s := rep.Tables[0].String(); !strings.HasPrefix(s, "raw: partitions=2 segments=4 superseded=2 rows=21 offsets=25 bytes=") {
		t.Errorf("summary line %q", s)
	}
}

// TestCheckWorkers: the report does not depend on how many segments are
// read at once, and progress reaches every file and byte.
func TestCheckWorkers(t *testing.T) {
	l := newTestLake(t)
	for p := range int32(3) {
		for i := range int64(15) {
			r := Range{i * 10, i*10 + 9}
			offs := every(r)
			if i%4 == 1 {
				l.dlq(p, r, offs[3])
				offs = slices.Delete(offs, 3, 4)
			}
			if p == 2 && i == 7 {
				offs = append(offs, 3) // a row outside the range
			}
			if p == 1 && i == 8 {
				continue // a hole
			}
			l.raw(p, r, offs...)
		}
	}
	var reports []*CheckReport
	for _, workers := range []int{1, 4} {
		var last CheckProgress
		calls := 0
		rep := l.check(CheckOptions{Workers: workers, Progress: func(p CheckProgress) { last = p; calls++ }})
		if last.Files != last.TotalFiles || last.Bytes != last.TotalBytes || calls != last.TotalFiles || last.TotalFiles != 3*15-1+3*4 {
			t.Errorf("workers %d: last progress %+v after %d calls", workers, last, calls)
		}
		reports = append(reports, rep)
	}
	if !reflect.DeepEqual(reports[0], reports[1]) {
		t.Fatalf("1 worker:\n%+v\n4 workers:\n%+v", reports[0], reports[1])
	}
	var got []string
	for _, f := range reports[0].Findings {
		got = append(got, short(f))
	}
	if want := []string{"error hole raw 1 80-89", "error row_order raw 2 3-3", "error row_outside_range raw 2 3-3"}; !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
}

// failingStore fails Get for one key, or reports it gone.
type failingStore struct {
	Store
	key  string
	fail error
}

func (s *failingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if key == s.key {
		return nil, s.fail
	}
	return s.Store.Get(ctx, key)
}

// TestCheckStoreErrors: a segment that cannot be read stops the check with
// the store's error; one deleted since the listing is a warning.
func TestCheckStoreErrors(t *testing.T) {
	l := newTestLake(t)
	l.raw(0, Range{0, 9}, every(Range{0, 9})...)
	l.raw(0, Range{10, 19}, every(Range{10, 19})...)
	errIO := errors.New("input/output error")
	_, err := Check(context.Background(), &failingStore{l.store, rawKey(0, 10, 19), errIO}, CheckOptions{})
	if !errors.Is(err, errIO) {
		t.Fatalf("err = %v, want the store's", err)
	}
	rep, err := Check(context.Background(), &failingStore{l.store, rawKey(0, 10, 19), fmt.Errorf("%w: gone", ErrNotExist)}, CheckOptions{})
	if err != nil || len(rep.Findings) != 1 || short(rep.Findings[0]) != "warning vanished raw 0 10-19" {
		t.Fatalf("vanished segment: %v, %+v", err, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, l.store, CheckOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// FuzzCheck: whatever bytes a segment holds, Check reports and never
// panics; a segment it cannot read is a finding, not an error.
func FuzzCheck(f *testing.F) {
	seeds := newTestLake(f)
	seeds.raw(0, Range{0, 3}, 0, 1, 3)
	seeds.dlq(0, Range{0, 3}, 2)
	seeds.gap(0, Range{4, 5}, Range{4, 5})
	objs, err := seeds.store.List(context.Background(), "")
	if err != nil {
		f.Fatal(err)
	}
	for i, o := range objs {
		data, err := seeds.store.Get(context.Background(), o.Key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), data)
	}
	raw, err := seeds.store.Get(context.Background(), rawKey(0, 0, 3))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, table uint8, data []byte) {
		l := newTestLake(t)
		l.put(schemas.TableRaw, 0, Range{0, 3}, raw)
		l.put(checkTables[int(table)%nTables], 0, Range{4, 7}, data)
		rep, err := Check(context.Background(), l.store, CheckOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if f.Kind == FindingUnreadable && rep.Tables[0].Rows != 3 {
				t.Fatalf("an unreadable segment changed the raw rows: %+v", rep.Tables[0])
			}
		}
	})
}
