package sampler

import (
	"context"
	"testing"
)

// Compare runs with benchstat:
//
//	go test -run XXX -bench . -count 6 ./sampler/ > new.txt && benchstat old.txt new.txt

// BenchmarkNext makes batches of real curated records with the default
// views, replay and negatives.
func BenchmarkNext(b *testing.B) {
	store, _ := sharedLake(b)
	for _, views := range []bool{true, false} {
		name := "views=on"
		cfg := Config{Seed: 1}
		if !views {
			name, cfg.Strength = "views=off", -1
		}
		b.Run(name, func(b *testing.B) {
			s := newSampler(b, cfg, store)
			next(b, s) // the load
			b.ReportAllocs()
			b.ResetTimer()
			var examples, words int64
			for b.Loop() {
				bt, err := s.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				examples += int64(len(bt.Examples))
				for i := range bt.Examples {
					words += int64(bt.Examples[i].Words)
				}
			}
			b.ReportMetric(float64(examples)/b.Elapsed().Seconds(), "examples/s")
			b.ReportMetric(float64(words)/b.Elapsed().Seconds(), "words/s")
		})
	}
}

// BenchmarkRecord builds the Arrow record of a batch of real records.
func BenchmarkRecord(b *testing.B) {
	store, _ := sharedLake(b)
	s := newSampler(b, Config{Seed: 1}, store)
	bt := next(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := bt.Record()
		rec.Release()
	}
	b.ReportMetric(float64(len(bt.Examples)+len(bt.Negatives))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkFromRecord decodes the Arrow record of a batch.
func BenchmarkFromRecord(b *testing.B) {
	store, _ := sharedLake(b)
	s := newSampler(b, Config{Seed: 1}, store)
	rec := next(b, s).Record()
	defer rec.Release()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := FromRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
