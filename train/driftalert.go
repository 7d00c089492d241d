package train

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Defaults of the domain-mix drift alert (ServiceConfig.DriftAlert*).
const (
	DefaultDriftAlert         = 0.1
	DefaultDriftAlertRecent   = 20 * time.Second
	DefaultDriftAlertTrailing = 10 * time.Minute
)

// mixAlert raises an alert while the domain mix of the examples trained on
// recently diverges from its trailing mix: both mixes are exponential
// moving averages of the domain shares of the examples seen between two
// updates, over a short time constant (recent) and a long one (trailing).
// The alert is raised when their total variation exceeds the threshold
// and cleared when it falls below half of it, so that it does not flap
// around the threshold. A new domain that starts flowing into the topic
// with a share s lifts the distance to about s within a few recent time
// constants, and the alert clears once the trailing mix has absorbed it.
//
// Both averages are bias-corrected: each keeps the weight it has built up
// since the first example and divides by it, so that early in a run the
// trailing mix is the time-weighted mean of the readings so far rather
// than mostly the first one (the first batches of a curriculum come from
// its easiest stage, whose mix is not the stream's).
type mixAlert struct {
	threshold          float64
	recentT, trailingT time.Duration

	pending          map[string]float64 // examples per domain since the last update
	recent, trailing mixEMA
	first, last      time.Time // the first example's time, the last update
	tv               float64
	on               bool
	since            time.Time
}

// mixEMA is a bias-corrected exponential moving average of domain shares:
// sum[d] / weight.
type mixEMA struct {
	sum    map[string]float64
	weight float64
}

// blend folds in a reading of counts (n in all) that covers dt, with time
// constant tau.
func (e *mixEMA) blend(counts map[string]float64, n float64, dt, tau time.Duration) {
	if e.sum == nil {
		e.sum = map[string]float64{}
	}
	w := 1 - math.Exp(-float64(dt)/float64(tau))
	if w <= 0 {
		w = 1e-12 // a reading at the same instant still counts, barely
	}
	for d := range e.sum {
		e.sum[d] *= 1 - w
	}
	for d, c := range counts {
		e.sum[d] += w * c / n
	}
	e.weight = e.weight*(1-w) + w
}

// shares returns the average mix.
func (e *mixEMA) shares() map[string]float64 {
	out := make(map[string]float64, len(e.sum))
	for d, s := range e.sum {
		if e.weight > 0 {
			out[d] = s / e.weight
		}
	}
	return out
}

func newMixAlert(threshold float64, recent, trailing time.Duration) *mixAlert {
	return &mixAlert{threshold: threshold, recentT: recent, trailingT: trailing, pending: map[string]float64{}}
}

func (a *mixAlert) add(domain string) {
	if a.first.IsZero() {
		a.first = time.Now()
	}
	a.pending[domain]++
}

// update folds the examples seen since the last update into both mixes at
// time now and reports whether the alert was raised (rose) or cleared
// (fell) by it.
func (a *mixAlert) update(now time.Time) (rose, fell bool) {
	var n float64
	for _, c := range a.pending {
		n += c
	}
	if n == 0 {
		return false, false
	}
	from := a.last
	if from.IsZero() {
		from = a.first
	}
	dt := max(now.Sub(from), 0)
	a.recent.blend(a.pending, n, dt, a.recentT)
	a.trailing.blend(a.pending, n, dt, a.trailingT)
	clear(a.pending)
	a.last = now
	a.tv = totalVariation(a.recent.shares(), a.trailing.shares())
	switch {
	case !a.on && a.threshold > 0 && a.tv > a.threshold:
		a.on, a.since = true, now
		return true, false
	case a.on && a.tv < a.threshold/2:
		a.on = false
		return false, true
	}
	return false, false
}

// moves lists the domains whose recent share differs most from their
// trailing share, largest first, at most k of them.
func (a *mixAlert) moves(k int) []DomainMove {
	var out []DomainMove
	recent, trailing := a.recent.shares(), a.trailing.shares()
	for d := range recent {
		out = append(out, DomainMove{Domain: d, Recent: recent[d], Trailing: trailing[d]})
	}
	slices.SortFunc(out, func(x, y DomainMove) int {
		return cmp.Or(cmp.Compare(math.Abs(y.Recent-y.Trailing), math.Abs(x.Recent-x.Trailing)), cmp.Compare(x.Domain, y.Domain))
	})
	return out[:min(k, len(out))]
}

// DomainMove is one domain's share of the recent and trailing mixes.
type DomainMove struct {
	Domain   string  `json:"domain"`
	Recent   float64 `json:"recent"`
	Trailing float64 `json:"trailing"`
}

// totalVariation is half the L1 distance of two mixes over the union of
// their domains.
func totalVariation(p, q map[string]float64) float64 {
	var s float64
	for d, v := range p {
		s += math.Abs(v - q[d])
	}
	for d, v := range q {
		if _, ok := p[d]; !ok {
			s += v
		}
	}
	return s / 2
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
