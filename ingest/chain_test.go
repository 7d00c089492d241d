package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// testPartition returns partition 0 of topic "t" of a member writing to
// store, with no consumer group (commits skip the group offset).
func testPartition(t *testing.T, store lake.Store) *partition {
	t.Helper()
	cfg := Config{Brokers: []string{"127.0.0.1:9"}, Topics: []string{"t"}, Group: "g", Lake: "mem"}
	cfg.SetDefaults()
	off := Duration(0)
	cfg.CompactInterval = &off
	in, err := New(cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{in: in, topic: "t", id: 0}
	if p.rawEnc, err = lake.NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion); err != nil {
		t.Fatal(err)
	}
	if p.dlqEnc, err = lake.NewEncoder[schemas.DLQ](schemas.TableDLQ, schemas.DLQVersion); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpan returns a span of offsets first..last, every tenth malformed.
func testSpan(first, last int64) *span {
	raw, dlq := NewRawBuilder(memory.DefaultAllocator), NewDLQBuilder(memory.DefaultAllocator)
	defer raw.Release()
	defer dlq.Release()
	reasons := map[string]int64{}
	for o := first; o <= last; o++ {
		m := Meta{Topic: "t", Offset: o, Timestamp: time.UnixMilli(o)}
		if o%10 == 5 {
			dlq.Append(m, []byte("{"), schemas.ReasonInvalidJSON)
			reasons[schemas.ReasonInvalidJSON]++
			continue
		}
		raw.Append(m, Record{Text: []byte(fmt.Sprint("text ", o))})
	}
	s := &span{first: first, last: last, raw: raw.NewRecordBatch(), dlqReasons: reasons, bytes: last - first + 1}
	if dlq.Len() > 0 {
		s.dlq = dlq.NewRecordBatch()
	}
	return s
}

// commitSpan commits a span as the committer goroutine does.
func commitSpan(p *partition, s *span) error {
	defer s.release()
	return p.commit(context.Background(), s)
}

func segmentRanges(t *testing.T, store lake.Store, table string) []lake.Range {
	t.Helper()
	live, sup, err := lake.PartitionSegments(context.Background(), store, table, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sup) > 0 {
		t.Fatalf("%s: superseded %v", table, sup)
	}
	var out []lake.Range
	for _, sg := range live {
		out = append(out, sg.Range)
	}
	return out
}

// checkOffsets reads raw and dlq back and checks that they hold offsets
// first..last once each, every row within its segment's range.
func checkOffsets(t *testing.T, store lake.Store, first, last int64) {
	t.Helper()
	ctx := context.Background()
	seen := map[int64]int{}
	for _, table := range []string{schemas.TableRaw, schemas.TableDLQ} {
		live, _, err := lake.PartitionSegments(ctx, store, table, "t", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range live {
			data, err := store.Get(ctx, sg.Key)
			if err != nil {
				t.Fatal(err)
			}
			var offs []int64
			if table == schemas.TableRaw {
				rows, err := lake.ReadRows[schemas.Raw](data)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					offs = append(offs, r.Offset)
				}
			} else {
				rows, err := lake.ReadRows[schemas.DLQ](data)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					offs = append(offs, r.Offset)
				}
			}
			for _, o := range offs {
				if o < sg.Range.First || o > sg.Range.Last {
					t.Errorf("%s holds offset %d", sg.Key, o)
				}
				seen[o]++
			}
		}
	}
	for o := first; o <= last; o++ {
		if seen[o] != 1 {
			t.Errorf("offset %d is in the lake %d times", o, seen[o])
		}
	}
	if len(seen) != int(last-first+1) {
		t.Errorf("the lake holds %d offsets, want %d", len(seen), last-first+1)
	}
}

