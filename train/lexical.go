package train

import (
	"math"
	"slices"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// The lexical channel: term statistics of the stream the learner has seen,
// and the hybrid representation built from them. See the package
// documentation (Lexical channel and hybrid features).

// DefaultLexBuckets is the default number of hashed lexical term columns.
const DefaultLexBuckets = 1 << 20

const saltLex = 0x27d4eb2f165667c5

// Terms appends the 64-bit hashes of text's lexical terms to dst: its
// tokens and each pair of adjacent tokens. A token is a maximal run of
// letters, digits, marks and underscores, lower-cased, of at least two
// runes (scikit-learn's default token pattern `(?u)\b\w\w+\b`); a pair is
// formed after single-rune runs are dropped, as scikit-learn forms its
// bigrams.
func Terms(text string, dst []uint64) []uint64 {
	var buf [64]byte
	tok := buf[:0]
	var prev uint64
	have := false
	runes := 0
	flush := func() {
		if runes >= 2 {
			h := xxhash.Sum64(tok)
			dst = append(dst, h)
			if have {
				dst = append(dst, mix64(prev*31+h)^saltLex)
			}
			prev, have = h, true
		}
		tok, runes = tok[:0], 0
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
				tok = append(tok, c)
				runes++
			case 'A' <= c && c <= 'Z':
				tok = append(tok, c+'a'-'A')
				runes++
			default:
				flush()
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
			tok = utf8.AppendRune(tok, unicode.ToLower(r))
			runes++
		} else {
			flush()
		}
	}
	flush()
	return dst
}

// lexicon counts, per hashed term column, the texts holding the term
// (document frequency), over every text the learner has stepped
// (Example.Text). Counts are integers added atomically, so they do not
// depend on the order or the workers.
type lexicon struct {
	docs atomic.Uint64
	df   []uint32
}

func newLexicon(buckets int) *lexicon { return &lexicon{df: make([]uint32, buckets)} }

// lexColumn maps a term hash onto one of buckets columns.
func lexColumn(h uint64, buckets int) uint32 { return fastRange(mix64(h^saltLex), buckets) }

// add counts one text; cols is scratch, returned for reuse.
func (x *lexicon) add(text string, hs []uint64, cols []uint32) ([]uint64, []uint32) {
	hs = Terms(text, hs[:0])
	cols = cols[:0]
	for _, h := range hs {
		cols = append(cols, lexColumn(h, len(x.df)))
	}
	slices.Sort(cols)
	for i, c := range cols {
		if (i == 0 || c != cols[i-1]) && atomic.LoadUint32(&x.df[c]) < math.MaxUint32 {
			atomic.AddUint32(&x.df[c], 1)
		}
	}
	x.docs.Add(1)
	return hs, cols
}

// idf returns ln((1+N)/(1+df)) + 1 of every column (scikit-learn's smooth
// idf), from a snapshot of the counts.
func (x *lexicon) idf() []float32 {
	n := float64(x.docs.Load())
	out := make([]float32, len(x.df))
	for i := range x.df {
		out[i] = idfOf(n, atomic.LoadUint32(&x.df[i]))
	}
	return out
}

func idfOf(n float64, df uint32) float32 { return float32(math.Log((1+n)/(1+float64(df))) + 1) }

// clone copies the counts.
func (x *lexicon) clone() *lexicon {
	y := &lexicon{df: make([]uint32, len(x.df))}
	for i := range x.df {
		y.df[i] = atomic.LoadUint32(&x.df[i])
	}
	y.docs.Store(x.docs.Load())
	return y
}

// Sparse is a sparse vector: ascending distinct column indexes and their
// values.
type Sparse struct {
	Idx []int32   `json:"indices"`
	Val []float32 `json:"values"`
}

