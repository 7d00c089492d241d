package train

import "sync"

// Encoder is a frozen copy of a learner's online encoder: the n-gram
// embedding table and the projection MLP. It is safe for concurrent use.
type Encoder struct {
	cfg    Config
	emb    []float32
	online *mlp
	lex    *lexicon // the stream's term statistics when the copy was made

	idfOnce sync.Once
	idf     []float32
}

// Dim is the width of the embeddings.
func (e *Encoder) Dim() int { return e.cfg.OutDim }

// Config returns the configuration of the learner the encoder came from.
func (e *Encoder) Config() Config { return e.cfg }

// Embed returns the L2-normalised embedding of each text.
func (e *Encoder) Embed(texts []string) [][]float32 {
	return embedTexts(&e.cfg, e.emb, e.online, texts)
}

// Encoder returns a frozen copy of the current online encoder.
func (l *Learner) Encoder() *Encoder {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return &Encoder{cfg: l.cfg, emb: append([]float32(nil), l.emb...), online: l.online.clone(), lex: l.lex.clone()}
}

// Embed returns the L2-normalised embedding of each text under the current
// online encoder. It is safe concurrently with Step.
func (l *Learner) Embed(texts []string) [][]float32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return embedTexts(&l.cfg, l.emb, l.online, texts)
}

// embedChunk bounds the rows of one matrix product at inference.
const embedChunk = 256

func embedTexts(c *Config, emb []float32, m *mlp, texts []string) [][]float32 {
	od := c.OutDim
	flat := make([]float32, len(texts)*od)
	var cache mlpCache
	pooledChunks(c, emb, texts, func(lo, n int, x []float32) {
		m.forward(x, n, &cache)
		copy(flat[lo*od:(lo+n)*od], cache.z[:n*od])
	})
	return splitRows(flat, len(texts), od)
}

// pooledChunks featurises texts and mean-pools their rows of emb,
// embedChunk texts at a time, and calls fn with each chunk's first index,
// its number of texts n and their pooled inputs x (n x EmbedDim, reused by
// the next chunk).
func pooledChunks(c *Config, emb []float32, texts []string, fn func(lo, n int, x []float32)) {
	f := newFeaturizer(c)
	d := c.EmbedDim
	var ids []uint32
	x := make([]float32, min(len(texts), embedChunk)*d)
	for lo := 0; lo < len(texts); lo += embedChunk {
		n := min(embedChunk, len(texts)-lo)
		for i := range n {
			ids = f.ids(texts[lo+i], ids[:0])
			pool(x[i*d:(i+1)*d], emb, ids, d)
		}
		fn(lo, n, x[:n*d])
	}
}

// splitRows cuts flat into n rows of width w.
func splitRows(flat []float32, n, w int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*w : (i+1)*w : (i+1)*w]
	}
	return out
}