// TestCommitFollowsClaims: a member that takes a partition over while an
// earlier holder's claimed span is in flight cuts its segments exactly
// along that claim and its own takeover claim, joining spans that fall
// short of a claim and splitting spans that run past it.
func TestCommitFollowsClaims(t *testing.T) {
	ctx := context.Background()
	store := lake.NewMem()
	// The earlier holder committed 0-99 and claimed 100-149, then paused.
	old := testPartition(t, store)
	old.owner, old.point = "old", 0
	if err := commitSpan(old, testSpan(0, 99)); err != nil {
		t.Fatal(err)
	}
	if err := lake.PutClaim(ctx, store, "t", 0, lake.Claim{Range: lake.Range{First: 100, Last: 149}, Owner: "old"}); err != nil {
		t.Fatal(err)
	}
	p := testPartition(t, store)
	start, err := p.resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if start != 100 || len(p.cuts) != 2 || p.cuts[1].Range != (lake.Range{First: 150, Last: 150}) {
		t.Fatalf("resume at %d with cuts %v", start, p.cuts)
	}
	// Spans as the reader cut them: 100-129 falls short of the claim,
	// 130-200 runs past it and past the takeover.
	for _, s := range [][2]int64{{100, 129}, {130, 200}, {201, 230}} {
		if err := commitSpan(p, testSpan(s[0], s[1])); err != nil {
			t.Fatal(err)
		}
	}
	want := []lake.Range{{First: 0, Last: 99}, {First: 100, Last: 149}, {First: 150, Last: 150}, {First: 151, Last: 200}, {First: 201, Last: 230}}
	if got := segmentRanges(t, store, schemas.TableRaw); !slices.Equal(got, want) {
		t.Fatalf("raw segments %v, want %v", got, want)
	}
	checkOffsets(t, store, 0, 230)
	// The paused holder wakes and writes the span it had claimed: the
	// same key, already there; then its next span is fenced.
	old.point = 100
	if err := commitSpan(old, testSpan(100, 149)); err != nil {
		t.Fatalf("the claimed span, written again: %v", err)
	}
	if err := commitSpan(old, testSpan(150, 170)); !errors.Is(err, ErrFenced) {
		t.Fatalf("the paused holder's next span: %v, want ErrFenced", err)
	}
	checkOffsets(t, store, 0, 230)
	if p.in.records.Load()+p.in.dlq.Load() != 131 {
		t.Fatalf("the new holder counted %d records, want 131", p.in.records.Load()+p.in.dlq.Load())
	}
}

// TestCommitFenced: once another member takes the partition over, the
// member's next commit writes nothing, reports ErrFenced and stops the
// partition's reader.
func TestCommitFenced(t *testing.T) {
	ctx := context.Background()
	store := lake.NewMem()
	a := testPartition(t, store)
	if err := lake.PutClaim(ctx, store, "t", 0, lake.Claim{Range: lake.Range{First: 0, Last: 9}, Owner: "first"}); err != nil {
		t.Fatal(err)
	}
	a.owner, a.point = "a", 10
	stopped := false
	a.stop = func() { stopped = true }
	if err := commitSpan(a, testSpan(10, 49)); err != nil {
		t.Fatal(err)
	}
	// b resumes where the lake ends and takes over.
	if _, err := lake.Takeover(ctx, store, "t", 0, 50, "b"); err != nil {
		t.Fatal(err)
	}
	err := commitSpan(a, testSpan(50, 80))
	var ce *lake.ClaimedError
	if !errors.Is(err, ErrFenced) || !errors.As(err, &ce) || ce.Held.Owner != "b" {
		t.Fatalf("commit after the takeover: %v, want ErrFenced naming b", err)
	}
	if !stopped {
		t.Fatal("the fenced partition's reader was not stopped")
	}
	if got := segmentRanges(t, store, schemas.TableRaw); !slices.Equal(got, []lake.Range{{First: 10, Last: 49}}) {
		t.Fatalf("raw segments %v", got)
	}
}

// TestCommitCarryDropped: a span that falls short of a claim is held, not
// written, and dropped when the partition ends; the claim's range stays for
// the next holder.
func TestCommitCarryDropped(t *testing.T) {
	store := lake.NewMem()
	p := testPartition(t, store)
	p.owner, p.point = "p", 0
	p.cuts = []lake.Claim{{Range: lake.Range{First: 0, Last: 99}, Owner: "other"}}
	if err := commitSpan(p, testSpan(0, 49)); err != nil {
		t.Fatal(err)
	}
	if got := segmentRanges(t, store, schemas.TableRaw); len(got) != 0 {
		t.Fatalf("segments %v written before the claim's end", got)
	}
	if p.carry == nil || p.carry.first != 0 || p.carry.last != 49 {
		t.Fatalf("carry %+v", p.carry)
	}
	p.carry.release()
}
