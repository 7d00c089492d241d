package report

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/sampler"
	"github.com/thresher-ml/thresher/schemas"
	"github.com/thresher-ml/thresher/train"
)

// Eval metrics the report reads (the trainer's names).
const (
	metricAccuracy = "accuracy"
	metricMacroF1  = "macro_f1"
	metricDecision = "decision"
)

// maxPoints bounds the points of one training series; longer histories
// are averaged over consecutive steps.
const maxPoints = 800

func domainSeries(d *lakeData) []series {
	out := make([]series, len(d.domains))
	for i, n := range d.domains {
		out[i] = series{name: n, color: d.color(n)}
	}
	return out
}

func timelineSection(d *lakeData, opts Options) *section {
	s := newSection(secTimeline, "Over time",
		"Input records of each domain and the share of them that were exact or near duplicates, by Kafka timestamp (audit/records, every input record, kept or not).")
	if err := d.errs[secTimeline]; err != nil && len(d.records) == 0 {
		return s.fail(err)
	}
	if len(d.records) == 0 {
		return s.empty("No data yet: audit/records is empty. Land records with thresher ingest, then run thresher curate.")
	}
	lo, hi := d.records[0].ts, d.records[0].ts
	for _, r := range d.records {
		lo, hi = min(lo, r.ts), max(hi, r.ts)
	}
	width := max(int64(1), (hi-lo+int64(opts.Buckets))/int64(opts.Buckets))
	nb := int((hi-lo)/width) + 1
	k := len(d.domains)
	counts := make([][]float64, k+1) // the last row: all domains
	dups := make([][]float64, k+1)
	for i := range counts {
		counts[i], dups[i] = make([]float64, nb), make([]float64, nb)
	}
	for _, r := range d.records {
		b := int((r.ts - lo) / width)
		for _, i := range []int{int(r.domain), k} {
			counts[i][b]++
			if r.decision == decExact || r.decision == decNear {
				dups[i][b]++
			}
		}
	}
	x := func(b int) float64 { return float64(lo) + (float64(b)+0.5)*float64(width) }
	recs, rates := domainSeries(d), domainSeries(d)
	all := series{name: "all domains", color: "#333", dash: "5 3", width: 1.5}
	recs, rates = append(recs, all), append(rates, all)
	for i := range recs {
		for b := 0; b < nb; b++ {
			recs[i].pts = append(recs[i].pts, pt{x(b), counts[i][b]})
			rate := math.NaN()
			if counts[i][b] > 0 {
				rate = dups[i][b] / counts[i][b]
			}
			rates[i].pts = append(rates[i].pts, pt{x(b), rate})
		}
		if nb == 1 {
			recs[i].dots, rates[i].dots = true, true
		}
	}
	bucket := (time.Duration(width) * time.Millisecond).String()
	layout := time.DateTime
	if hi-lo < 60e3 {
		layout = "2006-01-02 15:04:05.000"
	}
	c1 := &lineChart{id: "plot-records-time", wide: true, x: axis{label: "Kafka timestamp (UTC)", time: true}, y: axis{label: "records per bucket", zero: true}, series: recs}
	s.fig(figure{ID: c1.id, Title: "Records per domain over time",
		Caption: fmt.Sprintf("%d records from %s to %s, in %d buckets of %s.", len(d.records),
			time.UnixMilli(lo).UTC().Format(layout), time.UnixMilli(hi).UTC().Format(layout), nb, bucket),
		SVG: c1.render(), Legend: legend(c1.id, recs), Wide: true})
	c2 := &lineChart{id: "plot-duprate-time", wide: true, x: axis{label: "Kafka timestamp (UTC)", time: true}, y: axis{label: "duplicate rate", pct: true, zero: true}, series: rates}
	s.fig(figure{ID: c2.id, Title: "Duplicate rate per domain over time",
		Caption: "Exact and near duplicates over the records of the bucket; gaps where a domain had no records.",
		SVG:     c2.render(), Legend: legend(c2.id, rates), Wide: true})
	return s
}

// binning is one histogram of the distributions section.
type binning struct {
	id, title, xlabel string
	labels            []string // per bin; "" for no tick
	bin               func(r record) int
}

func lengthBin(words int32) int {
	if words <= 0 {
		return 0
	}
	return min(11, int(math.Floor(math.Log2(float64(words))))+1)
}

