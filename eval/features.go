package eval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/cespare/xxhash/v2"

	"github.com/thresher-ml/thresher/train"
)

// Feature set names, as they appear in Result.Features.
const (
	FeaturesEncoder = "encoder"
	FeaturesRandom  = "random"
	FeaturesTFIDF   = "tfidf"
)

// Features turns texts into feature rows. Transform calls progress (when
// not nil) with the number of texts done since its last call; it must be
// safe for concurrent use.
type Features interface {
	Name() string
	Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error)
}

var (
	_ Features = (*EncoderFeatures)(nil)
	_ Features = (*TFIDF)(nil)
)

// EncoderFeatures embeds texts with a frozen train.Encoder: dense,
// L2-normalised rows of width Dim().
type EncoderFeatures struct {
	name    string
	enc     *train.Encoder
	workers int
}

// NewEncoderFeatures returns the feature set name (FeaturesEncoder or
// FeaturesRandom, say) embedding with enc over workers goroutines
// (GOMAXPROCS when 0).
func NewEncoderFeatures(name string, enc *train.Encoder, workers int) *EncoderFeatures {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &EncoderFeatures{name: name, enc: enc, workers: workers}
}

// NewRandomFeatures returns FeaturesRandom: a freshly initialised encoder
// of the shape cfg describes (a checkpoint's Encoder().Config()), seeded
// with seed, the untrained baseline of the same architecture.
func NewRandomFeatures(cfg train.Config, seed uint64, workers int) (*EncoderFeatures, error) {
	cfg.Seed = seed
	cfg.Workers = 0
	cfg.SetDefaults()
	l, err := train.NewLearner(cfg)
	if err != nil {
		return nil, fmt.Errorf("eval: random encoder: %w", err)
	}
	return NewEncoderFeatures(FeaturesRandom, l.Encoder(), workers), nil
}

// Name returns the feature set's name.
func (f *EncoderFeatures) Name() string { return f.name }

// encodeChunk is the number of texts one goroutine embeds at a time.
const encodeChunk = 512

// Transform embeds texts in chunks shared by the workers.
func (f *EncoderFeatures) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	return embedChunks(ctx, texts, f.enc.Dim(), f.workers, f.enc.Embed, progress)
}

// embedChunks embeds texts with embed (rows of width d) in chunks of
// encodeChunk shared by workers goroutines.
func embedChunks(ctx context.Context, texts []string, d, workers int, embed func([]string) [][]float32, progress func(n int)) (*Matrix, error) {
	m := &Matrix{Rows: len(texts), Cols: d, Dense: make([]float32, len(texts)*d)}
	chunks := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, (len(texts)+encodeChunk-1)/encodeChunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range chunks {
				hi := min(lo+encodeChunk, len(texts))
				for i, v := range embed(texts[lo:hi]) {
					copy(m.Dense[(lo+i)*d:(lo+i+1)*d], v)
				}
				if progress != nil {
					progress(hi - lo)
				}
			}
		}()
	}
	var err error
feed:
	for lo := 0; lo < len(texts); lo += encodeChunk {
		select {
		case chunks <- lo:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DefaultTFIDFBuckets is the default number of hashed TF-IDF columns.
const DefaultTFIDFBuckets = 1 << 18

// TFIDF is the bag-of-words baseline: lower-cased word unigrams and
// bigrams (words are maximal runs of letters and digits), hashed with
// xxhash into Buckets columns; a row is the term counts times
// idf = ln((1+N)/(1+df)) + 1, with N and df counted on the texts it was
// fitted on, then L2-normalised. Sparse rows.
type TFIDF struct {
	buckets int
	idf     []float32
}

// NewTFIDF fits the document frequencies on texts (the task's train
// split); buckets <= 0 means DefaultTFIDFBuckets.
func NewTFIDF(texts []string, buckets int) *TFIDF {
	if buckets <= 0 {
		buckets = DefaultTFIDFBuckets
	}
	df := make([]int32, buckets)
	var cols []int32
	for _, t := range texts {
		cols = termColumns(t, buckets, cols[:0])
		slices.Sort(cols)
		for i, c := range cols {
			if i == 0 || c != cols[i-1] {
				df[c]++
			}
		}
	}
	idf := make([]float32, buckets)
	n := float64(len(texts))
	for c, d := range df {
		idf[c] = float32(math.Log((1+n)/(1+float64(d))) + 1)
	}
	return &TFIDF{buckets: buckets, idf: idf}
}

// Name returns FeaturesTFIDF.
func (f *TFIDF) Name() string { return FeaturesTFIDF }

// Transform returns the texts' TF-IDF rows.
func (f *TFIDF) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	m := &Matrix{Rows: len(texts), Cols: f.buckets, Ptr: make([]int, 1, len(texts)+1)}
	var cols []int32
	for i, t := range texts {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		cols = termColumns(t, f.buckets, cols[:0])
		slices.Sort(cols)
		start := len(m.Idx)
		var ss float64
		for j := 0; j < len(cols); {
			k := j
			for k < len(cols) && cols[k] == cols[j] {
				k++
			}
			v := float32(k-j) * f.idf[cols[j]]
			m.Idx = append(m.Idx, cols[j])
			m.Val = append(m.Val, v)
			ss += float64(v) * float64(v)
			j = k
		}
		if ss > 0 {
			inv := float32(1 / math.Sqrt(ss))
			for j := start; j < len(m.Val); j++ {
				m.Val[j] *= inv
			}
		}
		m.Ptr = append(m.Ptr, len(m.Idx))
		if progress != nil && (i+1)%1024 == 0 {
			progress(1024)
		}
	}
	if progress != nil && len(texts)%1024 != 0 {
		progress(len(texts) % 1024)
	}
	return m, nil
}

// termColumns appends the hashed column of every unigram and bigram of
// text (with repeats) to dst.
func termColumns(text string, buckets int, dst []int32) []int32 {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	for i, w := range words {
		dst = append(dst, int32(xxhash.Sum64String(w)%uint64(buckets)))
		if i > 0 {
			dst = append(dst, int32(xxhash.Sum64String(words[i-1]+" "+w)%uint64(buckets)))
		}
	}
	return dst
}
