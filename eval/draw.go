package eval

import (
	"math/rand/v2"
	"slices"
)

// AllLabels as a labels-per-class value means every train example.
const AllLabels = 0

// Draw returns the sorted indexes of a seeded sample of labels: perClass
// examples of every class (all of a class with fewer; every example when
// perClass is AllLabels). The sample depends only on (labels, perClass,
// seed, draw), so every feature set sees the same draws.
func Draw(labels []int, classes, perClass int, seed uint64, draw int) []int {
	if perClass == AllLabels {
		out := make([]int, len(labels))
		for i := range out {
			out[i] = i
		}
		return out
	}
	byClass := make([][]int, classes)
	for i, y := range labels {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(perClass)<<32|uint64(uint32(draw))))
	var out []int
	for _, idx := range byClass {
		if len(idx) <= perClass {
			out = append(out, idx...)
			continue
		}
		for j := 0; j < perClass; j++ { // partial Fisher-Yates
			r := j + rng.IntN(len(idx)-j)
			idx[j], idx[r] = idx[r], idx[j]
		}
		out = append(out, idx[:perClass]...)
	}
	slices.Sort(out)
	return out
}
