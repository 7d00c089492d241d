package ingest

// Benchmarks on the first 50k records of the real stream. To compare two
// versions:
//
//	go test -run='^$' -bench='Decode|BuildRaw' -count=10 ./ingest/ > old.txt
//	(change the code)
//	go test -run='^$' -bench='Decode|BuildRaw' -count=10 ./ingest/ > new.txt
//	benchstat old.txt new.txt
//
// benchstat is golang.org/x/perf/cmd/benchstat. BenchmarkDecode's
// sub-benchmarks decoder=thresher and decoder=encoding_json show the speed-up
// over encoding/json on the same records.

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/thresher-ml/thresher/internal/realtest"
)

var bench struct {
	once  sync.Once
	lines [][]byte
	bytes int
}

func benchLines(b *testing.B) ([][]byte, int) {
	b.Helper()
	bench.once.Do(func() {
		bench.lines = realtest.CorpusLines(b, 50000)
		for _, l := range bench.lines {
			bench.bytes += len(l)
		}
	})
	if bench.lines == nil {
		b.Skip("no corpus")
	}
	return bench.lines, bench.bytes
}

// BenchmarkDecode decodes one record per operation, cycling through the
// records; MB/s uses their mean size.
func BenchmarkDecode(b *testing.B) {
	lines, size := benchLines(b)
	run := func(b *testing.B, decode func([]byte) bool) {
		b.SetBytes(int64(size / len(lines)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if !decode(lines[i%len(lines)]) {
				b.Fatalf("record %d rejected", i%len(lines))
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
	}
	b.Run("decoder=thresher", func(b *testing.B) {
		d := NewDecoder(DecoderConfig{})
		run(b, func(v []byte) bool {
			_, reason := d.Decode(v)
			return reason == ""
		})
	})
	b.Run("decoder=encoding_json", func(b *testing.B) {
		var rec jsonRecord
		run(b, func(v []byte) bool {
			rec = jsonRecord{}
			return json.Unmarshal(v, &rec) == nil && rec.Text != ""
		})
	})
}

// jsonRecord is what encoding/json decodes into for comparison.
type jsonRecord struct {
	Text   string          `json:"text"`
	ID     string          `json:"id"`
	Source string          `json:"source"`
	Domain string          `json:"domain"`
	Lang   string          `json:"lang"`
	TS     json.RawMessage `json:"ts"`
}

// BenchmarkBuildRaw decodes the 50k records into a raw-table batch per
// operation: Decode, RawBuilder.Append, NewRecordBatch.
func BenchmarkBuildRaw(b *testing.B) {
	lines, size := benchLines(b)
	raw := NewRawBuilder(memory.DefaultAllocator)
	d := NewDecoder(DecoderConfig{})
	ts := time.Now()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for i, l := range lines {
			rec, reason := d.Decode(l)
			if reason != "" {
				b.Fatalf("record %d rejected: %s", i, reason)
			}
			raw.Append(Meta{Topic: "stream", Partition: 0, Offset: int64(i), Timestamp: ts}, rec)
		}
		raw.NewRecordBatch().Release()
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "rec/s")
}
