package dedup

import (
	"encoding/json"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// Benchmarks on the real stream (the first 50,000 records; BenchmarkIndexFill
// all of it). Compare runs with benchstat (golang.org/x/perf/cmd/benchstat):
//
//	go test -run '^$' -bench 'IndexAdd|Normalize|Signature' -count 10 ./dedup/ | tee new.txt
//	go test -run '^$' -bench IndexFill -benchtime 1x -count 5 ./dedup/ | tee -a new.txt
//	benchstat old.txt new.txt
//
// and profile with
//
//	go test -run '^$' -bench IndexFill -benchtime 1x -cpuprofile cpu.out -o dedup.test ./dedup/
//	go tool pprof -top -cum -focus 'Index..Add$' dedup.test cpu.out
//
// Metrics beyond ns/op: rec/s (records a second on one goroutine), MB/s (of
// input text), B/rec (index memory per distinct text remembered, from
// Stats), verified/rec (LSH candidates checked per record).

const benchRecords = 50_000

var streamTexts []string

func loadStream(b *testing.B) []string {
	b.Helper()
	if streamTexts != nil {
		return streamTexts
	}
	streamTexts = corpusTexts(b, benchRecords)
	return streamTexts
}

// corpusTexts returns the texts of the first n records (0: all) of the
// real stream.
func corpusTexts(b *testing.B, n int) []string {
	b.Helper()
	lines := realtest.CorpusLines(b, n)
	texts := make([]string, len(lines))
	for i, l := range lines {
		var r struct{ Text string }
		if err := json.Unmarshal(l, &r); err != nil {
			b.Fatal(err)
		}
		texts[i] = r.Text
	}
	return texts
}

func meanBytes(texts []string) int64 {
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	return int64(n / len(texts))
}

// BenchmarkIndexAdd adds the stream record by record to an index that
// starts empty every 50,000 records: normalisation, signature, exact and
// LSH lookups, verification and insertion.
func BenchmarkIndexAdd(b *testing.B) {
	texts := loadStream(b)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"config=default", Config{}},
		{"config=bands20xrows3", Config{Bands: 20, Rows: 3}},
		{"config=punct-keep", Config{Punctuation: PunctKeep}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(meanBytes(texts))
			b.ReportAllocs()
			var ix *Index
			var st Stats // of the last full index
			var err error
			for i := 0; i < b.N; i++ {
				j := i % len(texts)
				if j == 0 {
					b.StopTimer()
					if ix != nil {
						st = ix.Stats()
					}
					if ix, err = NewIndex(c.cfg); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				ix.Add(RecordID{Topic: "stream", Offset: int64(j)}, texts[j])
			}
			if st.Records == 0 {
				st = ix.Stats()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
			b.ReportMetric(st.BytesPerRecord, "B/rec")
			b.ReportMetric(float64(st.Verified)/float64(st.Added), "verified/rec")
			if b.N >= len(texts) {
				b.Logf("%d records: %+v", len(texts), st)
			}
		})
	}
}

// BenchmarkNormalize normalises the stream record by record; text=ascii
// and text=other split it by the path Normalize takes (about 4% of records
// hold non-ASCII characters and go through NFKC).
func BenchmarkNormalize(b *testing.B) {
	texts := loadStream(b)
	var ascii, other []string
	for _, t := range texts {
		if isASCII(t) {
			ascii = append(ascii, t)
		} else {
			other = append(other, t)
		}
	}
	for _, c := range []struct {
		name  string
		p     PunctPolicy
		texts []string
	}{
		{"punct=strip/text=all", PunctStrip, texts},
		{"punct=keep/text=all", PunctKeep, texts},
		{"punct=strip/text=ascii", PunctStrip, ascii},
		{"punct=strip/text=other", PunctStrip, other},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(meanBytes(c.texts))
			b.ReportAllocs()
			var n normalizer
			var buf []byte
			for i := 0; i < b.N; i++ {
				buf = n.append(buf[:0], c.texts[i%len(c.texts)], c.p)
			}
		})
	}
}

// BenchmarkSignature signs the stream record by record: normalisation,
// shingle hashes, bottom-k sketch, MinHash values and band keys.
func BenchmarkSignature(b *testing.B) {
	texts := loadStream(b)
	s, err := NewSigner(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(meanBytes(texts))
	b.ReportAllocs()
	var sig Signature
	for i := 0; i < b.N; i++ {
		s.Sign(&sig, texts[i%len(texts)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
}

// BenchmarkIndexFill fills one fresh index with the whole real stream
// (378,517 records) per op: the cost at a realistic index size, where the
// tables no longer fit in cache. Run it with -benchtime 1x.
func BenchmarkIndexFill(b *testing.B) {
	texts := corpusTexts(b, 0)
	b.Run("records=all", func(b *testing.B) {
		b.SetBytes(meanBytes(texts) * int64(len(texts)))
		var st Stats
		for i := 0; i < b.N; i++ {
			ix, err := NewIndex(Config{})
			if err != nil {
				b.Fatal(err)
			}
			for j, t := range texts {
				ix.Add(RecordID{Topic: "stream", Offset: int64(j)}, t)
			}
			st = ix.Stats()
		}
		b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "rec/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(texts)), "ns/rec")
		b.ReportMetric(st.BytesPerRecord, "B/rec")
		b.ReportMetric(float64(st.Verified)/float64(st.Added), "verified/rec")
		b.Logf("%+v", st)
	})
}
