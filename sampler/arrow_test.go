package sampler

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestArrowRoundTrip(t *testing.T) {
	store, _ := sharedLake(t)
	s := newSampler(t, Config{Seed: 21, BatchSize: 64, Negatives: 16, ReplayRatio: 0.25}, store)
	var stream bytes.Buffer
	w := ipc.NewWriter(&stream, ipc.WithSchema(Schema))
	var want []*Batch
	for range 5 {
		b := next(t, s)
		want = append(want, b)
		rec := b.Record()
		if rec.NumRows() != int64(len(b.Examples)+len(b.Negatives)) {
			t.Fatalf("%d rows for %d examples and %d negatives", rec.NumRows(), len(b.Examples), len(b.Negatives))
		}
		got, err := FromRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, got) {
			t.Fatalf("batch %d changed through an Arrow record", b.Seq)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := decodeStream(&stream, maxIPCBody)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("batches changed through an IPC stream")
	}
}

func TestFromRecordRejects(t *testing.T) {
	b := &Batch{Seq: 3, Stage: 1, Competence: 0.5, PlanVersion: 2, Epoch: 1, Examples: []Example{
		{Topic: "t", Text: "a b c", ViewA: "a [MASK] c", MaskedA: []string{"b"}},
		{Topic: "t", Offset: 1, Text: "d e"},
	}}
	rec := b.Record()
	defer rec.Release()
	if got, err := FromRecord(rec); err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	empty := (&Batch{}).Record()
	defer empty.Release()
	// Another schema: the first column dropped.
	cols := rec.Columns()[1:]
	other := array.NewRecordBatch(arrow.NewSchema(Schema.Fields()[1:], nil), cols, rec.NumRows())
	defer other.Release()
	// Batch fields that differ between rows.
	rec.Retain()
	mixed := concat(t, rec, (&Batch{Seq: 4, Examples: []Example{{Text: "x"}}}).Record())
	defer mixed.Release()
	// A negative before an example.
	rec.Retain()
	order := concat(t, (&Batch{Seq: 3, Stage: 1, Competence: 0.5, PlanVersion: 2, Epoch: 1, Negatives: []Example{{Text: "n"}}}).Record(), rec)
	defer order.Release()
	for name, r := range map[string]arrow.RecordBatch{"no rows": empty, "other schema": other, "mixed batches": mixed, "order": order, "nil": nil} {
		if _, err := FromRecord(r); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

// concat joins two batch records (releasing them).
func concat(t *testing.T, a, b arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	defer a.Release()
	defer b.Release()
	cols := make([]arrow.Array, a.NumCols())
	for i := range cols {
		c, err := array.Concatenate([]arrow.Array{a.Column(i), b.Column(i)}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		cols[i] = c
	}
	return array.NewRecordBatch(Schema, cols, a.NumRows()+b.NumRows())
}

// limited yields the first n batches of src, then waits for ctx.
type limited struct {
	mu  sync.Mutex
	src Source
	n   int
}

func (l *limited) Next(ctx context.Context) (*Batch, error) {
	l.mu.Lock()
	if l.n == 0 {
		l.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	l.n--
	l.mu.Unlock()
	return l.src.Next(ctx)
}

func TestServeTwoClients(t *testing.T) {
	store, _ := sharedLake(t)
	cfg := Config{Seed: 23, BatchSize: 32, Negatives: 8}
	const n = 24
	want := batches(t, newSampler(t, cfg, store), n)
	s := newSampler(t, cfg, store)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, &limited{src: s, n: n}, nil) }()
	var (
		mu  sync.Mutex
		got []*Batch
		per [2]int
	)
	reads, stopReads := context.WithTimeout(ctx, 60*time.Second)
	defer stopReads()
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Dial(ctx, ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			for {
				b, err := r.Next(reads)
				if err != nil {
					return // every batch arrived (or the test timed out)
				}
				mu.Lock()
				got = append(got, b)
				per[c]++
				if len(got) == n {
					stopReads()
				}
				mu.Unlock()
				_ = s.Status()
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Seq < got[j].Seq })
	if len(got) != n {
		t.Fatalf("the clients got %d batches, want %d (%v)", len(got), n, per)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("batch %d: got seq %d, or its contents differ from a local sampler's", i, got[i].Seq)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("one client got every batch: %v", per)
	}
}

func TestServeSourceError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	served := make(chan error, 1)
	go func() { served <- Serve(context.Background(), ln, failing{boom}, nil) }()
	r, err := Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(context.Background()); err == nil {
		t.Error("a batch from a failing source")
	}
	if err := <-served; !errors.Is(err, boom) {
		t.Errorf("Serve: %v, want the source's error", err)
	}
}

type failing struct{ err error }

func (f failing) Next(context.Context) (*Batch, error) { return nil, f.err }
