package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The charts are inline SVG drawn here. Every element that shows data (a
// series' path, a point, a bar) has class "mark"; a chart's svg element
// carries data-marks, the number of them, which the page's script compares
// with what the browser actually laid out (see page.go).

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW      = 600
	chartH      = 260
	smallW      = 420
	smallH      = 200
	wideW       = 1100
	wideH       = 280
	marginLeft  = 58
	marginRight = 14
	marginTop   = 12
	marginBot   = 40
)

// palette is Tableau 10: distinguishable, and readable for the common
// colour-vision deficiencies when lines also differ by dash.
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// colorFor returns a stable colour for the i-th name of a list.
func colorFor(i int) string {
	if i < len(palette) {
		return palette[i]
	}
	return fmt.Sprintf("hsl(%d,55%%,45%%)", (i*67)%360)
}

// pt is one point of a series.
type pt struct{ x, y float64 }

// series is one line (or set of points) of a chart.
type series struct {
	name  string
	color string
	pts   []pt
	tips  []string // per point; empty for none
	dash  string   // SVG stroke-dasharray, "" for solid
	dots  bool     // draw a point at every value
	step  bool     // draw as a step function (value holds until the next x)
	width float64  // stroke width (default 2)
}

// axis describes one axis of a line chart.
type axis struct {
	label  string
	time   bool // values are Unix milliseconds, shown as UTC times
	pct    bool // values are fractions, shown as percentages
	zero   bool // the range includes 0
	lo, hi float64
	fixed  bool // lo and hi are the range, not derived from the data
	whole  bool // values are whole numbers: ticks at least 1 apart
}

// refLine is a labelled horizontal or vertical reference line.
type refLine struct {
	at       float64
	label    string
	vertical bool
	color    string
}

// lineChart is a chart of series over a numeric (or time) x axis.
type lineChart struct {
	id     string
	small  bool
	wide   bool
	x, y   axis
	series []series
	refs   []refLine
}

// scale maps data values to pixels.
type scale struct {
	d0, d1 float64 // data range
	p0, p1 float64 // pixel range
}

func (s scale) at(v float64) float64 {
	if s.d1 == s.d0 {
		return (s.p0 + s.p1) / 2
	}
	return s.p0 + (v-s.d0)/(s.d1-s.d0)*(s.p1-s.p0)
}

// niceStep returns a step of 1, 2 or 5 times a power of ten near span/n.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// niceRange widens [lo, hi] to multiples of a nice step and returns the
// ticks.
func niceRange(lo, hi float64, n int) (float64, float64, []float64) {
	return niceRangeMin(lo, hi, n, 0)
}

// niceRangeMin is niceRange with a smallest step.
func niceRangeMin(lo, hi float64, n int, minStep float64) (float64, float64, []float64) {
	if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) {
		lo, hi = 0, 1
	}
	if hi <= lo {
		d := math.Max(math.Abs(lo)*0.1, 1e-9)
		if lo == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	step := math.Max(niceStep(hi-lo, n), minStep)
	lo = math.Floor(lo/step+1e-9) * step
	hi = math.Ceil(hi/step-1e-9) * step
	var ticks []float64
	for v := lo; v <= hi+step*1e-6; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return lo, hi, ticks
}

// timeSteps are the tick spacings of a time axis, in milliseconds.
var timeSteps = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500,
	1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3,
	3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 30 * 86400e3,
	91 * 86400e3, 182 * 86400e3, 365 * 86400e3}

// timeTicks returns the ticks of a time axis over [lo, hi] (Unix ms) and
// the layout that labels them.
func timeTicks(lo, hi float64, n int) ([]float64, string) {
	span := hi - lo
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= float64(n) {
			step = s
			break
		}
	}
	var ticks []float64
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		ticks = append(ticks, v)
	}
	layout := "2006-01-02"
	switch {
	case step < 1e3:
		layout = "15:04:05.000"
	case step < 60e3:
		layout = "15:04:05"
	case step < 86400e3:
		layout = "Jan 2 15:04"
	}
	return ticks, layout
}