// evenLabels labels n bins of width step at every whole number.
func evenLabels(n int, step float64) []string {
	out := make([]string, n)
	for i := range out {
		if v := float64(i) * step; v == math.Trunc(v) {
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

func distributionsSection(d *lakeData) *section {
	s := newSection(secDistributions, "Distributions",
		"Audit columns of every input record: each domain's share of its own records per bin (lines) over the share of all records (grey bars).")
	if err := d.errs[secTimeline]; err != nil && len(d.records) == 0 {
		return s.fail(err)
	}
	if len(d.records) == 0 {
		return s.empty("No data yet: audit/records is empty. Run thresher curate.")
	}
	lengthLabels := []string{"0", "1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1k+"}
	bins := []binning{
		{id: "plot-hist-char-entropy", title: "Character entropy", xlabel: "bits per character (quarter-bit bins)",
			labels: evenLabels(32, 0.25), bin: func(r record) int { return clampBin(float64(r.charH)/0.25, 32) }},
		{id: "plot-hist-word-entropy", title: "Word entropy", xlabel: "bits per word (half-bit bins)",
			labels: evenLabels(24, 0.5), bin: func(r record) int { return clampBin(float64(r.word)/0.5, 24) }},
		{id: "plot-hist-length", title: "Length", xlabel: "words (bins from each power of two)",
			labels: lengthLabels, bin: func(r record) int { return lengthBin(r.words) }},
	}
	k := len(d.domains)
	for _, bn := range bins {
		n := len(bn.labels)
		per := make([][]float64, k)
		for i := range per {
			per[i] = make([]float64, n)
		}
		total := make([]float64, n)
		dn := make([]float64, k)
		for _, r := range d.records {
			b := bn.bin(r)
			per[r.domain][b]++
			total[b]++
			dn[r.domain]++
		}
		// Only the bins from the first to the last that hold records, and
		// one more on each side.
		first, last := n, -1
		for b, c := range total {
			if c > 0 {
				first, last = min(first, b), max(last, b)
			}
		}
		first, last = max(0, first-1), min(n-1, last+1)
		for b := range total {
			total[b] /= float64(len(d.records))
		}
		ss := domainSeries(d)
		for i := range ss {
			for b := first; b <= last; b++ {
				ss[i].pts = append(ss[i].pts, pt{float64(b - first), per[i][b] / math.Max(dn[i], 1)})
			}
		}
		c := &histChart{id: bn.id, small: true, labels: bn.labels[first : last+1], xlabel: bn.xlabel, total: total[first : last+1], series: ss}
		s.fig(figure{ID: c.id, Title: bn.title, SVG: c.render(), Legend: legend(c.id, ss)})
	}
	return s
}

func clampBin(v float64, n int) int {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(n-1, int(v))
}

// domainAgg sums audit/summary rows of one domain.
type domainAgg struct {
	records, kept, exact, near, filtered, pii int64
	simW, gapW, overlap                       float64
	windows                                   int
	vocab                                     int64
}

func balanceSection(d *lakeData, sum *Summary, opts Options) *section {
	s := newSection(secBalance, "Domain balance",
		"From audit/summary, summed over the curate windows: how the input divides among domains, what dedup and filtering left of each, and how far each is from the target.")
	if err := d.errs[secBalance]; err != nil && len(d.summary) == 0 {
		return s.fail(err)
	}
	if len(d.summary) == 0 {
		return s.empty("No data yet: audit/summary is empty. Run thresher curate.")
	}
	by := map[string]*domainAgg{}
	var all domainAgg
	var windows []int64
	seen := map[int64]bool{}
	for _, r := range d.summary {
		if !seen[r.Window] {
			seen[r.Window] = true
			windows = append(windows, r.Window)
		}
		if r.Domain == "*" {
			all.records += r.Records
			all.kept += r.Kept
			all.simW += r.MeanTargetSim * float64(r.Records)
			continue
		}
		name := domainName(r.Domain)
		a := by[name]
		if a == nil {
			a = &domainAgg{}
			by[name] = a
		}
		f := float64(r.Records)
		a.records += r.Records
		a.kept += r.Kept
		a.exact += r.ExactDuplicates
		a.near += r.NearDuplicates
		a.filtered += r.Filtered
		a.pii += r.PIIRecords
		a.simW += r.MeanTargetSim * f
		a.gapW += r.TargetGap * f
		a.overlap += r.VocabOverlap
		a.vocab = max(a.vocab, r.VocabSize)
		a.windows++
	}
	names := make([]string, 0, len(by))
	var domRecords, domKept int64
	for n, a := range by {
		names = append(names, n)
		domRecords += a.records
		domKept += a.kept
	}
	sort.Slice(names, func(i, j int) bool {
		if by[names[i]].records != by[names[j]].records {
			return by[names[i]].records > by[names[j]].records
		}
		return names[i] < names[j]
	})
	if len(names) == 0 {
		return s.empty("No data yet: audit/summary holds no per-domain rows.")
	}
	var shares, gaps []bar
	for _, n := range names {
		a := by[n]
		share := float64(a.records) / float64(max(domRecords, 1))
		kept := float64(a.kept) / float64(max(domKept, 1))
		shares = append(shares, bar{label: n, value: share, color: d.color(n), dot: kept,
			tip: fmt.Sprintf("%s: %d records, %.1f%% of the input; %d kept, %.1f%% of the kept", n, a.records, 100*share, a.kept, 100*kept)})
		gap := a.gapW / math.Max(float64(a.records), 1)
		gaps = append(gaps, bar{label: n, value: gap, color: d.color(n), dot: math.NaN(),
			tip: fmt.Sprintf("%s: gap %.3f (mean target similarity %.3f)", n, gap, a.simW/math.Max(float64(a.records), 1))})
	}
	even := 1 / float64(len(names))
	c1 := &barChart{id: "plot-domain-share", xlabel: "share", pct: true, bars: shares, dotLabel: "share of kept",
		refs: []refLine{{at: even, label: "even share"}}}
	s.fig(figure{ID: c1.id, Title: "Share of the input by domain",
		Caption: fmt.Sprintf("Bars: share of the %d input records; dots: share of the %d kept records; dashed: an even share (1/%d).", domRecords, domKept, len(names)),
		SVG:     c1.render()})
	c2 := &barChart{id: "plot-target-gap", xlabel: "gap to the target (mean target similarity of all records minus the domain's)", bars: gaps}
	s.fig(figure{ID: c2.id, Title: "Gap to the target by domain",
		Caption: "Above zero: the domain is less like the target than the stream as a whole (without a target, less typical of the stream). Weighted by records over the windows.",
		SVG:     c2.render()})
	if len(windows) > 1 {
		ss := make([]series, len(names))
		idx := map[string]int{}
		for i, n := range names {
			ss[i] = series{name: n, color: d.color(n), dots: true}
			idx[n] = i
		}
		for _, r := range d.summary {
			if i, ok := idx[domainName(r.Domain)]; ok && r.Domain != "*" {
				ss[i].pts = append(ss[i].pts, pt{float64(r.Window), r.DomainShare})
			}
		}
		for i := range ss {
			sort.Slice(ss[i].pts, func(a, b int) bool { return ss[i].pts[a].x < ss[i].pts[b].x })
		}
		c3 := &lineChart{id: "plot-share-windows", wide: true, x: axis{label: "curate window", whole: true}, y: axis{label: "share of the window's records", pct: true, zero: true}, series: ss}
		s.fig(figure{ID: c3.id, Title: "Domain share per window", Caption: fmt.Sprintf("%d windows.", len(windows)), SVG: c3.render(), Legend: legend(c3.id, ss), Wide: true})
	}
	var t strings.Builder
	t.WriteString(`<table><tr><th>domain</th><th>records</th><th>share</th><th>kept</th><th>exact dup</th><th>near dup</th><th>filtered</th><th>dup rate</th><th>PII</th><th>target sim.</th><th>gap</th><th>vocab overlap</th></tr>`)
	for _, n := range names {
		a := by[n]
		f := math.Max(float64(a.records), 1)
		fmt.Fprintf(&t, `<tr><td>%s</td><td>%d</td><td>%.1f%%</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%.2f%%</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>%.2f</td></tr>`,
			esc(n), a.records, 100*float64(a.records)/float64(max(domRecords, 1)), a.kept, a.exact, a.near, a.filtered,
			100*float64(a.exact+a.near)/f, a.pii, a.simW/f, a.gapW/f, a.overlap/float64(max(a.windows, 1)))
	}
	t.WriteString(`</table>`)
	s.Tables = append(s.Tables, template.HTML(t.String()))
	if d.targeted {
		targetTable(s, d, opts.TargetWeight)
	}
	return s
}

// targetTable shows, on a lake curated with a target sample, what target
// weighting favours: each domain's share of the kept records against its
// share of their target weights (sampler.TargetRecordWeight), which is
// the domain's share of the proportional mixture once the sampler weighs
// records by their similarity to the target.
func targetTable(s *section, d *lakeData, beta float64) {
	kept := make([]float64, len(d.domains))
	mass := make([]float64, len(d.domains))
	var nk, nm float64
	for _, r := range d.records {
		if r.decision != decKept {
			continue
		}
		w := sampler.TargetRecordWeight(beta, r.targetSim)
		kept[r.domain]++
		mass[r.domain] += w
		nk++
		nm += w
	}
	if nk == 0 {
		return
	}
	var t strings.Builder
	fmt.Fprintf(&t, `<p>Target sample: %s (%d texts, fitted %s). `, esc(d.target.File), d.target.Texts, d.target.FittedAt.UTC().Format(time.RFC3339))
	if beta > 0 {
		fmt.Fprintf(&t, `With target_weight %g the sampler counts each kept record exp(%g &times; target similarity) instead of 1, so a domain's share of the proportional mixture moves from its share of the kept records to its share of their weights:</p>`, beta, beta)
	} else {
		t.WriteString(`Target weighting is off (target_weight negative): the mixture does not favour the target.</p>`)
	}
	t.WriteString(`<table><tr><th>domain</th><th>kept records</th><th>share of kept</th><th>share with target weighting</th><th>favoured</th></tr>`)
	for i, n := range d.domains {
		if kept[i] == 0 {
			continue
		}
		a, b := kept[i]/nk, mass[i]/nm
		if beta <= 0 {
			b = a
		}
		fmt.Fprintf(&t, `<tr><td>%s</td><td>%.0f</td><td>%.1f%%</td><td>%.1f%%</td><td>%.2f&times;</td></tr>`, esc(n), kept[i], 100*a, 100*b, b/a)
	}
	t.WriteString(`</table>`)
	s.Tables = append(s.Tables, template.HTML(t.String()))
}

func curriculumSection(d *lakeData) *section {
	s := newSection(secCurriculum, "Curriculum", "")
	if err := d.errs[secCurriculum]; err != nil && len(d.curriculum) == 0 {
		return s.fail(err)
	}
	if len(d.curriculum) == 0 {
		return s.empty("No data yet: the curriculum table is empty. Run thresher curate.")
	}
	var version int64 = -1
	for _, p := range d.curriculum {
		version = max(version, p.Version)
	}
	type stage struct {
		lo, hi  float64
		records int64
		opens   map[string]float64
	}
	stages := map[int32]*stage{}
	var records int64
	pacings := []string{}
	seenPacing := map[string]bool{}
	for _, p := range d.curriculum {
		if p.Version != version {
			continue
		}
		records = p.Records
		st := stages[p.Stage]
		if st == nil {
			st = &stage{lo: p.DifficultyLo, hi: p.DifficultyHi, records: p.StageRecords, opens: map[string]float64{}}
			stages[p.Stage] = st
		}
		st.opens[p.Pacing] = p.StartFraction
		if !seenPacing[p.Pacing] {
			seenPacing[p.Pacing] = true
			pacings = append(pacings, p.Pacing)
		}
	}
	order := make([]int32, 0, len(stages))
	for k := range stages {
		order = append(order, k)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	s.Intro = fmt.Sprintf("The newest plan (version %d, made by curate window %d after %d records): %d stages, quantiles of the difficulty of every record so far, easiest first; each pacing opens them at its own point of training.",
		version, version, records, len(order))
	rng := func(v float64) string {
		switch {
		case math.IsInf(v, -1):
			return "−∞"
		case math.IsInf(v, 1):
			return "∞"
		}
		return fmt.Sprintf("%.2f", v)
	}
	var bars []bar
	for i, k := range order {
		st := stages[k]
		bars = append(bars, bar{label: fmt.Sprintf("stage %d", k), value: float64(st.records), color: colorFor(i % len(palette)), dot: math.NaN(),
			tip: fmt.Sprintf("stage %d: difficulty [%s, %s), %d records", k, rng(st.lo), rng(st.hi), st.records)})
	}
	c1 := &barChart{id: "plot-stage-records", xlabel: "records", bars: bars}
	s.fig(figure{ID: c1.id, Title: "Records per stage", Caption: "Stage ranges in the table below.", SVG: c1.render()})

	// The difficulty of the kept records, with the stage boundaries.
	var diffs []float64
	for _, r := range d.records {
		if r.decision == decKept && !math.IsNaN(float64(r.difficulty)) {
			diffs = append(diffs, float64(r.difficulty))
		}
	}
	if len(diffs) > 0 {
		sort.Float64s(diffs)
		lo, hi := diffs[len(diffs)/200], diffs[len(diffs)-1-len(diffs)/200]
		if hi <= lo {
			lo, hi = lo-0.5, hi+0.5
		}
		const nb = 40
		counts := make([]float64, nb)
		for _, v := range diffs {
			if v >= lo && v <= hi {
				counts[clampBin((v-lo)/(hi-lo)*nb, nb)]++
			}
		}
		hs := series{name: "kept records", color: "#4e79a7", step: true}
		for b, c := range counts {
			hs.pts = append(hs.pts, pt{lo + (hi-lo)*float64(b)/nb, c / float64(len(diffs))})
		}
		hs.pts = append(hs.pts, pt{hi, counts[nb-1] / float64(len(diffs))})
		var refs []refLine
		for _, k := range order[1:] {
			if b := stages[k].lo; b > lo && b < hi {
				refs = append(refs, refLine{at: b, label: fmt.Sprintf("%d", k), vertical: true})
			}
		}
		c2 := &lineChart{id: "plot-difficulty", x: axis{label: "difficulty", lo: lo, hi: hi, fixed: true}, y: axis{label: "share of kept records", pct: true, zero: true},
			series: []series{hs}, refs: refs}
		s.fig(figure{ID: c2.id, Title: "Difficulty of the kept records", Caption: fmt.Sprintf("%d records, central 99%%; dashed: where each stage begins.", len(diffs)), SVG: c2.render()})
	}

	var ps []series
	dashes := map[string]string{"linear": "", "root": "6 3", "step": "2 3"}
	for i, p := range pacings {
		var starts []float64
		for _, k := range order {
			starts = append(starts, stages[k].opens[p])
		}
		sort.Float64s(starts)
		sr := series{name: p, color: colorFor(i), step: true, dash: dashes[p], width: 2.2}
		open := func(t float64) float64 {
			n := 0
			for _, f := range starts {
				if f <= t+1e-12 {
					n++
				}
			}
			return float64(n)
		}
		sr.pts = append(sr.pts, pt{0, open(0)})
		for _, f := range starts {
			if f > 0 && f <= 1 {
				sr.pts = append(sr.pts, pt{f, open(f)})
			}
		}
		sr.pts = append(sr.pts, pt{1, open(1)})
		ps = append(ps, sr)
	}
	c3 := &lineChart{id: "plot-pacing", x: axis{label: "training progress", lo: 0, hi: 1, fixed: true, pct: true},
		y: axis{label: "stages open", lo: 0, hi: float64(len(order)), fixed: true}, series: ps}
	s.fig(figure{ID: c3.id, Title: "Pacing", Caption: "Stages open at each point of training under each pacing (the sampler's curriculum_examples is 100%).",
		SVG: c3.render(), Legend: legend(c3.id, ps)})

	var t strings.Builder
	t.WriteString(`<table><tr><th>stage</th><th>difficulty from</th><th>to</th><th>records</th>`)
	for _, p := range pacings {
		fmt.Fprintf(&t, `<th>opens (%s)</th>`, esc(p))
	}
	t.WriteString(`</tr>`)
	for _, k := range order {
		st := stages[k]
		fmt.Fprintf(&t, `<tr><td>%d</td><td>%s</td><td>%s</td><td>%d</td>`, k, rng(st.lo), rng(st.hi), st.records)
		for _, p := range pacings {
			fmt.Fprintf(&t, `<td>%.0f%%</td>`, 100*st.opens[p])
		}
		t.WriteString(`</tr>`)
	}
	t.WriteString(`</table>`)
	s.Tables = append(s.Tables, template.HTML(t.String()))
	return s
}

// thin averages consecutive points down to at most maxPoints (x: the last
// x of each group); NaN values are left out of the averages.
func thin(pts []pt) []pt {
	if len(pts) <= maxPoints {
		return pts
	}
	k := (len(pts) + maxPoints - 1) / maxPoints
	var out []pt
	for i := 0; i < len(pts); i += k {
		g := pts[i:min(i+k, len(pts))]
		sum, n := 0.0, 0
		for _, p := range g {
			if !math.IsNaN(p.y) {
				sum += p.y
				n++
			}
		}
		y := math.NaN()
		if n > 0 {
			y = sum / float64(n)
		}
		out = append(out, pt{g[len(g)-1].x, y})
	}
	return out
}

func trainingSection(d *lakeData, sum *Summary) *section {
	s := newSection(secTraining, "Training", "The trainer's figures per optimiser step (train/history): losses, instance-discrimination accuracy and the label-free health of the embeddings.")
	if err := d.errs[secTraining]; err != nil && len(d.history) == 0 {
		return s.fail(err)
	}
	if len(d.history) == 0 {
		return s.empty("No data yet: train/history is empty. Run thresher train on this lake; it writes a row per step.")
	}
	// One row per step, the last written winning (a resumed run rewrites
	// the steps it replays).
	byStep := map[int64]schemas.TrainHistory{}
	for _, r := range d.history {
		byStep[r.Step] = r
	}
	rows := make([]schemas.TrainHistory, 0, len(byStep))
	for _, r := range byStep {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Step < rows[j].Step })
	last := rows[len(rows)-1]
	sum.Steps, sum.ExamplesSeen = last.Step, last.ExamplesSeen
	s.Intro += fmt.Sprintf(" %d steps logged, the last %d (%d examples, %d tokens seen).", len(rows), last.Step, last.ExamplesSeen, last.TokensSeen)

	get := func(f func(r schemas.TrainHistory) float64) []pt {
		pts := make([]pt, len(rows))
		for i, r := range rows {
			pts[i] = pt{float64(r.Step), f(r)}
		}
		return thin(pts)
	}
	// Health is computed every few steps and carried in between; before
	// the first computation all of it is zero.
	healthy := func(r schemas.TrainHistory) bool {
		return r.Std != 0 || r.RankMe != 0 || r.Alignment != 0 || r.Uniformity != 0
	}
	health := func(f func(r schemas.TrainHistory) float32) []pt {
		return get(func(r schemas.TrainHistory) float64 {
			if !healthy(r) {
				return math.NaN()
			}
			return float64(f(r))
		})
	}
	step := axis{label: "step", whole: true}
	losses := []series{{name: "total", color: "#4e79a7", pts: get(func(r schemas.TrainHistory) float64 { return float64(r.Loss) })}}
	var anyInfo, anyMLM bool
	for _, r := range rows {
		anyInfo = anyInfo || (r.LossInfoNCE != 0 && r.LossInfoNCE != r.Loss)
		anyMLM = anyMLM || r.LossMLM != 0
	}
	if anyInfo {
		losses = append(losses, series{name: "contrastive (InfoNCE)", color: "#f28e2b", dash: "6 3", pts: get(func(r schemas.TrainHistory) float64 { return float64(r.LossInfoNCE) })})
	}
	if anyMLM {
		losses = append(losses, series{name: "masked token", color: "#59a14f", dash: "2 3", pts: get(func(r schemas.TrainHistory) float64 { return float64(r.LossMLM) })})
	}
	one := func(id, title, caption, ylabel string, pts []pt, color string, y axis) {
		ss := []series{{name: title, color: color, pts: pts}}
		y.label = ylabel
		c := &lineChart{id: id, small: true, x: step, y: y, series: ss}
		s.fig(figure{ID: id, Title: title, Caption: caption, SVG: c.render()})
	}
	cl := &lineChart{id: "plot-loss", wide: true, x: step, y: axis{label: "loss"}, series: losses}
	s.fig(figure{ID: cl.id, Title: "Loss", Caption: fmt.Sprintf("Per step%s.", thinNote(len(rows))), SVG: cl.render(), Legend: legend(cl.id, losses), Wide: true})
	one("plot-accuracy", "Instance-discrimination accuracy", "Anchors whose most similar candidate is their own positive.", "accuracy",
		get(func(r schemas.TrainHistory) float64 { return float64(r.Accuracy) }), "#4e79a7", axis{zero: true, pct: true})
	one("plot-lr", "Learning rate", "Warm-up, then cosine decay.", "learning rate",
		get(func(r schemas.TrainHistory) float64 { return float64(r.LR) }), "#9c755f", axis{zero: true})

	// Std, with the steps where a collapse was detected.
	stdSeries := []series{{name: "embedding std", color: "#e15759", pts: health(func(r schemas.TrainHistory) float32 { return r.Std })}}
	var collapsed series
	collapsed = series{name: "collapse detected", color: "#b00", dots: true}
	for _, r := range rows {
		if r.Collapsed && len(collapsed.pts) < 200 {
			collapsed.pts = append(collapsed.pts, pt{float64(r.Step), float64(r.Std)})
		}
	}
	caption := "Mean per-dimension std of the normalised embeddings; near zero means collapse."
	if len(collapsed.pts) > 0 {
		stdSeries = append(stdSeries, collapsed)
		caption += fmt.Sprintf(" Collapse detected at %d logged steps (red).", len(collapsed.pts))
	}
	cs := &lineChart{id: "plot-std", small: true, x: step, y: axis{label: "std", zero: true}, series: stdSeries}
	s.fig(figure{ID: cs.id, Title: "Embedding std", Caption: caption, SVG: cs.render()})
	one("plot-alignment", "Alignment", "Mean squared distance of positive pairs (lower: views agree).", "alignment",
		health(func(r schemas.TrainHistory) float32 { return r.Alignment }), "#76b7b2", axis{zero: true})
	one("plot-uniformity", "Uniformity", "log E exp(−2|x−y|²) over pairs (lower: spread over the sphere).", "uniformity",
		health(func(r schemas.TrainHistory) float32 { return r.Uniformity }), "#b07aa1", axis{})
	one("plot-rankme", "Effective rank (RankMe)", "Of a rolling sample of embeddings.", "rank",
		health(func(r schemas.TrainHistory) float32 { return r.RankMe }), "#59a14f", axis{zero: true})
	// Domain-mix drift, with the steps where the alert was raised.
	driftSeries := []series{{name: "recent vs trailing domain mix (TV)", color: "#f28e2b", pts: get(func(r schemas.TrainHistory) float64 { return float64(r.DriftMixTV) })}}
	alerts := series{name: "drift alert raised", color: "#b00", dots: true}
	var raised []int64
	prev := false
	for _, r := range rows {
		if r.DriftAlert && !prev {
			raised = append(raised, r.Step)
			if len(alerts.pts) < 200 {
				alerts.pts = append(alerts.pts, pt{float64(r.Step), float64(r.DriftMixTV)})
			}
		}
		prev = r.DriftAlert
	}
	caption = "Total variation between the domain mix trained on over the last ~20 s and the trailing ~10 min; thresher_train_drift_alert is raised above drift_alert (default 0.1)."
	if len(raised) > 0 {
		driftSeries = append(driftSeries, alerts)
		times := fmt.Sprintf("%d times", len(raised))
		if len(raised) == 1 {
			times = "once"
		}
		caption += fmt.Sprintf(" Alert raised %s (red), first at step %d.", times, raised[0])
	}
	cd := &lineChart{id: "plot-drift", small: true, x: step, y: axis{label: "total variation", zero: true}, series: driftSeries}
	s.fig(figure{ID: cd.id, Title: "Domain-mix drift", Caption: caption, SVG: cd.render()})
	ss := []series{{name: "curriculum stage", color: "#edc948", step: true, pts: get(func(r schemas.TrainHistory) float64 { return float64(r.Stage) })}}
	c := &lineChart{id: "plot-stage", small: true, x: step, y: axis{label: "highest open stage", zero: true, whole: true}, series: ss}
	s.fig(figure{ID: c.id, Title: "Curriculum stage", Caption: "Highest stage open in each batch.", SVG: c.render()})
	return s
}

func thinNote(n int) string {
	if n <= maxPoints {
		return ""
	}
	return fmt.Sprintf(", averaged over %d consecutive steps", (n+maxPoints-1)/maxPoints)
}

// probeKey identifies one curve of the probes section.
type probeKey struct {
	task, classifier string
	lpc              int32
}

func probesSection(d *lakeData, sum *Summary) *section {
	s := newSection(secProbes, "Probes",
		"Test accuracy of probes on the frozen encoder's embeddings of labeled tasks (the eval table), against hashed TF-IDF and a randomly initialised encoder of the same shape, over checkpoints.")
	if err := d.errs[secProbes]; err != nil && len(d.evals) == 0 {
		return s.fail(err)
	}
	var rows, decisions []schemas.Eval
	for _, r := range d.evals {
		switch {
		case r.Metric == metricDecision:
			decisions = append(decisions, r)
		case r.Metric == metricAccuracy && r.Features != "":
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return s.empty("No data yet: the eval table holds no accuracy. Run a trainer with periodic evaluation, or thresher demo, which scores its encoder on the bundled task.")
	}
	// The newest row of each (step, task, features, classifier, labels).
	type full struct {
		probeKey
		step     int64
		features string
	}
	latest := map[full]schemas.Eval{}
	for _, r := range rows {
		latest[full{probeKey{r.Task, r.Classifier, r.LabelsPerClass}, r.Step, r.Features}] = r
	}
	curves := map[probeKey]map[string][]schemas.Eval{}
	for k, r := range latest {
		if curves[k.probeKey] == nil {
			curves[k.probeKey] = map[string][]schemas.Eval{}
		}
		curves[k.probeKey][k.features] = append(curves[k.probeKey][k.features], r)
	}
	keys := make([]probeKey, 0, len(curves))
	for k := range curves {
		keys = append(keys, k)
	}
	lpcOrder := func(l int32) int64 {
		if l <= 0 {
			return math.MaxInt32
		}
		return int64(l)
	}
	classOrder := func(c string) int {
		if c == "linear" {
			return 0
		}
		return 1
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.task != b.task {
			return a.task < b.task
		}
		if classOrder(a.classifier) != classOrder(b.classifier) {
			return classOrder(a.classifier) < classOrder(b.classifier)
		}
		if a.classifier != b.classifier {
			return a.classifier < b.classifier
		}
		return lpcOrder(a.lpc) < lpcOrder(b.lpc)
	})
	var promoted []refLine
	seenPromo := map[int64]bool{}
	for _, r := range decisions {
		if r.Promoted && !seenPromo[r.Step] {
			seenPromo[r.Step] = true
			promoted = append(promoted, refLine{at: float64(r.Step), label: "promoted", vertical: true, color: "#59a14f"})
		}
	}
	sort.Slice(promoted, func(i, j int) bool { return promoted[i].at < promoted[j].at })
	if len(promoted) > 20 {
		promoted = promoted[len(promoted)-20:]
	}
	style := map[string]series{
		"hybrid":  {color: "#e15759"},
		"encoder": {color: "#4e79a7"},
		"tfidf":   {color: "#f28e2b", dash: "6 3"},
		"random":  {color: "#9c9c9c", dash: "2 3"},
	}
	featOrder := func(f string) int {
		switch f {
		case "hybrid":
			return 0
		case "encoder":
			return 1
		case "tfidf":
			return 2
		case "random":
			return 3
		}
		return 4
	}
	for ki, k := range keys {
		feats := make([]string, 0, len(curves[k]))
		for f := range curves[k] {
			feats = append(feats, f)
		}
		sort.Slice(feats, func(i, j int) bool {
			if featOrder(feats[i]) != featOrder(feats[j]) {
				return featOrder(feats[i]) < featOrder(feats[j])
			}
			return feats[i] < feats[j]
		})
		var ss []series
		for i, f := range feats {
			rs := curves[k][f]
			sort.Slice(rs, func(a, b int) bool { return rs[a].Step < rs[b].Step })
			sr, ok := style[f]
			if !ok {
				sr = series{color: colorFor(3 + i)}
			}
			sr.name, sr.dots = f, true
			for _, r := range rs {
				sr.pts = append(sr.pts, pt{float64(r.Step), r.Value})
				sr.tips = append(sr.tips, fmt.Sprintf("%s at step %d: %.3f ± %.3f over %d draws", f, r.Step, r.Value, r.Std, r.Draws))
			}
			ss = append(ss, sr)
		}
		id := fmt.Sprintf("plot-probe-%d", ki)
		c := &lineChart{id: id, x: axis{label: "checkpoint step", whole: true}, y: axis{label: "test accuracy", zero: true}, series: ss, refs: promoted}
		s.fig(figure{ID: id, Title: fmt.Sprintf("%s: %s probe, %s labels per class", k.task, k.classifier, lpcName(int(k.lpc))),
			Caption: "Mean test accuracy over the label draws (hover a point for its std).", SVG: c.render(), Legend: legend(id, ss)})
	}

	// The newest figures of each task, and the headline probe.
	newest := map[string]int64{}
	for _, r := range rows {
		newest[r.Task] = max(newest[r.Task], r.Step)
	}
	macro := map[full]schemas.Eval{}
	for _, r := range d.evals {
		if r.Metric == metricMacroF1 {
			macro[full{probeKey{r.Task, r.Classifier, r.LabelsPerClass}, r.Step, r.Features}] = r
		}
	}
	var t strings.Builder
	t.WriteString(`<table><tr><th>task</th><th>step</th><th>features</th><th>classifier</th><th>labels/class</th><th>accuracy</th><th>macro-F1</th><th>draws</th></tr>`)
	var tableRows []full
	for k := range latest {
		if k.step == newest[k.task] {
			tableRows = append(tableRows, k)
		}
	}
	sort.Slice(tableRows, func(i, j int) bool {
		a, b := tableRows[i], tableRows[j]
		switch {
		case a.task != b.task:
			return a.task < b.task
		case a.classifier != b.classifier:
			return classOrder(a.classifier) < classOrder(b.classifier) || classOrder(a.classifier) == classOrder(b.classifier) && a.classifier < b.classifier
		case a.lpc != b.lpc:
			return lpcOrder(a.lpc) < lpcOrder(b.lpc)
		}
		return featOrder(a.features) < featOrder(b.features) || featOrder(a.features) == featOrder(b.features) && a.features < b.features
	})
	for _, k := range tableRows {
		r := latest[k]
		f1s := "-"
		if m, ok := macro[k]; ok {
			f1s = fmt.Sprintf("%.3f ± %.3f", m.Value, m.Std)
		}
		fmt.Fprintf(&t, `<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%.3f ± %.3f</td><td>%s</td><td>%d</td></tr>`,
			esc(r.Task), r.Step, esc(r.Features), esc(r.Classifier), lpcName(int(r.LabelsPerClass)), r.Value, r.Std, f1s, r.Draws)
	}
	t.WriteString(`</table>`)
	s.Tables = append(s.Tables, template.HTML(t.String()))

	// Headline: the newest step with an encoder accuracy; its linear probe
	// (else any) at the fewest labels per class.
	var best *full
	for k := range latest {
		if k.features != "encoder" {
			continue
		}
		if best == nil || k.step > best.step ||
			k.step == best.step && (classOrder(k.classifier) < classOrder(best.classifier) ||
				classOrder(k.classifier) == classOrder(best.classifier) && (lpcOrder(k.lpc) < lpcOrder(best.lpc) ||
					lpcOrder(k.lpc) == lpcOrder(best.lpc) && k.task < best.task)) {
			kk := k
			best = &kk
		}
	}
	if best != nil {
		p := &Probe{Task: best.task, Step: best.step, Classifier: best.classifier, LabelsPerClass: int(best.lpc),
			Encoder: latest[*best].Value, Hybrid: math.NaN(), TFIDF: math.NaN(), Random: math.NaN()}
		if r, ok := latest[full{best.probeKey, best.step, "hybrid"}]; ok {
			p.Hybrid = r.Value
		}
		if r, ok := latest[full{best.probeKey, best.step, "tfidf"}]; ok {
			p.TFIDF = r.Value
		}
		if r, ok := latest[full{best.probeKey, best.step, "random"}]; ok {
			p.Random = r.Value
		}
		sum.Probe = p
	}
	return s
}

func embeddingsSection(ctx context.Context, store lake.Store, d *lakeData, opts Options, sum *Summary) (*section, error) {
	s := newSection(secEmbeddings, "Embeddings", "")
	ck, key, err := train.NewCheckpointStore(store, 1, opts.Log).Load(ctx)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, train.ErrNoCheckpoint):
		return s.empty("No checkpoint yet: run thresher train on this lake; this section then embeds a sample of the curated records with its encoder."), nil
	case err != nil:
		return s.fail(err), nil
	}
	sum.Checkpoint = key
	if ck.Meta.Step > sum.Steps {
		sum.Steps, sum.ExamplesSeen = ck.Meta.Step, ck.Meta.ExamplesSeen
	}
	if opts.Sample < 0 {
		return s.empty("Skipped: no sample was asked for."), nil
	}
	if d.committed == 0 {
		return s.empty("No data yet: the curated table is empty. Run thresher curate."), nil
	}
	enc, err := train.LoadEncoder(ck.Learner)
	if err != nil {
		return s.fail(fmt.Errorf("%s: %w", key, err)), nil
	}
	sample, err := sampleCurated(ctx, store, d.committed, opts.Sample, opts.Seed)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return s.fail(err), nil
	}
	if len(sample) < 3 {
		return s.empty("Too few curated records to project."), nil
	}
	texts := make([]string, len(sample))
	for i, r := range sample {
		texts[i] = r.text
	}
	vecs := enc.Embed(texts)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	proj, explained := pca(vecs, 2)
	groups := map[string]*series{}
	perDomain := map[string]int{}
	for i, r := range sample {
		g := groups[r.domain]
		if g == nil {
			g = &series{name: r.domain, color: d.color(r.domain), dots: true}
			groups[r.domain] = g
		}
		perDomain[r.domain]++
		g.pts = append(g.pts, pt{proj[i][0], proj[i][1]})
		g.tips = append(g.tips, r.domain+": "+snippet(r.text, 120))
	}
	names := sortedKeys(perDomain)
	// Legend order follows the lake's domain order where known.
	rank := map[string]int{}
	for i, n := range d.domains {
		rank[n] = i
	}
	sort.SliceStable(names, func(i, j int) bool {
		ri, okI := rank[names[i]]
		rj, okJ := rank[names[j]]
		if okI && okJ {
			return ri < rj
		}
		return okI && !okJ
	})
	var ss []series
	var counts []string
	for _, n := range names {
		ss = append(ss, *groups[n])
		counts = append(counts, fmt.Sprintf("%s %d", n, perDomain[n]))
	}
	s.Intro = fmt.Sprintf("%d curated records, stratified by domain (%s), embedded with the encoder of checkpoint %s (step %d) and projected on their first two principal components.",
		len(sample), strings.Join(counts, ", "), key, ck.Meta.Step)
	c := &scatterChart{id: "plot-embeddings", xlabel: fmt.Sprintf("PC1 (%.1f%% of variance)", 100*explained[0]),
		ylabel: fmt.Sprintf("PC2 (%.1f%% of variance)", 100*explained[1]), groups: ss}
	s.fig(figure{ID: c.id, Title: "Curated records by the trained encoder (PCA)",
		Caption: "Records of a domain that cluster apart are ones the encoder tells apart without labels. Hover a point for its text; click a domain to hide it.",
		SVG:     c.render(), Legend: legend(c.id, ss), Wide: true})
	return s, nil
}

// snippet shortens a text to n runes on one line.
func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
