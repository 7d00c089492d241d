package sampler

import (
	"math"
	"sort"
)

// Bins of the drift histograms: word entropy in half bits from 0 to 16
// (the last bin takes the rest), length_words in powers of two as in
// audit/summary (0, 1, 2-3, 4-7, ..., 1024+).
const (
	entBins = 33
	lenBins = 12
)

func entBin(x float32) int {
	if !(x > 0) {
		return 0
	}
	return min(entBins-1, int(x*2))
}

func lenBin(n int32) int {
	if n <= 0 {
		return 0
	}
	b := 1
	for v := n; v > 1 && b < lenBins-1; v >>= 1 {
		b++
	}
	return b
}

// windowHist holds the distributions of one window.
type windowHist struct {
	window  int64
	n       int64
	domains map[string]int64
	ent     [entBins]int64
	len     [lenBins]int64
}

func (h *windowHist) reset(w int64) {
	*h = windowHist{window: w, domains: map[string]int64{}}
}

func (h *windowHist) add(domain string, wordEnt float32, words int32) {
	h.n++
	h.domains[domain]++
	h.ent[entBin(wordEnt)]++
	h.len[lenBin(words)]++
}

// Drift compares the newest loaded window with what the sampler emitted.
type Drift struct {
	Window     int64   `json:"window"`      // the newest window with records
	DomainTV   float64 `json:"domain_tv"`   // total variation distance between the domain mixes, in [0, 1]
	EntropyPSI float64 `json:"entropy_psi"` // population stability index of word_entropy (half-bit bins)
	LengthPSI  float64 `json:"length_psi"`  // population stability index of length_words (power-of-two bins)
	Examples   int64   `json:"examples"`    // emitted examples compared
}

// psiFloor keeps empty bins out of the logarithm.
const psiFloor = 1e-4

func psi(a, b []int64) float64 {
	var na, nb int64
	for i := range a {
		na += a[i]
		nb += b[i]
	}
	if na == 0 || nb == 0 {
		return 0
	}
	var out float64
	for i := range a {
		p := max(float64(a[i])/float64(na), psiFloor)
		q := max(float64(b[i])/float64(nb), psiFloor)
		out += (p - q) * math.Log(p/q)
	}
	return out
}

func (s *Sampler) drift() Drift {
	h := &s.newest
	d := Drift{Window: h.window, Examples: s.examples}
	if h.n == 0 || s.examples == 0 {
		return d
	}
	names := make([]string, 0, len(h.domains)+len(s.emitted))
	for k := range h.domains {
		names = append(names, k)
	}
	for k := range s.emitted {
		if _, ok := h.domains[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		d.DomainTV += math.Abs(float64(h.domains[k])/float64(h.n) - float64(s.emitted[k])/float64(s.examples))
	}
	d.DomainTV /= 2
	d.EntropyPSI = psi(h.ent[:], s.entHist[:])
	d.LengthPSI = psi(h.len[:], s.lenHist[:])
	return d
}