// lexVector returns text's TF-IDF vector over the lexicon's columns:
// sublinear term frequency 1 + ln(tf) times idf, L2-normalised (empty when
// the text has no term).
func lexVector(text string, buckets int, idf func(c uint32) float32, hs []uint64, cols []uint32) (Sparse, []uint64, []uint32) {
	hs = Terms(text, hs[:0])
	cols = cols[:0]
	for _, h := range hs {
		cols = append(cols, lexColumn(h, buckets))
	}
	slices.Sort(cols)
	var v Sparse
	var ss float64
	for j := 0; j < len(cols); {
		k := j
		for k < len(cols) && cols[k] == cols[j] {
			k++
		}
		w := float32(1+math.Log(float64(k-j))) * idf(cols[j])
		v.Idx = append(v.Idx, int32(cols[j]))
		v.Val = append(v.Val, w)
		ss += float64(w) * float64(w)
		j = k
	}
	if ss > 0 {
		inv := float32(1 / math.Sqrt(ss))
		for i := range v.Val {
			v.Val[i] *= inv
		}
	}
	return v, hs, cols
}

// Hybrid is the hybrid representation of a text: Dense, the encoder's
// normalised representation, scaled, and Lex, the text's TF-IDF vector
// over the stream's term statistics, scaled, so that the whole vector has
// unit length. As one vector its columns are the dense ones, then
// LexBuckets lexical ones (HybridDim).
type Hybrid struct {
	Dense []float32 `json:"dense"`
	Lex   Sparse    `json:"sparse"`
}

// HybridDim is the width of a hybrid vector over layer: the layer's width
// (LayerDim) + LexBuckets.
func (e *Encoder) HybridDim(layer string) (int, error) {
	d, err := e.LayerDim(layer)
	return d + e.cfg.LexBuckets, err
}

// LexDocs is the number of texts the encoder's term statistics count.
func (e *Encoder) LexDocs() uint64 { return e.lex.docs.Load() }

// EmbedHybrid returns the hybrid representation of each text: the
// encoder's representation layer (EmbedLayer; LayerOutput is Embed) times
// cos(a) joined with its TF-IDF vector over the stream's term statistics
// times sin(a), where tan(a) is Config.LexWeight (the lexical part's weight
// against the dense part's). With no text counted yet (a state from before
// the lexical channel), every idf is 1. An unknown layer is an error
// wrapping ErrConfig.
func (e *Encoder) EmbedHybrid(texts []string, layer string) ([]Hybrid, error) {
	dense, err := e.EmbedLayer(texts, layer)
	if err != nil {
		return nil, err
	}
	e.idfOnce.Do(func() { e.idf = e.lex.idf() })
	return hybrid(&e.cfg, dense, texts, func(c uint32) float32 { return e.idf[c] }), nil
}

// EmbedHybrid is Encoder.EmbedHybrid with the learner's current weights
// and term statistics. It is safe concurrently with Step.
func (l *Learner) EmbedHybrid(texts []string, layer string) ([]Hybrid, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	dense, err := embedLayer(&l.cfg, l.emb, l.online, texts, layer)
	if err != nil {
		return nil, err
	}
	n := float64(l.lex.docs.Load())
	return hybrid(&l.cfg, dense, texts, func(c uint32) float32 { return idfOf(n, atomic.LoadUint32(&l.lex.df[c])) }), nil
}

// hybrid scales the dense embeddings of texts and joins each with its
// lexical vector.
func hybrid(c *Config, dense [][]float32, texts []string, idf func(uint32) float32) []Hybrid {
	wd, wl := hybridWeights(c.LexWeight)
	out := make([]Hybrid, len(texts))
	var hs []uint64
	var cols []uint32
	for i, t := range texts {
		for j := range dense[i] {
			dense[i][j] *= wd
		}
		var v Sparse
		v, hs, cols = lexVector(t, c.LexBuckets, idf, hs, cols)
		for j := range v.Val {
			v.Val[j] *= wl
		}
		out[i] = Hybrid{Dense: dense[i], Lex: v}
	}
	return out
}

// hybridWeights turns the lexical weight r (lexical against dense) into
// the scales of the two unit parts, cos and sin of atan(r).
func hybridWeights(r float64) (dense, lex float32) {
	a := math.Atan(r)
	return float32(math.Cos(a)), float32(math.Sin(a))
}

// WithLexWeight returns a copy of e (sharing its tables) whose hybrid
// representation weighs the lexical part by w against the dense part.
func (e *Encoder) WithLexWeight(w float64) *Encoder {
	c := e.cfg
	c.LexWeight = w
	return &Encoder{cfg: c, emb: e.emb, online: e.online, lex: e.lex}
}
