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

// rawRows returns raw rows of offsets first..last of partition p of topic
// "t", each offset malformed (skipped: it goes to the DLQ) when bad says so.
func rawRows(p int32, first, last int64, bad func(int64) bool) (raw []schemas.Raw, dlq []schemas.DLQ) {
	for o := first; o <= last; o++ {
		ts := time.UnixMilli(1_700_000_000_000 + o).UTC()
		if bad != nil && bad(o) {
			dlq = append(dlq, schemas.DLQ{Topic: "t", Partition: p, Offset: o, KafkaTS: ts,
				Value: []byte(fmt.Sprintf(`{"id": %d}`, o)), Reason: schemas.ReasonMissingText})
			continue
		}
		r := schemas.Raw{Topic: "t", Partition: p, Offset: o, KafkaTS: ts,
			Text: strings.Repeat(fmt.Sprintf("record %d of partition %d ", o, p), 1+int(o%7))}
		if o%3 != 0 { // some rows have nulls
			r.ID, r.Domain, r.Key = fmt.Sprint("id-", o), []string{"news", "web", "code"}[o%3], []byte{byte(o)}
		}
		if o%3 == 1 { // and some headers
			r.Headers = []schemas.Header{{Key: "trace", Value: []byte(fmt.Sprint(o))}, {Key: "null"}}
		}
		raw = append(raw, r)
	}
	return raw, dlq
}

// putSpan writes one span as ingest does: a raw segment of first..last and,
// when it has malformed records, a dlq segment of the same range.
func putSpan(t *testing.T, s Store, p int32, first, last int64, bad func(int64) bool) {
	t.Helper()
	raw, dlq := rawRows(p, first, last, bad)
	r := Range{First: first, Last: last}
	if len(dlq) > 0 {
		data, err := EncodeRows(schemas.TableDLQ, schemas.DLQVersion, dlq)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(context.Background(), SegmentKey(schemas.TableDLQ, "t", p, r), data); err != nil {
			t.Fatal(err)
		}
	}
	data, err := EncodeRows(schemas.TableRaw, schemas.RawVersion, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), SegmentKey(schemas.TableRaw, "t", p, r), data); err != nil {
		t.Fatal(err)
	}
}

