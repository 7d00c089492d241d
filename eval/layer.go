package eval

import (
	"context"

	"github.com/thresher-ml/thresher/train"
)

var _ Features = (*LayerFeatures)(nil)

// LayerFeatures embeds texts with one representation of a frozen
// train.Encoder (train.Encoder.EmbedLayer: the output, the bag of n-gram
// embeddings, the hidden layer, or bag and hidden concatenated): dense,
// L2-normalised rows.
type LayerFeatures struct {
	name    string
	layer   string
	enc     *train.Encoder
	dim     int
	workers int
}

// NewLayerFeatures returns the feature set name embedding with layer of
// enc over workers goroutines (GOMAXPROCS when 0); an unknown layer is an
// error wrapping train.ErrConfig.
func NewLayerFeatures(name string, enc *train.Encoder, layer string, workers int) (*LayerFeatures, error) {
	d, err := enc.LayerDim(layer)
	if err != nil {
		return nil, err
	}
	base := NewEncoderFeatures(name, enc, workers)
	return &LayerFeatures{name: name, layer: layer, enc: enc, dim: d, workers: base.workers}, nil
}

// Name returns the feature set's name.
func (f *LayerFeatures) Name() string { return f.name }

// Transform embeds texts in chunks shared by the workers.
func (f *LayerFeatures) Transform(ctx context.Context, texts []string, progress func(n int)) (*Matrix, error) {
	embed := func(texts []string) [][]float32 {
		rows, _ := f.enc.EmbedLayer(texts, f.layer) // the layer was checked by NewLayerFeatures
		return rows
	}
	return embedChunks(ctx, texts, f.dim, f.workers, embed, progress)
}

// NewRandomLayerFeatures is NewRandomFeatures scoring layer of the freshly
// initialised encoder.
func NewRandomLayerFeatures(cfg train.Config, seed uint64, layer string, workers int) (*LayerFeatures, error) {
	r, err := NewRandomFeatures(cfg, seed, workers)
	if err != nil {
		return nil, err
	}
	return NewLayerFeatures(FeaturesRandom, r.enc, layer, workers)
}