// formatNum prints a value for an axis whose ticks are step apart, with
// as many decimals as the step needs.
func formatNum(v, step float64, pct bool) string {
	if pct {
		v, step = v*100, step*100
	}
	if math.Abs(v) < math.Abs(step)*1e-6 {
		v = 0
	}
	var s string
	switch a := math.Abs(v); {
	case !pct && step > 0 && step < 1e-3:
		if v == 0 {
			s = "0"
			break
		}
		e := math.Floor(math.Log10(step))
		d := max(0, int(math.Floor(math.Log10(a))-e)) + decimalsOf(step/math.Pow(10, e))
		s = strconv.FormatFloat(v, 'e', d, 64)
	case a >= 1e6 && step >= 1e5:
		s = strconv.FormatFloat(v/1e6, 'f', decimalsOf(step/1e6), 64) + "M"
	case a >= 1e4 && step >= 1e3:
		s = strconv.FormatFloat(v/1e3, 'f', decimalsOf(step/1e3), 64) + "k"
	default:
		s = strconv.FormatFloat(v, 'f', decimalsOf(step), 64)
	}
	if pct {
		s += "%"
	}
	return s
}

// decimalsOf is the number of decimals that write step exactly (at most 9).
func decimalsOf(step float64) int {
	step = math.Abs(step)
	if step == 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return 0
	}
	for d := 0; d < 9; d++ {
		m := step * math.Pow(10, float64(d))
		if math.Abs(m-math.Round(m)) < 1e-6*math.Max(m, 1) {
			return d
		}
	}
	return 9
}

