package eval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/thresher-ml/thresher/train"
)

// Feature set names, as they appear in Result.Features.
const (
	FeaturesEncoder = "encoder"
	FeaturesRandom  = "random"
	FeaturesTFIDF   = "tfidf"
	FeaturesHybrid  = "hybrid"
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
	err := forChunks(ctx, len(texts), workers, func(lo, hi int) {
		for i, v := range embed(texts[lo:hi]) {
			copy(m.Dense[(lo+i)*d:(lo+i+1)*d], v)
		}
	}, progress)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// forChunks calls fn on [lo, hi) chunks of encodeChunk of n items, shared
// by workers goroutines, and progress (when not nil) after each.
func forChunks(ctx context.Context, n, workers int, fn func(lo, hi int), progress func(n int)) error {
	chunks := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, (n+encodeChunk-1)/encodeChunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range chunks {
				hi := min(lo+encodeChunk, n)
				fn(lo, hi)
				if progress != nil {
					progress(hi - lo)
				}
			}
		}()
	}
	var err error
feed:
	for lo := 0; lo < n; lo += encodeChunk {
		select {
		case chunks <- lo:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	return err
}

// TFIDF is the bag-of-words baseline, scikit-learn's
// TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True): the terms are
// train.Terms (lower-cased tokens of two or more letters, digits or
// underscores, and adjacent pairs of them), the vocabulary is every term of
// the texts it was fitted on (exact: 64-bit term hashes, no buckets); a row
// is 1 + ln(tf) times idf = ln((1+N)/(1+df)) + 1 (N and df counted on the
// fitted texts), L2-normalised. Terms outside the vocabulary are ignored.
// Sparse rows.
type TFIDF struct {
	vocab map[uint64]int32
	idf   []float32
}

// NewTFIDF fits the vocabulary and document frequencies on texts (the
// task's train split).
func NewTFIDF(texts []string) *TFIDF {
	vocab := map[uint64]int32{}
	var df []int32
	var hs []uint64
	var cols []int32
	for _, t := range texts {
		hs = train.Terms(t, hs[:0])
		cols = cols[:0]
		for _, h := range hs {
			c, ok := vocab[h]
			if !ok {
				c = int32(len(df))
				vocab[h] = c
				df = append(df, 0)
			}
			cols = append(cols, c)
		}
		slices.Sort(cols)
		for i, c := range cols {
			if i == 0 || c != cols[i-1] {
				df[c]++
			}
		}
	}
	idf := make([]float32, len(df))
	n := float64(len(texts))
	for c, d := range df {
		idf[c] = float32(math.Log((1+n)/(1+float64(d))) + 1)
	}
	return &TFIDF{vocab: vocab, idf: idf}
}

// Name returns FeaturesTFIDF.
func (f *TFIDF) Name() string { return FeaturesTFIDF }

// Vocabulary is the number of terms (columns).
func (f *TFIDF) Vocabulary() int { return len(f.idf) }

// Transform returns the texts' TF-IDF rows.
func (f *TFIDF) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	m := &Matrix{Rows: len(texts), Cols: max(len(f.idf), 1), Ptr: make([]int, 1, len(texts)+1)}
	var hs []uint64
	var cols []int32
	for i, t := range texts {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		hs = train.Terms(t, hs[:0])
		cols = cols[:0]
		for _, h := range hs {
			if c, ok := f.vocab[h]; ok {
				cols = append(cols, c)
			}
		}
		slices.Sort(cols)
		start := len(m.Idx)
		var ss float64
		for j := 0; j < len(cols); {
			k := j
			for k < len(cols) && cols[k] == cols[j] {
				k++
			}
			v := float32(1+math.Log(float64(k-j))) * f.idf[cols[j]]
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

// HybridFeatures is the encoder's hybrid representation
// (train.Encoder.EmbedHybrid): the dense embedding joined with a TF-IDF
// vector over the term statistics of the stream the encoder was trained
// on (no statistics of the task). Sparse rows of width
// train.Encoder.HybridDim(layer): the layer's dense columns, then the
// lexical ones.
type HybridFeatures struct {
	name    string
	enc     *train.Encoder
	layer   string
	dim     int
	workers int
}

var _ Features = (*HybridFeatures)(nil)

// NewHybridFeatures returns the feature set name (FeaturesHybrid, say)
// of enc, its dense part from layer (train.DefaultLayer, say), over
// workers goroutines (GOMAXPROCS when 0); an unknown layer is an error.
func NewHybridFeatures(name string, enc *train.Encoder, layer string, workers int) (*HybridFeatures, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	dim, err := enc.HybridDim(layer)
	if err != nil {
		return nil, err
	}
	return &HybridFeatures{name: name, enc: enc, layer: layer, dim: dim, workers: workers}, nil
}

// Name returns the feature set's name.
func (f *HybridFeatures) Name() string { return f.name }

// Transform returns the texts' hybrid rows.
func (f *HybridFeatures) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	rows := make([]train.Hybrid, len(texts))
	err := forChunks(ctx, len(texts), f.workers, func(lo, hi int) {
		hs, _ := f.enc.EmbedHybrid(texts[lo:hi], f.layer) // the layer was checked by NewHybridFeatures
		copy(rows[lo:hi], hs)
	}, progress)
	if err != nil {
		return nil, err
	}
	od := int32(f.dim - f.enc.Config().LexBuckets)
	m := &Matrix{Rows: len(texts), Cols: f.dim, Ptr: make([]int, 1, len(texts)+1)}
	for _, r := range rows {
		for j, v := range r.Dense {
			m.Idx = append(m.Idx, int32(j))
			m.Val = append(m.Val, v)
		}
		for j, c := range r.Lex.Idx {
			m.Idx = append(m.Idx, od+c)
			m.Val = append(m.Val, r.Lex.Val[j])
		}
		m.Ptr = append(m.Ptr, len(m.Idx))
	}
	return m, nil
}
