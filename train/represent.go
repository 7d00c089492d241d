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

// DefaultLayer is the representation thresher probes and serves to
// downstream tasks by default (thresher eval, the demo): on the tasks' dev
// splits it probes better than the output once the views are disjoint
// halves (see docs/results.md).
const DefaultLayer = LayerBagHidden

// Layers lists the representations EmbedLayer accepts.
var Layers = []string{LayerOutput, LayerBag, LayerHidden, LayerBagHidden}

// LayerDim is the width of a representation, or an error wrapping
// ErrConfig for an unknown layer.
func (e *Encoder) LayerDim(layer string) (int, error) { return layerDim(&e.cfg, layer) }

func layerDim(c *Config, layer string) (int, error) {
	switch layer {
	case LayerOutput:
		return c.OutDim, nil
	case LayerBag:
		return c.EmbedDim, nil
	case LayerHidden:
		return c.HiddenDim, nil
	case LayerBagHidden:
		return c.EmbedDim + c.HiddenDim, nil
	}
	return 0, fmt.Errorf("%w: layer %q is not one of %s", ErrConfig, layer, strings.Join(Layers, ", "))
}

// EmbedLayer returns one representation of each text, L2-normalised (for
// LayerBagHidden each part is normalised, then the concatenation, so both
// parts weigh the same). LayerOutput is exactly Embed.
func (e *Encoder) EmbedLayer(texts []string, layer string) ([][]float32, error) {
	return embedLayer(&e.cfg, e.emb, e.online, texts, layer)
}

// EmbedLayer is Encoder.EmbedLayer with the learner's current weights. It
// is safe concurrently with Step.
func (l *Learner) EmbedLayer(texts []string, layer string) ([][]float32, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return embedLayer(&l.cfg, l.emb, l.online, texts, layer)
}

func embedLayer(c *Config, emb []float32, m *mlp, texts []string, layer string) ([][]float32, error) {
	w, err := layerDim(c, layer)
	if err != nil {
		return nil, err
	}
	if layer == LayerOutput {
		return embedTexts(c, emb, m, texts), nil
	}
	d, hid := c.EmbedDim, c.HiddenDim
	flat := make([]float32, len(texts)*w)
	var cache mlpCache
	pooledChunks(c, emb, texts, func(lo, n int, x []float32) {
		if layer != LayerBag {
			m.forward(x, n, &cache)
		}
		for i := range n {
			row := flat[(lo+i)*w : (lo+i+1)*w]
			bag := x[i*d : (i+1)*d]
			switch layer {
			case LayerBag:
				copy(row, bag)
				normalizeLayer(row)
			case LayerHidden:
				copy(row, cache.h[i*hid:(i+1)*hid])
				normalizeLayer(row)
			case LayerBagHidden:
				copy(row[:d], bag)
				copy(row[d:], cache.h[i*hid:(i+1)*hid])
				normalizeLayer(row[:d])
				normalizeLayer(row[d:])
				normalizeLayer(row)
			}
		}
	})
	return splitRows(flat, len(texts), w), nil
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