// fmtTip formats a value for a tooltip.
func fmtTip(v float64, a axis) string {
	switch {
	case a.time:
		return time.UnixMilli(int64(v)).UTC().Format("2006-01-02 15:04:05.000")
	case a.pct:
		return strconv.FormatFloat(100*v, 'f', 2, 64) + "%"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func esc(s string) string { return html.EscapeString(s) }

// f1 prints a coordinate with one decimal.
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// svgOpen starts a chart's svg element.
func svgOpen(b *strings.Builder, id, kind string, w, h int) {
	fmt.Fprintf(b, `<svg class="plot" id="%s" data-kind="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`,
		esc(id), kind, w, h, w, h)
}

// svgClose ends the chart, recording the number of marks drawn.
func svgClose(b *strings.Builder, marks int) template.HTML {
	b.WriteString("</svg>")
	s := b.String()
	// data-marks goes on the opening tag, known only now.
	i := strings.Index(s, ">")
	return template.HTML(s[:i] + fmt.Sprintf(` data-marks="%d"`, marks) + s[i:])
}

// render draws the chart.
func (c *lineChart) render() template.HTML {
	w, h := chartW, chartH
	switch {
	case c.small:
		w, h = smallW, smallH
	case c.wide:
		w, h = wideW, wideH
	}
	// Data ranges.
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for _, p := range s.pts {
			if math.IsNaN(p.y) || math.IsInf(p.y, 0) {
				continue
			}
			xlo, xhi = math.Min(xlo, p.x), math.Max(xhi, p.x)
			ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
		}
	}
	for _, r := range c.refs {
		if r.vertical {
			xlo, xhi = math.Min(xlo, r.at), math.Max(xhi, r.at)
		} else {
			ylo, yhi = math.Min(ylo, r.at), math.Max(yhi, r.at)
		}
	}
	if c.x.fixed {
		xlo, xhi = c.x.lo, c.x.hi
	}
	if c.y.fixed {
		ylo, yhi = c.y.lo, c.y.hi
	}
	if c.y.zero {
		ylo, yhi = math.Min(ylo, 0), math.Max(yhi, 0)
	}
	if math.IsInf(xlo, 0) {
		xlo, xhi = 0, 1
	}
	if math.IsInf(ylo, 0) {
		ylo, yhi = 0, 1
	}
	var xticks []float64
	var xlayout string
	if c.x.time {
		if xhi <= xlo {
			xlo, xhi = xlo-500, xhi+500
		}
		xticks, xlayout = timeTicks(xlo, xhi, 5)
	} else if !c.x.fixed {
		xlo, xhi, xticks = niceRangeMin(xlo, xhi, 5, minStep(c.x))
	} else {
		_, _, xticks = niceRangeMin(xlo, xhi, 5, minStep(c.x))
	}
	if !c.y.fixed {
		ylo, yhi, _ = niceRangeMin(ylo, yhi, 4, minStep(c.y))
	}
	_, _, yticks := niceRangeMin(ylo, yhi, 4, minStep(c.y))
	sx := scale{xlo, xhi, marginLeft, float64(w - marginRight)}
	sy := scale{ylo, yhi, float64(h - marginBot), marginTop}

	var b strings.Builder
	svgOpen(&b, c.id, "line", w, h)
	drawAxes(&b, w, h, sx, sy, xticks, yticks, func(v float64) string {
		if c.x.time {
			return time.UnixMilli(int64(v)).UTC().Format(xlayout)
		}
		return formatNum(v, tickStep(xticks), c.x.pct)
	}, func(v float64) string { return formatNum(v, tickStep(yticks), c.y.pct) }, c.x.label, c.y.label)
	for _, r := range c.refs {
		col := r.color
		if col == "" {
			col = "#777"
		}
		if r.vertical {
			x := sx.at(r.at)
			tx, anchor := x+3, "start"
			if x > float64(w-marginRight-60) {
				tx, anchor = x-3, "end"
			}
			fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="%s" stroke-dasharray="4 3"/><text x="%s" y="%d" class="ref" text-anchor="%s">%s</text>`,
				f1(x), f1(x), marginTop, h-marginBot, col, f1(tx), marginTop+10, anchor, esc(r.label))
		} else {
			y := sy.at(r.at)
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/><text x="%d" y="%s" class="ref" text-anchor="end">%s</text>`,
				marginLeft, w-marginRight, f1(y), f1(y), col, w-marginRight-2, f1(y-3), esc(r.label))
		}
	}
	marks := 0
	for i, s := range c.series {
		marks += drawSeries(&b, i, s, sx, sy, c.x, c.y)
	}
	return svgClose(&b, marks)
}

// drawSeries draws one series' path and points; it returns the marks.
func drawSeries(b *strings.Builder, i int, s series, sx, sy scale, ax, ay axis) int {
	width := s.width
	if width == 0 {
		width = 2
	}
	marks := 0
	fmt.Fprintf(b, `<g class="series" data-series="%d">`, i)
	var d strings.Builder
	pen, joined := false, false
	for _, p := range s.pts {
		if math.IsNaN(p.y) || math.IsInf(p.y, 0) {
			pen = false
			continue
		}
		x, y := sx.at(p.x), sy.at(p.y)
		switch {
		case !pen:
			fmt.Fprintf(&d, "M%s %s", f1(x), f1(y))
		case s.step:
			fmt.Fprintf(&d, "H%sV%s", f1(x), f1(y))
			joined = true
		default:
			fmt.Fprintf(&d, "L%s %s", f1(x), f1(y))
			joined = true
		}
		pen = true
	}
	if joined {
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
		}
		fmt.Fprintf(b, `<path class="mark" d="%s" fill="none" stroke="%s" stroke-width="%s"%s><title>%s</title></path>`,
			d.String(), s.color, f1(width), dash, esc(s.name))
		marks++
	}
	// Points: when asked for, or when no two values join into a line.
	if s.dots || !joined {
		for j, p := range s.pts {
			if math.IsNaN(p.y) || math.IsInf(p.y, 0) {
				continue
			}
			tip := s.name + ": " + fmtTip(p.x, ax) + ", " + fmtTip(p.y, ay)
			if j < len(s.tips) && s.tips[j] != "" {
				tip = s.tips[j]
			}
			fmt.Fprintf(b, `<circle class="mark" cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>`,
				f1(sx.at(p.x)), f1(sy.at(p.y)), s.color, esc(tip))
			marks++
		}
	}
	b.WriteString("</g>")
	return marks
}

