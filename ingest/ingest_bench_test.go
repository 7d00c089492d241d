package ingest_test

import (
	"fmt"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// BenchmarkIngestEndToEnd consumes the real stream from the embedded broker
// over TCP into a fresh Parquet lake: fetch, decode, Arrow batches, zstd
// Parquet, atomic commits. rec/s is over the member's active time (first
// fetch to last commit), so it leaves out the group join and the idle wait.
//
//	go test -run '^$' -bench IngestEndToEnd -benchtime 3x ./ingest/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkIngestEndToEnd(b *testing.B) {
	for _, n := range []int{50_000, 0} {
		lines := realtest.CorpusLines(b, n)
		name := fmt.Sprintf("records=%d", len(lines))
		b.Run(name, func(b *testing.B) {
			const topic, parts = "bench", 4
			br := startBroker(b, topic, parts)
			produce(b, br.Addr(), topic, lines, nil)
			var bytes int64
			for _, l := range lines {
				bytes += int64(len(l))
			}
			b.ReportAllocs()
			b.ResetTimer()
			var active float64
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				cfg := testConfig(br.Addr(), topic, dir)
				cfg.Group = fmt.Sprintf("bench-%d", i)
				sum, err := runIngest(b, cfg, openLake(b, dir), nil)
				if err != nil {
					b.Fatal(err)
				}
				if sum.Records != int64(len(lines)) {
					b.Fatalf("%d records, want %d", sum.Records, len(lines))
				}
				active += sum.Active.Seconds()
			}
			b.ReportMetric(float64(len(lines))*float64(b.N)/active, "rec/s")
			b.ReportMetric(float64(bytes)*float64(b.N)/active/1e6, "MB/s")
		})
	}
}
