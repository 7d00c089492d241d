package lake

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/thresher-ml/thresher/schemas"
)

// Encoding raw segments of real records, as ingest does. Compare runs with
//
//	go test -run '^$' -bench 'EncodeSegment' -count 10 ./internal/lake/ | tee new.txt
//	benchstat old.txt new.txt
//
// rec/s and MB/s (of text bytes, the bulk of the input) are the throughput;
// bytes/rec is the size of the Parquet file per record.
func BenchmarkEncodeSegment(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			benchEncode(b, n)
		})
	}
}

// BenchmarkEncodeTuning measures the choices behind the Encoder defaults on
// 50,000 real records, one knob at a time away from the defaults
// (zstd=fastest/page=1MiB/rowgroup=8MiB/workers=GOMAXPROCS):
//
//	go test -run '^$' -bench 'EncodeTuning' -count 6 ./internal/lake/ | tee tuning.txt
//	benchstat -col /zstd tuning.txt
func BenchmarkEncodeTuning(b *testing.B) {
	levels := map[string]zstd.Level{"fastest": zstd.SpeedFastest, "default": zstd.SpeedDefault, "better": zstd.SpeedBetterCompression}
	type knobs struct {
		zstd              string
		pageKiB, groupMiB int
		workers           int
	}
	d := knobs{"fastest", DefaultPageSize >> 10, DefaultRowGroupBytes >> 20, runtime.GOMAXPROCS(0)}
	var runs []knobs
	for _, z := range []string{"fastest", "default", "better"} {
		k := d
		k.zstd = z
		runs = append(runs, k)
	}
	for _, p := range []int{256, 4096} {
		k := d
		k.pageKiB = p
		runs = append(runs, k)
	}
	for _, g := range []int{8, 16, 64} { // 64 MiB: one row group per segment
		for _, w := range []int{1, 2} {
			k := d
			k.groupMiB, k.workers = g, w
			if k != d {
				runs = append(runs, k)
			}
		}
	}
	for _, k := range runs {
		name := fmt.Sprintf("zstd=%s/page=%dKiB/rowgroup=%dMiB/workers=%d", k.zstd, k.pageKiB, k.groupMiB, k.workers)
		b.Run(name, func(b *testing.B) {
			benchEncode(b, 50_000, WithZstdLevel(levels[k.zstd]), WithPageSize(k.pageKiB<<10),
				WithRowGroupBytes(k.groupMiB<<20), WithConcurrency(k.workers))
		})
	}
}

func benchEncode(b *testing.B, n int, opts ...EncoderOption) {
	recs := loadCorpus(b, n)
	rec, textBytes := corpusBatch(recs)
	defer rec.Release()
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var size int
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		data, err := enc.Encode(rec)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		size = len(data)
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(len(recs))*float64(b.N)/sec, "rec/s")
	b.ReportMetric(float64(textBytes)*float64(b.N)/sec/1e6, "MB/s")
	b.ReportMetric(float64(size)/float64(len(recs)), "bytes/rec")
	// CPU time (all threads) per op: what the encoding costs, less disturbed
	// than wall time when other processes share the machine.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
