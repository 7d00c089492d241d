package train

// Encoder is a frozen copy of a learner's online encoder: the n-gram
// embedding table and the projection MLP. It is safe for concurrent use.
type Encoder struct {
	cfg    Config
	emb    []float32
	online *mlp
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
	return &Encoder{cfg: l.cfg, emb: append([]float32(nil), l.emb...), online: l.online.clone()}
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
	out := make([][]float32, len(texts))
	if len(texts) == 0 {
		return out
	}
	f := newFeaturizer(c)
	d, od := c.EmbedDim, c.OutDim
	flat := make([]float32, len(texts)*od)
	var ids []uint32
	var cache mlpCache
	x := make([]float32, min(len(texts), embedChunk)*d)
	for lo := 0; lo < len(texts); lo += embedChunk {
		hi := min(lo+embedChunk, len(texts))
		for i := lo; i < hi; i++ {
			ids = f.ids(texts[i], ids[:0])
			pool(x[(i-lo)*d:(i-lo+1)*d], emb, ids, d)
		}
		m.forward(x, hi-lo, &cache)
		copy(flat[lo*od:hi*od], cache.z[:(hi-lo)*od])
	}
	for i := range out {
		out[i] = flat[i*od : (i+1)*od : (i+1)*od]
	}
	return out
}
