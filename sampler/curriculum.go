package sampler

import (
	"math"
	"sort"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/schemas"
)

// plan is the curriculum the sampler follows: the rows of one pacing of the
// newest loaded plan version.
type plan struct {
	version int64
	pacing  string    // curate.Pacing* or PacingNone
	start   []float64 // start[s]: progress t at which stage s opens
	c0      float64   // initial competence, recovered from the start fractions
}

// newPlan picks the rows of pacing from a plan version. Without rows of
// that pacing (or with PacingNone) every stage is open.
func newPlan(rows []schemas.CurriculumPlan, pacing string) plan {
	p := plan{pacing: pacing, c0: 1}
	if len(rows) > 0 {
		p.version = rows[0].Version
	}
	if pacing == PacingNone {
		return p
	}
	var mine []schemas.CurriculumPlan
	for _, r := range rows {
		if r.Pacing == pacing && r.Stage >= 0 && r.Stage <= maxStage {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		p.pacing = PacingNone
		return p
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Stage < mine[j].Stage })
	k := int(mine[len(mine)-1].Stage) + 1
	p.start = make([]float64, k)
	for i := range p.start {
		p.start[i] = math.Inf(1)
	}
	for _, r := range mine {
		f := r.StartFraction
		if math.IsNaN(f) {
			f = 0
		}
		p.start[r.Stage] = max(0, f)
	}
	p.start[0] = 0
	for s := 1; s < k; s++ { // a stage never opens before an easier one
		p.start[s] = max(p.start[s], p.start[s-1])
	}
	// Recover c0 from the first stage that does not open at once
	// (curate/curriculum.go: linear f = (s/K - c0)/(1 - c0), root
	// f = ((s/K)² - c0²)/(1 - c0²)).
find:
	for s := 1; s < k; s++ {
		f, need := p.start[s], float64(s)/float64(k)
		if f <= 0 || f >= 1 || math.IsInf(f, 0) {
			continue
		}
		switch pacing {
		case curate.PacingLinear:
			p.c0 = (need - f) / (1 - f)
		case curate.PacingRoot:
			p.c0 = math.Sqrt(max(0, (need*need-f)/(1-f)))
		}
		break find
	}
	p.c0 = min(1, max(0, p.c0))
	return p
}

// stages returns the number of stages of the plan (0 without curriculum).
func (p *plan) stages() int { return len(p.start) }

// open returns how many stages are open at progress t and whether all are.
func (p *plan) open(t float64) (int, bool) {
	if len(p.start) == 0 {
		return 0, true
	}
	n := 0
	for _, f := range p.start {
		if t >= f {
			n++
		}
	}
	return n, n == len(p.start)
}

// competence returns c(t), the share of the difficulty distribution open
// at progress t.
func (p *plan) competence(t float64) float64 {
	t = min(1, max(0, t))
	switch {
	case len(p.start) == 0:
		return 1
	case p.pacing == curate.PacingLinear:
		return min(1, p.c0+(1-p.c0)*t)
	case p.pacing == curate.PacingRoot:
		return min(1, math.Sqrt(p.c0*p.c0+(1-p.c0*p.c0)*t))
	default:
		n, _ := p.open(t)
		return float64(n) / float64(len(p.start))
	}
}
