package curate

import (
	"fmt"
	"math"

	"github.com/thresher-ml/thresher/schemas"
)

// Pacing functions of competence-based curricula (Platanios et al., 2019):
// competence c(t) in [c0, 1] is the share of the difficulty distribution,
// easiest first, that training may sample from at progress t in [0, 1].
const (
	PacingLinear = "linear" // c(t) = min(1, c0 + (1-c0) t)
	PacingRoot   = "root"   // c(t) = min(1, sqrt(c0² + (1-c0²) t))
	PacingStep   = "step"   // stage s opens at t = s/K
)

// Pacings lists every pacing a plan carries.
var Pacings = []string{PacingLinear, PacingRoot, PacingStep}

// DifficultyWeights weigh the standardised statistics that make a record
// hard: more word entropy, less redundancy (a lower compression ratio), more
// words, and less similarity to the target domain.
type DifficultyWeights struct {
	WordEntropy      float64 `yaml:"word_entropy"`
	CompressionRatio float64 `yaml:"compression_ratio"`
	Length           float64 `yaml:"length"`
	TargetSimilarity float64 `yaml:"target_similarity"`
}

// DefaultDifficultyWeights weighs the four statistics alike.
var DefaultDifficultyWeights = DifficultyWeights{WordEntropy: 1, CompressionRatio: 1, Length: 1, TargetSimilarity: 1}

// difficulty keeps running moments of the four statistics (Welford) and a
// histogram of the scores, from which stage boundaries are quantiles. Its
// state is part of curate's committed state.
type difficulty struct {
	W       DifficultyWeights
	N       int64
	Mean    [4]float64
	M2      [4]float64
	Hist    []int64 // histBins bins over [histLo, histHi)
	Records int64
}

const (
	histBins = 2400
	histLo   = -6.0
	histHi   = 6.0
)

func newDifficulty(w DifficultyWeights) *difficulty {
	return &difficulty{W: w, Hist: make([]int64, histBins)}
}

func difficultyFeatures(m *schemas.Audit) [4]float64 {
	return [4]float64{
		float64(m.WordEntropy),
		-float64(m.CompressionRatio),
		math.Log1p(float64(m.LengthWords)),
		-float64(m.TargetSimilarity),
	}
}

// score standardises the record's statistics by the moments seen before it,
// then updates the moments; a record's score depends only on the records
// before it, so a redo reproduces it.
func (d *difficulty) score(m *schemas.Audit) float32 {
	f := difficultyFeatures(m)
	w := [4]float64{d.W.WordEntropy, d.W.CompressionRatio, d.W.Length, d.W.TargetSimilarity}
	var s, wsum float64
	for i := range f {
		z := 0.0
		if d.N > 1 {
			if sd := math.Sqrt(d.M2[i] / float64(d.N-1)); sd > 1e-9 {
				z = (f[i] - d.Mean[i]) / sd
			}
		}
		z = max(-6, min(6, z))
		s += w[i] * z
		wsum += math.Abs(w[i])
	}
	if wsum > 0 {
		s /= wsum
	}
	d.N++
	for i := range f {
		delta := f[i] - d.Mean[i]
		d.Mean[i] += delta / float64(d.N)
		d.M2[i] += delta * (f[i] - d.Mean[i])
	}
	b := int((s - histLo) / (histHi - histLo) * histBins)
	d.Hist[max(0, min(histBins-1, b))]++
	d.Records++
	return float32(s)
}

// boundaries returns the k-1 inner stage boundaries: quantiles i/k of the
// scores seen so far.
func (d *difficulty) boundaries(k int) []float64 {
	out := make([]float64, 0, k-1)
	if d.Records == 0 {
		for i := 1; i < k; i++ {
			out = append(out, 0)
		}
		return out
	}
	var cum int64
	next := 1
	for b, c := range d.Hist {
		cum += c
		for next < k && float64(cum) >= float64(d.Records)*float64(next)/float64(k) {
			out = append(out, histLo+(histHi-histLo)*float64(b+1)/histBins)
			next++
		}
	}
	for len(out) < k-1 {
		out = append(out, histHi)
	}
	return out
}

// stageOf returns the stage (0 = easiest) of a score given the boundaries.
func stageOf(score float32, bounds []float64) int32 {
	s := int32(0)
	for _, b := range bounds {
		if float64(score) >= b {
			s++
		}
	}
	return s
}

// startFraction is the training progress t at which stage s of k opens
// under a pacing with initial competence c0.
func startFraction(pacing string, s, k int, c0 float64) float64 {
	need := float64(s) / float64(k)
	switch pacing {
	case PacingLinear:
		return max(0, (need-c0)/(1-c0))
	case PacingRoot:
		return max(0, (need*need-c0*c0)/(1-c0*c0))
	case PacingStep:
		return need
	}
	panic(fmt.Sprintf("curate: unknown pacing %q", pacing))
}

// plan returns the curriculum rows of one version: for every pacing and
// stage, its difficulty range, how many records so far fall in it, and when
// it opens.
func (d *difficulty) plan(version int64, k int, c0 float64) []schemas.CurriculumPlan {
	bounds := d.boundaries(k)
	counts := make([]int64, k)
	for b, c := range d.Hist {
		lo := histLo + (histHi-histLo)*float64(b)/histBins
		counts[stageOf(float32(lo+1e-9), bounds)] += c
	}
	var rows []schemas.CurriculumPlan
	for _, p := range Pacings {
		for s := 0; s < k; s++ {
			lo, hi := math.Inf(-1), math.Inf(1)
			if s > 0 {
				lo = bounds[s-1]
			}
			if s < k-1 {
				hi = bounds[s]
			}
			rows = append(rows, schemas.CurriculumPlan{
				Version: version, Records: d.Records, Stage: int32(s),
				DifficultyLo: lo, DifficultyHi: hi, StageRecords: counts[s],
				Pacing: p, StartFraction: startFraction(p, s, k, c0),
			})
		}
	}
	return rows
}