func liveRanges(t *testing.T, s Store, table string) map[int32][]Range {
	t.Helper()
	live, sup, err := ListSegments(context.Background(), s, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(sup) > 0 {
		t.Fatalf("%s: superseded segments left: %v", table, sup)
	}
	out := map[int32][]Range{}
	for _, sg := range live {
		out[sg.Partition] = append(out[sg.Partition], sg.Range)
	}
	return out
}

func readBoth(t *testing.T, s Store) ([]schemas.Raw, []schemas.DLQ) {
	t.Helper()
	raw, err := ReadTable[schemas.Raw](context.Background(), s, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := ReadTable[schemas.DLQ](context.Background(), s, schemas.TableDLQ)
	if err != nil {
		t.Fatal(err)
	}
	return raw, dlq
}

// TestCompact merges runs of small segments in every partition of raw and
// dlq, keeps every row as it was (nulls included), never merges across a
// hole of offsets or a segment of the target size, and keeps every dlq
// segment within one raw segment.
func TestCompact(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bad := func(o int64) bool { return o%10 == 4 }
			// Partition 0: ten spans of 20, a hole (200-299 never landed),
			// five more spans. Partition 1: spans with and without DLQ.
			for i := range int64(10) {
				putSpan(t, s, 0, i*20, i*20+19, bad)
			}
			for i := range int64(5) {
				putSpan(t, s, 0, 300+i*20, 300+i*20+19, nil)
			}
			for i := range int64(8) {
				putSpan(t, s, 1, i*30, i*30+29, func(o int64) bool { return i%3 == 0 && bad(o) })
			}
			wantRaw, wantDLQ := readBoth(t, s)
			before := liveRanges(t, s, schemas.TableRaw)
			// A target of about four segments.
			live, _, _ := ListSegments(ctx, s, schemas.TableRaw)
			target := 4*live[0].Size + live[0].Size/2
			st, err := Compact(ctx, s, target)
			if err != nil {
				t.Fatal(err)
			}
			gotRaw, gotDLQ := readBoth(t, s)
			if !reflect.DeepEqual(gotRaw, wantRaw) || !reflect.DeepEqual(gotDLQ, wantDLQ) {
				t.Fatalf("rows changed by compaction: %d raw %d dlq, want %d and %d", len(gotRaw), len(gotDLQ), len(wantRaw), len(wantDLQ))
			}
			after := liveRanges(t, s, schemas.TableRaw)
			t.Logf("%v: raw %v", st, after)
			if st.Partitions != 2 || st.Written == 0 || st.Replaced != st.Deleted {
				t.Fatalf("stats %v", st)
			}
			for p, rs := range after {
				if len(rs) >= len(before[p]) {
					t.Errorf("partition %d: %d segments before, %d after", p, len(before[p]), len(rs))
				}
				for i := 1; i < len(rs); i++ {
					if rs[i].First <= rs[i-1].Last {
						t.Errorf("partition %d: %v and %v overlap", p, rs[i-1], rs[i])
					}
				}
				for _, r := range rs {
					if r.First < 200 && r.Last >= 300 {
						t.Errorf("partition %d: %v merged across the hole 200-299", p, r)
					}
				}
			}
			rawLive, _, _ := ListSegments(ctx, s, schemas.TableRaw)
			for _, sg := range rawLive {
				if sg.Size > target+target/2 {
					t.Errorf("%s: %d bytes, target %d", sg.Key, sg.Size, target)
				}
			}
			dlqLive, _, _ := ListSegments(ctx, s, schemas.TableDLQ)
			for _, d := range dlqLive {
				in := 0
				for _, r := range after[d.Partition] {
					if r.First <= d.Range.First && d.Range.Last <= r.Last {
						in++
					}
				}
				if in != 1 {
					t.Errorf("dlq segment %v is within %d raw segments, want 1", d.Range, in)
				}
			}
			if n := len(dlqLive); n >= 7 {
				t.Errorf("%d dlq segments left of 7", n)
			}
			// The merged files are read like the ones ingest writes.
			for _, sg := range rawLive {
				data, _ := s.Get(ctx, sg.Key)
				meta, rows, err := FileMeta(data)
				if err != nil || meta[schemas.MetaTable] != schemas.TableRaw || meta[schemas.MetaVersion] != fmt.Sprint(schemas.RawVersion) {
					t.Fatalf("%s: meta %v %v", sg.Key, meta, err)
				}
				got, err := ReadRaw(data)
				if err != nil || int64(len(got)) != rows {
					t.Fatalf("%s: ReadRaw %d rows, %v", sg.Key, len(got), err)
				}
				for _, r := range got { // headers survive the merge
					want, _ := rawRows(r.Partition, r.Offset, r.Offset, nil)
					if !sameHeaders(r.Headers, want[0].Headers) {
						t.Fatalf("%s offset %d: headers %q, want %q", sg.Key, r.Offset, r.Headers, want[0].Headers)
					}
				}
			}
			// The checker finds the compacted lake whole (the hole 200-299 of
			// partition 0 aside).
			rep, err := Check(ctx, s, CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if f.Kind != FindingHole || f.Partition != 0 || f.First != 200 || f.Last != 299 {
					t.Errorf("lake check: %s", f)
				}
			}
			// Compacting again changes no row, and leaves nothing superseded.
			if _, err := Compact(ctx, s, target); err != nil {
				t.Fatal(err)
			}
			if r, d := readBoth(t, s); !reflect.DeepEqual(r, wantRaw) || !reflect.DeepEqual(d, wantDLQ) {
				t.Fatal("rows changed by a second compaction")
			}
			liveRanges(t, s, schemas.TableDLQ)
		})
	}
}

