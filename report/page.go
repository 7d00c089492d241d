package report

import (
	"bufio"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// page is what the template renders.
type page struct {
	Title     string
	Lake      string
	Generated string
	Headline  [][2]string
	Sections  []*section
}

// section is one section of the page.
type section struct {
	meta    Section
	ID      string
	Title   string
	Intro   string
	Note    string
	Figures []figure
	Tables  []template.HTML
}

// figure is one chart with its caption and legend.
type figure struct {
	ID      string
	Title   string
	Caption string
	SVG     template.HTML
	Legend  template.HTML
	Wide    bool
	Width   int // of the chart, which the caption does not exceed
}

func newSection(id, title, intro string) *section {
	return &section{ID: id, Title: title, Intro: intro, meta: Section{ID: id, Title: title, Charts: map[string]int{}}}
}

// fig adds a chart.
func (s *section) fig(f figure) {
	f.Width = attrInt(f.SVG, "width")
	s.Figures = append(s.Figures, f)
	s.meta.Charts[f.ID] = attrInt(f.SVG, "data-marks")
}

// empty marks the section as holding no data yet.
func (s *section) empty(note string) *section {
	s.Note = note
	s.meta.Note = note
	return s
}

// fail marks the section as unreadable.
func (s *section) fail(err error) *section {
	s.Note = "could not read this section's data: " + err.Error()
	s.meta.Note, s.meta.Err = s.Note, err
	return s
}

func (p *page) add(s *section) { p.Sections = append(p.Sections, s) }

// attrInt reads a numeric attribute of a chart's svg element.
func attrInt(svg template.HTML, name string) int {
	s := string(svg)
	if end := strings.IndexByte(s, '>'); end >= 0 {
		s = s[:end]
	}
	i := strings.Index(s, " "+name+`="`)
	if i < 0 {
		return 0
	}
	s = s[i+len(name)+3:]
	n, _ := strconv.Atoi(s[:strings.IndexByte(s, '"')])
	return n
}

func (p *page) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := pageTemplate.Execute(bw, p); err != nil {
		return err
	}
	return bw.Flush()
}

// pageTemplate is the whole page: styles and script inline, nothing
// loaded from anywhere.
var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}{{if .Lake}}: {{.Lake}}{{end}}</title>
<style>
:root { --fg: #1d2329; --muted: #5f6b76; --line: #e3e7eb; --bg: #fff; --panel: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: var(--muted); }
header code { font-size: 13px; }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); background: var(--panel); position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 16px; color: var(--fg); text-decoration: none; font-weight: 500; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { margin-top: 24px; }
h2 { font-size: 18px; margin: 0 0 4px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.intro { color: var(--muted); margin: 4px 0 12px; max-width: 900px; }
p.note { background: #fff8e1; border: 1px solid #f0dc9c; padding: 8px 12px; border-radius: 4px; max-width: 900px; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; padding: 10px 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
figure.wide { flex-basis: 100%; }
figcaption { margin-bottom: 6px; }
figcaption b { display: block; }
figcaption span { color: var(--muted); font-size: 13px; }
svg.plot { display: block; max-width: 100%; height: auto; background: #fff; }
svg.plot text { font-size: 11px; fill: #44505c; }
svg.plot text.title { font-size: 12px; fill: var(--fg); }
svg.plot text.ref { font-size: 10px; fill: #333; }
svg.plot line.grid { stroke: #edf0f2; }
svg.plot line.axis, svg.plot line.tick { stroke: #9aa4ad; }
svg.plot .series.off { display: none; }
.legend { margin-top: 6px; max-width: 600px; }
.legend .key { display: inline-block; margin: 0 12px 2px 0; cursor: pointer; user-select: none; font-size: 12px; }
.legend .key.off { opacity: 0.35; }
.legend i { display: inline-block; width: 14px; height: 4px; margin-right: 5px; vertical-align: middle; border-radius: 1px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; background: var(--panel); }
table.headline td { text-align: left; }
table.headline td:first-child { color: var(--muted); white-space: nowrap; }
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<div class="meta">{{if .Lake}}lake <code>{{.Lake}}</code> · {{end}}generated {{.Generated}}</div>
</header>
<nav><a href="#summary">summary</a>{{range .Sections}}<a href="#{{.ID}}">{{.Title}}</a>{{end}}</nav>
<main>
<section id="summary">
<h2>Summary</h2>
<table class="headline">
{{range .Headline}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</table>
</section>
{{range .Sections}}
<section id="{{.ID}}" data-section="{{.ID}}"{{if .Note}} data-empty="true"{{end}}>
<h2>{{.Title}}</h2>
{{if .Intro}}<p class="intro">{{.Intro}}</p>{{end}}
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
<div class="grid">
{{range .Figures}}<figure id="fig-{{.ID}}"{{if .Wide}} class="wide"{{end}}>
<figcaption style="max-width: {{.Width}}px"><b>{{.Title}}</b>{{if .Caption}}<span>{{.Caption}}</span>{{end}}</figcaption>
{{.SVG}}
{{.Legend}}
</figure>
{{end}}</div>
{{range .Tables}}{{.}}{{end}}
</section>
{{end}}
</main>
<script>
(function () {
  // Count the marks each chart really drew (a non-empty box once laid out).
  var plots = document.querySelectorAll("svg.plot");
  for (var i = 0; i < plots.length; i++) {
    var marks = plots[i].querySelectorAll(".mark"), drawn = 0;
    for (var j = 0; j < marks.length; j++) {
      var b = marks[j].getBBox();
      if (b.width > 0 || b.height > 0) { drawn++; }
    }
    plots[i].setAttribute("data-drawn", String(drawn));
  }
  // Legend entries hide and show their series.
  var keys = document.querySelectorAll(".legend .key");
  for (var k = 0; k < keys.length; k++) {
    keys[k].addEventListener("click", function (ev) {
      var key = ev.currentTarget, id = key.parentNode.getAttribute("data-for");
      var svg = document.getElementById(id);
      if (!svg) { return; }
      key.classList.toggle("off");
      var gs = svg.querySelectorAll('.series[data-series="' + key.getAttribute("data-series") + '"]');
      for (var g = 0; g < gs.length; g++) { gs[g].classList.toggle("off"); }
    });
  }
  document.body.setAttribute("data-report-ready", String(plots.length));
})();
</script>
</body>
</html>
`))