func minStep(a axis) float64 {
	if a.whole {
		return 1
	}
	return 0
}

func tickStep(ticks []float64) float64 {
	if len(ticks) < 2 {
		return 1
	}
	return ticks[1] - ticks[0]
}

// drawAxes draws the frame, grid, ticks and axis titles.
func drawAxes(b *strings.Builder, w, h int, sx, sy scale, xticks, yticks []float64, xfmt, yfmt func(float64) string, xlabel, ylabel string) {
	bottom, right := h-marginBot, w-marginRight
	b.WriteString(`<g class="axes">`)
	for _, t := range yticks {
		y := sy.at(t)
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/><text x="%d" y="%s" text-anchor="end">%s</text>`,
			marginLeft, right, f1(y), f1(y), marginLeft-5, f1(y+4), esc(yfmt(t)))
	}
	for _, t := range xticks {
		x := sx.at(t)
		if x < marginLeft-0.5 || x > float64(right)+0.5 {
			continue
		}
		fmt.Fprintf(b, `<line class="tick" x1="%s" x2="%s" y1="%d" y2="%d"/><text x="%s" y="%d" text-anchor="middle">%s</text>`,
			f1(x), f1(x), bottom, bottom+4, f1(x), bottom+16, esc(xfmt(t)))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, marginLeft, right, bottom, bottom)
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, marginLeft, marginLeft, marginTop, bottom)
	if xlabel != "" {
		fmt.Fprintf(b, `<text class="title" x="%d" y="%d" text-anchor="middle">%s</text>`, (marginLeft+right)/2, h-6, esc(xlabel))
	}
	if ylabel != "" {
		fmt.Fprintf(b, `<text class="title" transform="translate(13 %d) rotate(-90)" text-anchor="middle">%s</text>`, (marginTop+bottom)/2, esc(ylabel))
	}
	b.WriteString(`</g>`)
}

// bar is one bar of a bar chart.
type bar struct {
	label string
	value float64
	color string
	tip   string
	// dot, when not NaN, draws a second value as a point on the bar's row.
	dot float64
}

// barChart is a horizontal bar chart over categories; values may be
// negative (bars grow from zero either way).
type barChart struct {
	id       string
	xlabel   string
	pct      bool
	bars     []bar
	refs     []refLine // vertical lines at values
	dotLabel string
}

func (c *barChart) render() template.HTML {
	rowH := 22
	w, h := chartW, marginTop+marginBot+rowH*max(1, len(c.bars))
	left := 130
	lo, hi := 0.0, 0.0
	for _, br := range c.bars {
		lo, hi = math.Min(lo, br.value), math.Max(hi, br.value)
		if !math.IsNaN(br.dot) {
			lo, hi = math.Min(lo, br.dot), math.Max(hi, br.dot)
		}
	}
	for _, r := range c.refs {
		lo, hi = math.Min(lo, r.at), math.Max(hi, r.at)
	}
	lo, hi, ticks := niceRange(lo, hi, 5)
	sx := scale{lo, hi, float64(left), float64(w - marginRight)}
	var b strings.Builder
	svgOpen(&b, c.id, "bar", w, h)
	bottom := h - marginBot
	b.WriteString(`<g class="axes">`)
	for _, t := range ticks {
		x := sx.at(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%s" x2="%s" y1="%d" y2="%d"/><text x="%s" y="%d" text-anchor="middle">%s</text>`,
			f1(x), f1(x), marginTop, bottom, f1(x), bottom+16, esc(formatNum(t, tickStep(ticks), c.pct)))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%s" x2="%s" y1="%d" y2="%d"/>`, f1(sx.at(0)), f1(sx.at(0)), marginTop, bottom)
	if c.xlabel != "" {
		fmt.Fprintf(&b, `<text class="title" x="%d" y="%d" text-anchor="middle">%s</text>`, (left+w-marginRight)/2, h-6, esc(c.xlabel))
	}
	b.WriteString(`</g>`)
	marks := 0
	for i, br := range c.bars {
		y := float64(marginTop + i*rowH)
		x0, x1 := sx.at(0), sx.at(br.value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		tip := br.tip
		if tip == "" {
			tip = br.label + ": " + fmtTip(br.value, axis{pct: c.pct})
		}
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`, left-6, f1(y+float64(rowH)*0.68), esc(br.label))
		fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%d" fill="%s"><title>%s</title></rect>`,
			f1(x0), f1(y+3), f1(math.Max(x1-x0, 0.5)), rowH-6, br.color, esc(tip))
		marks++
		if !math.IsNaN(br.dot) {
			fmt.Fprintf(&b, `<circle class="mark" cx="%s" cy="%s" r="4" fill="#222" stroke="#fff"><title>%s</title></circle>`,
				f1(sx.at(br.dot)), f1(y+float64(rowH)/2), esc(br.label+" "+c.dotLabel+": "+fmtTip(br.dot, axis{pct: c.pct})))
			marks++
		}
	}
	for _, r := range c.refs {
		x := sx.at(r.at)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="#333" stroke-dasharray="4 3"/><text class="ref" x="%s" y="%d">%s</text>`,
			f1(x), f1(x), marginTop, bottom, f1(x+3), bottom-4, esc(r.label))
	}
	return svgClose(&b, marks)
}

// histChart draws counts over bins: an overall histogram as grey bars and,
// over it, each series' share per bin as a step line.
type histChart struct {
	id     string
	small  bool
	labels []string // bin labels, one per bin ("": no tick)
	xlabel string
	total  []float64 // share of all records per bin (bars)
	series []series  // pts[i].y is the share in bin i (x ignored)
}

func (c *histChart) render() template.HTML {
	w, h := chartW, chartH
	if c.small {
		w, h = smallW, smallH
	}
	n := len(c.labels)
	hi := 0.0
	for _, v := range c.total {
		hi = math.Max(hi, v)
	}
	for _, s := range c.series {
		for _, p := range s.pts {
			hi = math.Max(hi, p.y)
		}
	}
	_, hi, yticks := niceRange(0, hi, 4)
	sx := scale{0, float64(max(n, 1)), marginLeft, float64(w - marginRight)}
	sy := scale{0, hi, float64(h - marginBot), marginTop}
	var b strings.Builder
	svgOpen(&b, c.id, "hist", w, h)
	bottom := h - marginBot
	b.WriteString(`<g class="axes">`)
	for _, t := range yticks {
		y := sy.at(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/><text x="%d" y="%s" text-anchor="end">%s</text>`,
			marginLeft, w-marginRight, f1(y), f1(y), marginLeft-5, f1(y+4), esc(formatNum(t, tickStep(yticks), true)))
	}
	for i, l := range c.labels {
		if l == "" {
			continue
		}
		x := sx.at(float64(i))
		fmt.Fprintf(&b, `<line class="tick" x1="%s" x2="%s" y1="%d" y2="%d"/><text x="%s" y="%d" text-anchor="start">%s</text>`,
			f1(x), f1(x), bottom, bottom+4, f1(x+1), bottom+16, esc(l))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, marginLeft, w-marginRight, bottom, bottom)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, marginLeft, marginLeft, marginTop, bottom)
	fmt.Fprintf(&b, `<text class="title" x="%d" y="%d" text-anchor="middle">%s</text>`, (marginLeft+w-marginRight)/2, h-6, esc(c.xlabel))
	fmt.Fprintf(&b, `<text class="title" transform="translate(13 %d) rotate(-90)" text-anchor="middle">share of records</text>`, (marginTop+bottom)/2)
	b.WriteString(`</g>`)
	marks := 0
	bw := sx.at(1) - sx.at(0)
	for i, v := range c.total {
		if v <= 0 {
			continue
		}
		y := sy.at(v)
		fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%s" fill="#d5d9de"><title>all domains, %s: %s</title></rect>`,
			f1(sx.at(float64(i))+0.5), f1(y), f1(math.Max(bw-1, 0.5)), f1(float64(bottom)-y), esc(c.labels[i]), esc(fmtTip(v, axis{pct: true})))
		marks++
	}
	for si, s := range c.series {
		fmt.Fprintf(&b, `<g class="series" data-series="%d">`, si)
		var d strings.Builder
		for i, p := range s.pts {
			x0, x1, y := sx.at(float64(i)), sx.at(float64(i+1)), sy.at(p.y)
			if i == 0 {
				fmt.Fprintf(&d, "M%s %s", f1(x0), f1(y))
			} else {
				fmt.Fprintf(&d, "V%s", f1(y))
			}
			fmt.Fprintf(&d, "H%s", f1(x1))
		}
		if d.Len() > 0 {
			fmt.Fprintf(&b, `<path class="mark" d="%s" fill="none" stroke="%s" stroke-width="1.8"><title>%s</title></path>`, d.String(), s.color, esc(s.name))
			marks++
		}
		b.WriteString(`</g>`)
	}
	return svgClose(&b, marks)
}

