package curate

import (
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Benchmarks on the first 20000 records of the real stream (~40 words,
// ~260 bytes each on average). One op is one record; rec/s and MB/s are per
// core except where the name says parallel. Compare runs with
//
//	go test -run '^$' -bench . -benchmem -count 10 ./curate/ > new.txt
//	benchstat old.txt new.txt
//
// and profile with
//
//	go test -run '^$' -bench 'Analyze/cores=1' -cpuprofile cpu.out ./curate/
//	go tool pprof -top cpu.out

var (
	benchOnce  sync.Once
	benchTexts []string
	benchBytes int
)

func benchRecords(b *testing.B) []string {
	benchOnce.Do(func() {
		for _, r := range realRecords(b, 20000) {
			benchTexts = append(benchTexts, r.Text)
			benchBytes += len(r.Text)
		}
	})
	if len(benchTexts) == 0 {
		b.Skip("no real records")
	}
	return benchTexts
}

// report sets the per-record figures of a benchmark whose op is a record.
func report(b *testing.B, texts []string) {
	b.SetBytes(int64(benchBytes / len(texts)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
}

func BenchmarkAnalyze(b *testing.B) {
	texts := benchRecords(b)
	b.Run("cores=1", func(b *testing.B) {
		a := NewAnalyzer(MetricsConfig{})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			a.Analyze(texts[i%len(texts)])
		}
		report(b, texts)
	})
	// Every core with its own Analyzer, as a stage with workers would run.
	b.Run("cores=all", func(b *testing.B) {
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			a := NewAnalyzer(MetricsConfig{})
			for pb.Next() {
				a.Analyze(texts[int(next.Add(1))%len(texts)])
			}
		})
		report(b, texts)
	})
}

func BenchmarkScanPII(b *testing.B) {
	texts := benchRecords(b)
	b.Run("scanner=single-pass", func(b *testing.B) {
		var spans []PIISpan
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			spans = ScanPII(texts[i%len(texts)], spans[:0])
		}
		report(b, texts)
	})
	// The naive way, for comparison: one regular expression per kind.
	b.Run("scanner=regexps", func(b *testing.B) {
		res := []*regexp.Regexp{
			regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
			regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)|\d{2,5})[ .-]?\d{3,4}[ .-]?\d{3,4}`),
			regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b`),
			regexp.MustCompile(`\b(?:\d[ -]?){13,19}\b`),
			regexp.MustCompile(`\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|sk-[A-Za-z0-9_-]{20,}|[A-Za-z0-9+/]{32,})`),
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, re := range res {
				re.FindAllStringIndex(texts[i%len(texts)], -1)
			}
		}
		report(b, texts)
	})
}

func BenchmarkCompressionRatio(b *testing.B) {
	texts := benchRecords(b)
	b.Run("method=estimate", func(b *testing.B) {
		var e lzEstimator
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e.estimate(texts[i%len(texts)])
		}
		report(b, texts)
	})
	// The probe the estimate replaces: compressing with zstd.
	b.Run("method=zstd", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			b.Fatal(err)
		}
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = enc.EncodeAll([]byte(texts[i%len(texts)]), buf[:0])
		}
		report(b, texts)
	})
}

func BenchmarkTargetSimilarity(b *testing.B) {
	texts := benchRecords(b)
	fit := func(buckets int) *Target {
		t := NewTarget(buckets)
		t.FitTarget(texts[:2000])
		for _, s := range texts[:5000] {
			t.Observe(s)
		}
		return t
	}
	for _, buckets := range []int{1 << 16, 1 << 18} {
		// Similarity then Observe, tokenising the text itself.
		b.Run("input=text/buckets="+strconv.Itoa(buckets), func(b *testing.B) {
			t := fit(buckets)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s := texts[i%len(texts)]
				t.Similarity(s)
				t.Observe(s)
			}
			report(b, texts)
		})
	}
	// With the features the Analyzer already has (the stage's path): the
	// cost on top of Analyze.
	b.Run("input=features/buckets=65536", func(b *testing.B) {
		t := fit(1 << 16)
		a := NewAnalyzer(MetricsConfig{})
		feats := make([][]uint64, len(texts))
		for i, s := range texts {
			a.Analyze(s)
			feats[i] = append([]uint64(nil), a.Features()...)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f := feats[i%len(feats)]
			t.SimilarityFeatures(f)
			t.ObserveFeatures(f)
		}
		report(b, texts)
	})
}
