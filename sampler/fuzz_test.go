package sampler

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
)

var fuzzConfig = Config{Seed: 5, Poll: 5 * time.Millisecond, BatchSize: 16, PoolRecords: 120, ReplayPerDomain: 10, Negatives: 4, NegativePool: 40, CurriculumExamples: 64}

// fuzzStore builds a small real curated lake (two windows) for a fuzz
// target.
func fuzzStore(f *testing.F) lake.Store {
	_, store := curatetest.Lake(f, 200, 100)
	return store
}

func fuzzNext(tb testing.TB, s *Sampler) *Batch {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzRestore feeds Restore arbitrary cursors, and the same with a valid
// checksum so the decoder behind it is reached: it must return an error
// or a sampler that makes batches, never panic.
func FuzzRestore(f *testing.F) {
	store := fuzzStore(f)
	cfg := fuzzConfig
	cfg.SetDefaults()
	s, err := New(context.Background(), cfg, store, nil)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 4 {
		c, err := s.Cursor()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
		writeSeed(f, "FuzzRestore", fmt.Sprint("cursor-after-", s.Status().Batches), c)
		for range i * 3 {
			fuzzNext(f, s)
		}
	}
	s.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		try := func(c []byte) {
			r, err := New(context.Background(), cfg, store, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Restore(c); err != nil {
				return
			}
			fuzzNext(t, r)
		}
		try(data)
		if len(data) >= 4 {
			fixed := bytes.Clone(data)
			body := fixed[:len(fixed)-4]
			binary.LittleEndian.PutUint32(fixed[len(fixed)-4:], crc32.Checksum(body, castagnoli))
			try(fixed)
		}
	})
}

// schemaPrefix is the start of every batch stream: the schema message.
func schemaPrefix(tb testing.TB) []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(Schema))
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return bytes.Clone(buf.Bytes()[:buf.Len()-8]) // without the end-of-stream marker
}

// writeSeed writes a seed to testdata/fuzz/<target>/ when
// THRESHER_WRITE_FUZZ_SEEDS is set (to refresh the committed seeds).
func writeSeed(tb testing.TB, target, name string, data []byte) {
	if os.Getenv("THRESHER_WRITE_FUZZ_SEEDS") == "" {
		return
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// realBatch builds a batch of the first real records of the stream, with
// views and a negative, without a lake.
func realBatch(tb testing.TB, n int) *Batch {
	lines := realtest.CorpusLines(tb, n+1)
	cfg := Config{}
	cfg.SetDefaults()
	vw := newViewer(&cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	b := &Batch{Seq: 7, Stage: 2, Competence: 0.75, PlanVersion: 3, Epoch: 1}
	for i, l := range lines {
		var v struct{ Domain, Text string }
		if err := json.Unmarshal(l, &v); err != nil {
			tb.Fatal(err)
		}
		words := strings.Fields(v.Text)
		e := Example{Topic: "records", Partition: int32(i % 2), Offset: int64(i), ClusterID: fmt.Sprintf("records/%d/%d", i%2, i),
			Domain: v.Domain, Text: v.Text, Words: int32(len(words)), Stage: int32(i % 4), Difficulty: float32(i) / 10,
			CharEntropy: 4.5, WordEntropy: 3.25, LengthWords: int32(len(words)), Replay: i%3 == 0}
		if i == n {
			b.Negatives = append(b.Negatives, e)
			continue
		}
		e.ViewA, e.MaskedA = vw.view(rng, words)
		e.ViewB, e.MaskedB = vw.view(rng, words)
		b.Examples = append(b.Examples, e)
	}
	return b
}

// FuzzFromIPC decodes the schema message of a batch stream followed by
// arbitrary bytes, as Remote reads them: errors, never a panic. (The
// schema message itself is left out: arrow-go's schema decoding trusts
// the vector lengths it reads and can be made to allocate without bound.)
func FuzzFromIPC(f *testing.F) {
	prefix := schemaPrefix(f)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(Schema))
	for _, n := range []int{1, 6} {
		rec := realBatch(f, n).Record()
		if err := w.Write(rec); err != nil {
			f.Fatal(err)
		}
		rec.Release()
		if !bytes.HasPrefix(buf.Bytes(), prefix) {
			f.Fatal("the stream does not start with the schema message")
		}
		f.Add(bytes.Clone(buf.Bytes()[len(prefix):]))
		writeSeed(f, "FuzzFromIPC", fmt.Sprint("real-batch-", n), buf.Bytes()[len(prefix):])
	}
	w.Close()
	f.Add(bytes.Clone(buf.Bytes()[len(prefix):]))
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := decodeStream(io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(data)), 1<<20)
		if err != nil {
			return
		}
		for _, b := range bs {
			rec := b.Record()
			got, err := FromRecord(rec)
			rec.Release()
			// %#v, not DeepEqual: garbage may hold NaNs.
			if err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", b) {
				t.Fatalf("a decoded batch does not round-trip: %v", err)
			}
		}
	})
}
