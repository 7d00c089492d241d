package train

import (
	"errors"
	"math"
	"testing"
)

// TestEmbedLayer checks each representation against its definition: the
// output layer is Embed, the bag is the normalised mean of the n-gram rows
// (the MLP's input), the hidden layer the normalised activations, and
// bag+hidden the two normalised halves scaled by 1/sqrt(2).
func TestEmbedLayer(t *testing.T) {
	cfg := Config{Buckets: 512, EmbedDim: 6, HiddenDim: 10, OutDim: 4, Activation: ActivationGELU, Seed: 5, Workers: 1}
	cfg.SetDefaults()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := l.Encoder()
	texts := make([]string, embedChunk+7) // two chunks
	for i := range texts {
		texts[i] = "a text about layers " + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	texts[3] = "" // no n-grams: a zero bag

	layers := map[string][][]float32{}
	for _, layer := range Layers {
		got, err := enc.EmbedLayer(texts, layer)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := enc.LayerDim(layer)
		if len(got) != len(texts) {
			t.Fatalf("%s: %d rows", layer, len(got))
		}
		for i, r := range got {
			if len(r) != w {
				t.Fatalf("%s: row %d has width %d, want %d", layer, i, len(r), w)
			}
			var ss float64
			for _, v := range r {
				ss += float64(v) * float64(v)
			}
			if i != 3 && math.Abs(ss-1) > 1e-5 {
				t.Fatalf("%s: row %d has squared norm %v", layer, i, ss)
			}
		}
		layers[layer] = got
	}
	if w, _ := enc.LayerDim(LayerBagHidden); w != 16 {
		t.Fatalf("bag+hidden width %d", w)
	}
	for i, want := range enc.Embed(texts) {
		for j, v := range want {
			if layers[LayerOutput][i][j] != v {
				t.Fatalf("output row %d differs from Embed", i)
			}
		}
	}
	// The bag by hand: the mean of the rows of the text's n-gram ids.
	f := newFeaturizer(&enc.cfg)
	for _, i := range []int{0, embedChunk + 3} {
		ids := f.ids(texts[i], nil)
		want := make([]float32, cfg.EmbedDim)
		pool(want, enc.emb, ids, cfg.EmbedDim)
		normalizeLayer(want)
		for j, v := range want {
			if math.Abs(float64(layers[LayerBag][i][j]-v)) > 1e-6 {
				t.Fatalf("bag row %d: %v, want %v", i, layers[LayerBag][i], want)
			}
		}
		// The hidden layer by hand: act(bag W1 + b1).
		x := make([]float32, cfg.EmbedDim)
		pool(x, enc.emb, ids, cfg.EmbedDim)
		p := enc.online.params()
		h := make([]float32, cfg.HiddenDim)
		for k := range h {
			s := p[1][k]
			for j, xv := range x {
				s += xv * p[0][j*cfg.HiddenDim+k]
			}
			h[k] = enc.online.act(s)
		}
		normalizeLayer(h)
		for k, v := range h {
			if math.Abs(float64(layers[LayerHidden][i][k]-v)) > 1e-5 {
				t.Fatalf("hidden row %d: %v, want %v", i, layers[LayerHidden][i], h)
			}
		}
		inv := float32(1 / math.Sqrt2)
		for j := range cfg.EmbedDim {
			if math.Abs(float64(layers[LayerBagHidden][i][j]-layers[LayerBag][i][j]*inv)) > 1e-6 {
				t.Fatalf("bag+hidden row %d: bag part differs", i)
			}
		}
		for k := range cfg.HiddenDim {
			if math.Abs(float64(layers[LayerBagHidden][i][cfg.EmbedDim+k]-layers[LayerHidden][i][k]*inv)) > 1e-6 {
				t.Fatalf("bag+hidden row %d: hidden part differs", i)
			}
		}
	}
	for j, v := range layers[LayerBag][3] {
		if v != 0 {
			t.Fatalf("empty text: bag[%d] = %v, want 0", j, v)
		}
	}
	if _, err := enc.EmbedLayer(texts, "top"); !errors.Is(err, ErrConfig) {
		t.Fatalf("unknown layer: %v", err)
	}
	if got, err := enc.EmbedLayer(nil, LayerHidden); err != nil || len(got) != 0 {
		t.Fatalf("no texts: %v %v", got, err)
	}
}
