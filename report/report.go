// Package report renders a lake as one self-contained HTML page for people:
// what came in, what curate kept and why, how the domains balance, the
// curriculum, how training went and whether the encoder beats the
// baselines, with plots drawn as inline SVG by Go. The page loads nothing
// (no network, no CDN, no external file): it can be mailed, archived or
// opened from a CI artifact as it is.
//
// # Sections
//
// Build reads the lake and writes, under a title with the lake's path and
// the generation time:
//
//   - summary: a table of headline numbers: records in, kept, duplicate
//     rate, filtered, domains, curate windows, steps trained, examples
//     seen, the checkpoint, and the latest probe accuracy of the encoder
//     against TF-IDF and the random encoder;
//   - timeline (audit/records: kafka_ts, domain, decision): records and
//     duplicate rate (exact and near duplicates over records) per domain
//     over time, in Options.Buckets equal time buckets;
//   - distributions (audit/records): character entropy, word entropy and
//     length in words, each domain's share of its records per bin over the
//     share of all records;
//   - balance (audit/summary, summed over windows): each domain's share of
//     the input records against an even share, its share of the kept
//     records, its gap to the target (the mean target similarity of all
//     records minus the domain's, weighted by records: above zero, less
//     like the target than the stream), its share per window, and a table;
//   - curriculum (curriculum, the newest plan version; audit/records'
//     difficulty of kept records): records per stage with its difficulty
//     range, the difficulty distribution with the stage boundaries, and
//     how many stages each pacing (linear, root, step) has opened at each
//     point of training;
//   - training (train/history): losses, instance-discrimination accuracy,
//     learning rate, the health figures (embedding std, alignment,
//     uniformity, RankMe; steps where a collapse was detected marked) and
//     the open curriculum stage over steps;
//   - probes (eval): test accuracy of the linear probe on each task and
//     label budget over steps, the encoder against the tfidf and random
//     baselines, promotions marked, and a table of the newest figures;
//   - embeddings: a sample of curated records (Options.Sample, stratified
//     by domain) embedded with the encoder of the lake's current checkpoint
//     (checkpoints/CURRENT, as the trainer resumes) and projected on their
//     first two principal components, coloured by domain.
//
// The curate tables are read up to curate.CommittedWindow, as every
// reader of them does. A section whose tables are missing or empty says so
// ("no data yet") and names the command that fills it; a table that cannot
// be read is reported in its section (and in Summary.Sections) without
// failing the page.
//
// # Marks
//
// Every chart is an svg element of class "plot" with an id; each element
// that shows data (a line's path, a point, a bar) has class "mark", and
// the svg's data-marks attribute counts them. A short inline script checks,
// once the page is laid out, how many marks the browser actually drew with
// a non-empty box, writes that to data-drawn, and sets data-report-ready on
// the body; tests read both from the DOM headless Chromium dumps. Clicking
// a legend entry hides or shows its series.
//
// Build reads the lake only; it is safe to run beside the writers.
package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/sampler"
	"github.com/thresher-ml/thresher/schemas"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("report: invalid configuration")

// Defaults of Options.
const (
	DefaultSample  = 1000
	DefaultBuckets = 40
	DefaultSeed    = 1
	// MaxSample bounds Options.Sample: every sampled record is a point
	// with a tooltip in the page.
	MaxSample = 20000
)

// Options configures Build.
type Options struct {
	// LakePath is the lake's location as shown in the title ("" shows none).
	LakePath string `yaml:"lake_path"`
	// Now is the generation time shown (zero: the time Build runs).
	Now time.Time `yaml:"-"`
	// Sample is how many curated records the embeddings section embeds
	// (DefaultSample); -1 skips the section.
	Sample int `yaml:"sample"`
	// Seed seeds the embedding sample (DefaultSeed).
	Seed uint64 `yaml:"seed"`
	// Buckets is the number of time buckets of the timeline (DefaultBuckets).
	Buckets int `yaml:"buckets"`
	// TargetWeight is the sampler's target_weight the domain balance
	// section shows the favoured shares for, on a lake curated with a
	// target sample (0: the sampler's default; negative: off).
	TargetWeight float64 `yaml:"target_weight"`
	// Log receives what Build notices (nil: discarded).
	Log *slog.Logger `yaml:"-"`
}

