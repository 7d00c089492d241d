package curate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// BenchmarkCurate runs the whole curate stage over real raw segments in an
// in-memory lake: read Parquet, audit, dedup, difficulty, write the four
// tables and the state, in default windows of 100k records (one window for
// 100k, two for 200k, so that the growth of the state snapshot shows). It reports
// records/s and MB/s of text.
//
//	go test -run '^$' -bench Curate -benchtime 3x -cpuprofile cpu.out ./curate/ | tee new.txt
//	benchstat old.txt new.txt; go tool pprof -top curate.test cpu.out
func BenchmarkCurate(b *testing.B) {
	for _, n := range []int{100_000, 200_000} {
		lines := realtest.CorpusLines(b, n)
		var bytes int64
		for _, l := range lines {
			bytes += int64(len(l))
		}
		b.Run(fmt.Sprintf("records=%d", len(lines)), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				store := lake.NewMem()
				writeRaw(b, store, lines, 4, 10_000)
				cfg := curate.Config{Lake: "mem", ExitOnIdle: 1} // the default window: 100k records
				cfg.SetDefaults()
				st, err := curate.New(context.Background(), cfg, store, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := st.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "rec/s")
			b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}