// TestCompactKeepsNulls merges files whose optional columns hold both nulls
// and empty values: each stays what it was.
func TestCompactKeepsNulls(t *testing.T) {
	type row struct {
		Topic     string    `parquet:"topic,dict,zstd"`
		Partition int32     `parquet:"partition,zstd"`
		Offset    int64     `parquet:"offset,delta,zstd"`
		KafkaTS   time.Time `parquet:"kafka_ts,timestamp(millisecond),delta,zstd"`
		Key       *[]byte   `parquet:"key,optional,zstd"`
		ID        *string   `parquet:"id,optional,zstd"`
		Source    *string   `parquet:"source,optional,dict,zstd"`
		Domain    *string   `parquet:"domain,optional,dict,zstd"`
		Lang      *string   `parquet:"lang,optional,dict,zstd"`
		TS        *int64    `parquet:"ts,optional,timestamp(millisecond),zstd"`
		Text      string    `parquet:"text,zstd"`
		Attrs     *string   `parquet:"attrs,optional,json,zstd"`
	}
	empty, word := "", "x"
	s := NewMem()
	ctx := context.Background()
	var want []row
	for seg := range int64(3) {
		var rows []row
		for o := seg * 4; o < seg*4+4; o++ {
			r := row{Topic: "t", Offset: o, KafkaTS: time.UnixMilli(o).UTC(), Text: "t"}
			switch o % 3 {
			case 0:
				r.ID, r.Domain, r.Key = &empty, &empty, &[]byte{}
			case 1:
				r.ID, r.Domain = &word, &word
			}
			rows = append(rows, r)
		}
		want = append(want, rows...)
		data, err := EncodeRows(schemas.TableRaw, schemas.RawVersion, rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, SegmentKey(schemas.TableRaw, "t", 0, Range{First: seg * 4, Last: seg*4 + 3}), data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Compact(ctx, s, 1<<20); err != nil {
		t.Fatal(err)
	}
	live, _, _ := ListSegments(ctx, s, schemas.TableRaw)
	if len(live) != 1 {
		t.Fatalf("%d segments after compaction, want 1", len(live))
	}
	data, _ := s.Get(ctx, live[0].Key)
	got, err := ReadRows[row](data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		w, g := want[i], got[i]
		if (w.ID == nil) != (g.ID == nil) || (w.Domain == nil) != (g.Domain == nil) || (w.Key == nil) != (g.Key == nil) ||
			(w.ID != nil && *w.ID != *g.ID) {
			t.Fatalf("row %d: id %v domain %v key %v, want %v %v %v", i, g.ID, g.Domain, g.Key, w.ID, w.Domain, w.Key)
		}
	}
}

// crashStore fails every Delete: a compaction that stops after putting its
// merged segment and before deleting the run.
type crashStore struct{ Store }

var errCrash = errors.New("crash")

func (c crashStore) Delete(context.Context, string) error { return errCrash }

// TestCompactCrash stops a compaction between its put and its deletes:
// readers see each record once (the merged segment, not its run), and the
// next compaction deletes the run.
func TestCompactCrash(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	for i := range int64(6) {
		putSpan(t, s, 0, i*10, i*10+9, func(o int64) bool { return o%7 == 0 })
	}
	wantRaw, wantDLQ := readBoth(t, s)
	if _, err := Compact(ctx, crashStore{s}, 1<<20); !errors.Is(err, errCrash) {
		t.Fatalf("Compact: %v, want the crash", err)
	}
	live, sup, err := ListSegments(ctx, s, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].Range != (Range{First: 0, Last: 59}) || len(sup) != 6 {
		t.Fatalf("after the crash: live %v, %d superseded", live, len(sup))
	}
	if r, d := readBoth(t, s); !reflect.DeepEqual(r, wantRaw) || !reflect.DeepEqual(d, wantDLQ) {
		t.Fatalf("readers see %d raw and %d dlq rows after the crash, want %d and %d", len(r), len(d), len(wantRaw), len(wantDLQ))
	}
	st, err := Compact(ctx, s, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted < 6 {
		t.Fatalf("second compaction: %v", st)
	}
	objs, _ := s.List(ctx, "raw/")
	if len(objs) != 1 {
		t.Fatalf("raw holds %d objects after the second compaction, want 1", len(objs))
	}
	if r, d := readBoth(t, s); !reflect.DeepEqual(r, wantRaw) || !reflect.DeepEqual(d, wantDLQ) {
		t.Fatal("rows changed")
	}
}

// cancelStore cancels the compaction's context right after the first
// merged raw segment is put, as the end of an ingest generation would.
type cancelStore struct {
	Store
	cancel context.CancelFunc
}

func (c cancelStore) Put(ctx context.Context, key string, data []byte) error {
	err := c.Store.Put(ctx, key, data)
	if strings.HasPrefix(key, "raw/") {
		c.cancel()
	}
	return err
}

// TestCompactCancelled: a context that ends once the merged segment is put
// does not leave the run beside it, so a plain listing of the table sees
// each offset once.
func TestCompactCancelled(t *testing.T) {
	s := NewMem()
	for i := range int64(6) {
		putSpan(t, s, 0, i*10, i*10+9, nil)
	}
	want, _ := readBoth(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := CompactPartition(ctx, cancelStore{Store: s, cancel: cancel}, "t", 0, 1<<20)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if st.Written != 1 || st.Replaced != 6 {
		t.Fatalf("cancelled compaction: %v, want the merge finished", st)
	}
	objs, _ := s.List(context.Background(), "raw/")
	if len(objs) != 1 {
		t.Fatalf("raw holds %d objects after a cancelled merge, want 1: %v", len(objs), objs)
	}
	if got, _ := readBoth(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("rows changed")
	}
}

// raceStore puts a segment crossing the merged one right after it is put,
// as a concurrent compaction with another view would.
type raceStore struct {
	Store
	cross string
}

func (r *raceStore) Put(ctx context.Context, key string, data []byte) error {
	err := r.Store.Put(ctx, key, data)
	if r.cross != "" && strings.HasPrefix(key, "raw/") {
		cross := r.cross
		r.cross = ""
		if err := r.Store.Put(ctx, cross, data); err != nil {
			return err
		}
	}
	return err
}

// TestCompactRace: a merge that finds another compaction's segment crossing
// its own undoes itself before deleting anything.
func TestCompactRace(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	for i := range int64(4) {
		putSpan(t, s, 0, i*10, i*10+9, nil)
	}
	cross := SegmentKey(schemas.TableRaw, "t", 0, Range{First: 20, Last: 49})
	_, err := Compact(ctx, &raceStore{Store: s, cross: cross}, 1<<20)
	if !errors.Is(err, ErrCompactRace) {
		t.Fatalf("Compact: %v, want ErrCompactRace", err)
	}
	objs, _ := s.List(ctx, "raw/")
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{
		SegmentKey(schemas.TableRaw, "t", 0, Range{First: 0, Last: 9}),
		SegmentKey(schemas.TableRaw, "t", 0, Range{First: 10, Last: 19}),
		SegmentKey(schemas.TableRaw, "t", 0, Range{First: 20, Last: 29}),
		cross,
		SegmentKey(schemas.TableRaw, "t", 0, Range{First: 30, Last: 39}),
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("after the race: %v, want %v", keys, want)
	}
}

// TestCompactOtherVersion leaves segments of another format version alone.
func TestCompactOtherVersion(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	for i := range int64(3) {
		raw, _ := rawRows(0, i*10, i*10+9, nil)
		version := schemas.RawVersion
		if i == 1 {
			version = schemas.RawVersion + 1
		}
		data, err := EncodeRows(schemas.TableRaw, version, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, SegmentKey(schemas.TableRaw, "t", 0, Range{First: i * 10, Last: i*10 + 9}), data); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Compact(ctx, s, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 0 || len(liveRanges(t, s, schemas.TableRaw)[0]) != 3 {
		t.Fatalf("compacted segments of another version: %v", st)
	}
}

// TestListSegmentsOverlap: readers refuse partially overlapping segments,
// naming every pair.
func TestListSegmentsOverlap(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	putSpan(t, s, 0, 0, 9, nil)
	putSpan(t, s, 0, 5, 14, nil)
	putSpan(t, s, 1, 0, 9, nil)
	putSpan(t, s, 1, 3, 12, nil)
	putSpan(t, s, 2, 0, 9, nil)
	_, _, err := ListSegments(ctx, s, schemas.TableRaw)
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "partition=0") || !strings.Contains(err.Error(), "partition=1") {
		t.Fatalf("ListSegments: %v, want overlaps in partitions 0 and 1", err)
	}
	if _, err := ReadTable[schemas.Raw](ctx, s, schemas.TableRaw); !errors.Is(err, ErrOverlap) {
		t.Fatalf("ReadTable: %v, want ErrOverlap", err)
	}
	if _, err := Compact(ctx, s, 1<<20); !errors.Is(err, ErrOverlap) {
		t.Fatalf("Compact: %v, want ErrOverlap", err)
	}
}

// TestCompactEncoderSegments merges segments the Encoder wrote (as ingest
// does), headers and every optional column included: the merged segment
// reads back row for row.
func TestCompactEncoderSegments(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion)
	if err != nil {
		t.Fatal(err)
	}
	rows := sampleRaw(60, 0)
	var want []schemas.Raw
	for _, part := range [][]rawIn{rows[:25], rows[25:]} {
		b := rawBatchOf(part)
		data, err := enc.Encode(b)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		r := Range{First: part[0].offset, Last: part[len(part)-1].offset}
		if err := s.Put(ctx, SegmentKey(schemas.TableRaw, "records", 3, r), data); err != nil {
			t.Fatal(err)
		}
		for _, in := range part {
			want = append(want, in.want())
		}
	}
	st, err := CompactPartition(ctx, s, "records", 3, 1<<20)
	if err != nil || st.Written != 1 {
		t.Fatalf("compaction: %v, %v; want one merge", st, err)
	}
	data, err := s.Get(ctx, SegmentKey(schemas.TableRaw, "records", 3, Range{First: 0, Last: 59}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadRaw(data)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ReadRaw: %d rows, %v", len(got), err)
	}
	for i := range want {
		if !sameRaw(got[i], want[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