// SetDefaults fills every zero field with its default.
func (o *Options) SetDefaults() {
	if o.Sample == 0 {
		o.Sample = DefaultSample
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.TargetWeight == 0 {
		o.TargetWeight = sampler.DefaultTargetWeight
	}
	if o.Buckets == 0 {
		o.Buckets = DefaultBuckets
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem at once, wrapped in ErrConfig.
func (o *Options) Validate() error {
	var errs []string
	if o.Sample < -1 || o.Sample > MaxSample {
		errs = append(errs, fmt.Sprintf("sample: %d is not -1 or in [1, %d]", o.Sample, MaxSample))
	}
	if o.Buckets < 1 || o.Buckets > 1000 {
		errs = append(errs, fmt.Sprintf("buckets: %d is not in [1, 1000]", o.Buckets))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

// Section ids, in page order.
const (
	secSummary       = "summary"
	secTimeline      = "timeline"
	secDistributions = "distributions"
	secBalance       = "balance"
	secCurriculum    = "curriculum"
	secTraining      = "training"
	secProbes        = "probes"
	secEmbeddings    = "embeddings"
)

// Section describes one section of a built page.
type Section struct {
	ID    string
	Title string
	// Charts is the ids of the charts drawn, with the number of marks each.
	Charts map[string]int
	// Note is set when the section has no data yet, or could not be read
	// (then Err is set too).
	Note string
	Err  error
}

// Probe is the newest linear-probe figure of the encoder and the
// baselines on one task, at one label budget.
type Probe struct {
	Task           string
	Step           int64
	Classifier     string
	LabelsPerClass int // 0 means all
	// Test accuracy; NaN when that feature set was not scored there.
	Hybrid, Encoder, TFIDF, Random float64
}

// Summary holds the headline numbers of a built page and what each
// section holds.
type Summary struct {
	Records, Kept, ExactDuplicates, NearDuplicates, Filtered int64
	DupRate                                                  float64 // (exact + near) / records
	Windows                                                  int64   // committed curate windows
	Domains                                                  int
	Steps                                                    int64 // newest trained step known; -1 when none
	ExamplesSeen                                             int64
	Checkpoint                                               string // key of the current checkpoint, "" when none
	Probe                                                    *Probe // nil when nothing was evaluated
	Sections                                                 []Section
}

// Section returns the section with the id, or nil.
func (s *Summary) Section(id string) *Section {
	for i := range s.Sections {
		if s.Sections[i].ID == id {
			return &s.Sections[i]
		}
	}
	return nil
}

// Build reads the lake in store and writes the report page to w. It fails
// only on a bad configuration, a cancelled ctx or a failed write; a table
// that is missing or unreadable shows in its section instead.
func Build(ctx context.Context, store lake.Store, w io.Writer, opts Options) (*Summary, error) {
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	d := &lakeData{colors: map[string]string{}, errs: map[string]error{}}
	if err := d.loadCurate(ctx, store); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.errs[secTimeline], d.errs[secBalance], d.errs[secCurriculum] = err, err, err
	}
	var err error
	if d.history, err = readTable[schemas.TrainHistory](ctx, store, schemas.TableTrainHistory); err != nil {
		d.errs[secTraining] = err
	}
	if d.evals, err = readTable[schemas.Eval](ctx, store, schemas.TableEval); err != nil {
		d.errs[secProbes] = err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	p := &page{
		Title:     "thresher report",
		Lake:      opts.LakePath,
		Generated: opts.Now.UTC().Format("2006-01-02 15:04:05 MST"),
	}
	sum := &Summary{Steps: -1, Windows: d.committed, Domains: len(d.domains)}
	p.add(timelineSection(d, opts))
	p.add(distributionsSection(d))
	p.add(balanceSection(d, sum, opts))
	p.add(curriculumSection(d))
	p.add(trainingSection(d, sum))
	p.add(probesSection(d, sum))
	emb, err := embeddingsSection(ctx, store, d, opts, sum)
	if err != nil {
		return nil, err
	}
	p.add(emb)
	fillSummary(d, sum)
	p.Headline = headline(sum, d)
	for _, s := range p.Sections {
		sum.Sections = append(sum.Sections, s.meta)
		if s.meta.Err != nil {
			opts.Log.Warn("report section could not be read", "section", s.meta.ID, "err", s.meta.Err)
		}
	}
	if err := p.write(w); err != nil {
		return nil, fmt.Errorf("report: write: %w", err)
	}
	return sum, nil
}

// fillSummary sets the curate figures of sum.
func fillSummary(d *lakeData, sum *Summary) {
	var haveStar bool
	for _, s := range d.summary {
		if s.Domain != "*" {
			continue
		}
		haveStar = true
		sum.Records += s.Records
		sum.Kept += s.Kept
		sum.ExactDuplicates += s.ExactDuplicates
		sum.NearDuplicates += s.NearDuplicates
		sum.Filtered += s.Filtered
	}
	if !haveStar {
		for _, r := range d.records {
			sum.Records++
			switch r.decision {
			case decKept:
				sum.Kept++
			case decExact:
				sum.ExactDuplicates++
			case decNear:
				sum.NearDuplicates++
			case decFiltered:
				sum.Filtered++
			}
		}
	}
	if sum.Records > 0 {
		sum.DupRate = float64(sum.ExactDuplicates+sum.NearDuplicates) / float64(sum.Records)
	}
}

// headline is the summary table's rows.
func headline(sum *Summary, d *lakeData) [][2]string {
	na := "no data yet"
	pct := func(a, b int64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
	}
	rows := [][2]string{}
	if sum.Records > 0 {
		rows = append(rows,
			[2]string{"records in", fmt.Sprintf("%d in %d curate windows", sum.Records, sum.Windows)},
			[2]string{"kept", fmt.Sprintf("%d (%s)", sum.Kept, pct(sum.Kept, sum.Records))},
			[2]string{"duplicate rate", fmt.Sprintf("%s (%d exact, %d near duplicates)", pct(sum.ExactDuplicates+sum.NearDuplicates, sum.Records), sum.ExactDuplicates, sum.NearDuplicates)},
			[2]string{"filtered by quality", fmt.Sprintf("%d (%s)", sum.Filtered, pct(sum.Filtered, sum.Records))},
			[2]string{"domains", fmt.Sprintf("%d: %s", len(d.domains), strings.Join(d.domains, ", "))},
		)
	} else {
		rows = append(rows, [2]string{"records in", na + " (run thresher ingest, then thresher curate)"})
	}
	if sum.Steps >= 0 {
		v := fmt.Sprintf("%d", sum.Steps)
		if sum.ExamplesSeen > 0 {
			v += fmt.Sprintf(" (%d examples seen)", sum.ExamplesSeen)
		}
		rows = append(rows, [2]string{"steps trained", v})
	} else {
		rows = append(rows, [2]string{"steps trained", na + " (run thresher train)"})
	}
	if sum.Checkpoint != "" {
		rows = append(rows, [2]string{"checkpoint", sum.Checkpoint})
	}
	if p := sum.Probe; p != nil {
		v := fmt.Sprintf("encoder %s vs TF-IDF %s, random encoder %s", fmtAcc(p.Encoder), fmtAcc(p.TFIDF), fmtAcc(p.Random))
		if !math.IsNaN(p.Hybrid) {
			v = fmt.Sprintf("hybrid %s, ", fmtAcc(p.Hybrid)) + v
		}
		if !math.IsNaN(p.Encoder) && !math.IsNaN(p.TFIDF) {
			if p.Encoder > p.TFIDF {
				v += fmt.Sprintf(" (encoder ahead by %.3f)", p.Encoder-p.TFIDF)
			} else {
				v += fmt.Sprintf(" (TF-IDF ahead by %.3f)", p.TFIDF-p.Encoder)
			}
		}
		rows = append(rows, [2]string{"latest probe accuracy", v},
			[2]string{"probe", fmt.Sprintf("%s, %s probe, %s labels per class, step %d", p.Task, p.Classifier, lpcName(p.LabelsPerClass), p.Step)})
	} else {
		rows = append(rows, [2]string{"latest probe accuracy", na + " (run thresher eval, or a trainer with periodic evaluation)"})
	}
	return rows
}

func fmtAcc(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func lpcName(l int) string {
	if l <= 0 {
		return "all"
	}
	return fmt.Sprint(l)
}