// scatterChart draws points coloured by group.
type scatterChart struct {
	id     string
	xlabel string
	ylabel string
	groups []series // dots only
}

func (c *scatterChart) render() template.HTML {
	w, h := wideW, 520
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, g := range c.groups {
		for _, p := range g.pts {
			xlo, xhi = math.Min(xlo, p.x), math.Max(xhi, p.x)
			ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
		}
	}
	if math.IsInf(xlo, 0) {
		xlo, xhi, ylo, yhi = -1, 1, -1, 1
	}
	xlo, xhi, xticks := niceRange(xlo, xhi, 6)
	ylo, yhi, yticks := niceRange(ylo, yhi, 6)
	sx := scale{xlo, xhi, marginLeft, float64(w - marginRight)}
	sy := scale{ylo, yhi, float64(h - marginBot), marginTop}
	var b strings.Builder
	svgOpen(&b, c.id, "scatter", w, h)
	drawAxes(&b, w, h, sx, sy, xticks, yticks, func(v float64) string { return formatNum(v, tickStep(xticks), false) },
		func(v float64) string { return formatNum(v, tickStep(yticks), false) }, c.xlabel, c.ylabel)
	marks := 0
	for gi, g := range c.groups {
		fmt.Fprintf(&b, `<g class="series" data-series="%d" fill="%s" fill-opacity="0.75">`, gi, g.color)
		for j, p := range g.pts {
			tip := g.name
			if j < len(g.tips) {
				tip = g.tips[j]
			}
			fmt.Fprintf(&b, `<circle class="mark" cx="%s" cy="%s" r="2.6"><title>%s</title></circle>`, f1(sx.at(p.x)), f1(sy.at(p.y)), esc(tip))
			marks++
		}
		b.WriteString(`</g>`)
	}
	return svgClose(&b, marks)
}

// legend is the HTML legend of a chart's series; clicking an entry hides
// or shows the series (page.go's script).
func legend(chartID string, ss []series) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="legend" data-for="%s">`, esc(chartID))
	for i, s := range ss {
		style := "background:" + s.color
		if s.dash != "" {
			style = fmt.Sprintf("background:repeating-linear-gradient(90deg,%s 0 4px,transparent 4px 7px)", s.color)
		}
		fmt.Fprintf(&b, `<span class="key" data-series="%d"><i style="%s"></i>%s</span>`, i, style, esc(s.name))
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

// sortedKeys returns a map's keys sorted by descending value, then name.
func sortedKeys[V int | int64 | float64](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
