package train

import (
	"fmt"
	"math"
	"strings"
)

// Representations an Encoder can return (EmbedLayer). The contrastive loss
// is computed on LayerOutput; the layers below the projection often probe
// better with a linear classifier (as in SimCLR, where the representation
// before the projection head is the one transferred).
const (
	LayerOutput    = "output"     // the L2-normalised output of the MLP (Embed)
	LayerBag       = "bag"        // the mean of the n-gram embedding rows: the MLP's input
	LayerHidden    = "hidden"     // the MLP's hidden activations
	LayerBagHidden = "bag+hidden" // bag and hidden, each L2-normalised, concatenated
)

// Layers lists the representations EmbedLayer accepts.
var Layers = []string{LayerOutput, LayerBag, LayerHidden, LayerBagHidden}

// LayerDim is the width of a representation, or an error wrapping
// ErrConfig for an unknown layer.
func (e *Encoder) LayerDim(layer string) (int, error) {
	switch layer {
	case LayerOutput:
		return e.cfg.OutDim, nil
	case LayerBag:
		return e.cfg.EmbedDim, nil
	case LayerHidden:
		return e.cfg.HiddenDim, nil
	case LayerBagHidden:
		return e.cfg.EmbedDim + e.cfg.HiddenDim, nil
	}
	return 0, fmt.Errorf("%w: layer %q is not one of %s", ErrConfig, layer, strings.Join(Layers, ", "))
}

// EmbedLayer returns one representation of each text, L2-normalised (for
// LayerBagHidden each part is normalised, then the concatenation, so both
// parts weigh the same). LayerOutput is exactly Embed.
func (e *Encoder) EmbedLayer(texts []string, layer string) ([][]float32, error) {
	w, err := e.LayerDim(layer)
	if err != nil {
		return nil, err
	}
	if layer == LayerOutput {
		return e.Embed(texts), nil
	}
	out := make([][]float32, len(texts))
	if len(texts) == 0 {
		return out, nil
	}
	c := &e.cfg
	f := newFeaturizer(c)
	d, hid := c.EmbedDim, c.HiddenDim
	flat := make([]float32, len(texts)*w)
	var ids []uint32
	var cache mlpCache
	x := make([]float32, min(len(texts), embedChunk)*d)
	for lo := 0; lo < len(texts); lo += embedChunk {
		hi := min(lo+embedChunk, len(texts))
		for i := lo; i < hi; i++ {
			ids = f.ids(texts[i], ids[:0])
			pool(x[(i-lo)*d:(i-lo+1)*d], e.emb, ids, d)
		}
		if layer != LayerBag {
			e.online.forward(x, hi-lo, &cache)
		}
		for i := lo; i < hi; i++ {
			row := flat[i*w : (i+1)*w]
			bag := x[(i-lo)*d : (i-lo+1)*d]
			switch layer {
			case LayerBag:
				copy(row, bag)
				normalizeLayer(row)
			case LayerHidden:
				copy(row, cache.h[(i-lo)*hid:(i-lo+1)*hid])
				normalizeLayer(row)
			case LayerBagHidden:
				copy(row[:d], bag)
				copy(row[d:], cache.h[(i-lo)*hid:(i-lo+1)*hid])
				normalizeLayer(row[:d])
				normalizeLayer(row[d:])
				normalizeLayer(row)
			}
		}
	}
	for i := range out {
		out[i] = flat[i*w : (i+1)*w : (i+1)*w]
	}
	return out, nil
}

// normalizeLayer scales v to unit length (a zero vector stays zero).
func normalizeLayer(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(ss))
	for i := range v {
		v[i] *= inv
	}
}
