package train

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Benchmarks on the real stream (views made here), default dimensions;
// tokens are whitespace words of the records' source texts, once per
// example:
//
//	go test -run '^$' -bench . -benchtime 20x ./train/
//
// compare runs with benchstat.
func BenchmarkStep(b *testing.B) {
	const batch = 256
	ex, _, words := realExamples(b, 40*batch, 1)
	for _, q := range []int{-1, 1024, 4096, 16384} {
		name := q
		if q < 0 {
			name = 0
		}
		b.Run(fmt.Sprintf("queue=%d", name), func(b *testing.B) {
			l, err := NewLearner(Config{QueueSize: q, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			// Fill the queue and warm the buffers.
			for i := 0; i*batch < max(q, 0)+batch; i++ {
				l.Step(ex[(i%40)*batch : (i%40+1)*batch])
			}
			tokens := 0
			b.ReportAllocs()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bt := ex[(i%40)*batch : (i%40+1)*batch]
				l.Step(bt)
			}
			b.StopTimer()
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(b.N*batch)/(cpuSeconds()-cpu0), "examples/cpu-s")
			for i := 0; i < b.N; i++ {
				for _, w := range words[(i%40)*batch : (i%40+1)*batch] {
					tokens += w
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*batch)/s, "examples/s")
			b.ReportMetric(float64(tokens)/s, "tokens/s")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
		})
	}
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func BenchmarkEmbed(b *testing.B) {
	_, texts, counts := realExamples(b, 2048, 1)
	words := 0
	for _, w := range counts {
		words += w
	}
	l, err := NewLearner(Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Embed(texts)
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*len(texts))/s, "texts/s")
	b.ReportMetric(float64(b.N*words)/s, "tokens/s")
}

// BenchmarkQueueSize measures what the momentum queue buys: the same
// examples (steps x 256 records of the real stream, default dimensions)
// trained with queues of 0, 1k, 4k and 16k keys, then scored on held-out
// records (view retrieval accuracy among 1024, alignment, uniformity) and
// on the near-duplicate pairs (mean cosine of positives minus random).
//
// It trains four models (minutes), so it runs only when asked:
//
//	THRESHER_QUEUE_BENCH=1 go test -run '^$' -bench QueueSize -benchtime 1x ./train/
func BenchmarkQueueSize(b *testing.B) {
	if os.Getenv("THRESHER_QUEUE_BENCH") != "1" {
		b.Skip("set THRESHER_QUEUE_BENCH=1 to run (trains four models)")
	}
	const batch, steps, heldN = 256, 200, 1024
	ex, _, _ := realExamples(b, batch*steps/2+heldN, 2)
	train, held := ex[:len(ex)-heldN], ex[len(ex)-heldN:]
	pos, neg := readPairs(b)
	for _, q := range []int{-1, 1024, 4096, 16384} {
		b.Run(fmt.Sprintf("queue=%d", max(q, 0)), func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				l, err := NewLearner(Config{QueueSize: q, Seed: 1, WarmupSteps: 50, DecaySteps: 2000})
				if err != nil {
					b.Fatal(err)
				}
				for s := 0; s < steps; s++ {
					i := (s * batch) % (len(train) - batch + 1)
					l.Step(train[i : i+batch])
				}
				_, acc := viewRetrieval(l, held, 0.1)
				h := l.Health()
				b.ReportMetric(acc, "heldout_acc")
				b.ReportMetric(meanCos(l, pos)-meanCos(l, neg), "neardup_gap")
				b.ReportMetric(h.Alignment, "align")
				b.ReportMetric(h.Uniformity, "uniform")
				b.ReportMetric(h.RankMe, "rankme")
			}
			b.ReportMetric(float64(b.N*steps*batch)/b.Elapsed().Seconds(), "examples/s")
		})
	}
}
