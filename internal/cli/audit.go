package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

func runAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "audit", "--lake DIR")
	lakeDir := fs.String("lake", "", "lake `folder` whose audit tables to print")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *lakeDir == "" || fs.NArg() > 0 {
		return usagef("--lake DIR is required and takes no arguments")
	}
	store, err := lake.OpenDir(*lakeDir)
	if err != nil {
		return &UsageError{Err: err}
	}
	return printAudit(ctx, e.stdout, store)
}

// printAudit prints audit/summary aggregated over every window, and the
// newest curriculum plan.
func printAudit(ctx context.Context, w io.Writer, store lake.Store) error {
	rows, err := lake.ReadTable[schemas.AuditSummary](ctx, store, schemas.TableAuditSummary)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no audit yet: run thresher curate on this lake")
		return nil
	}
	type agg struct {
		n, kept, exact, near, filtered, pii, cross int64
		ce, we, words, sim, distinct, overlap      float64
		vocab                                      int64
		windows                                    int
		ent, length                                []int64
	}
	by := map[string]*agg{}
	windows := map[int64]bool{}
	for _, r := range rows {
		windows[r.Window] = true
		a := by[r.Domain]
		if a == nil {
			a = &agg{ent: make([]int64, len(r.EntropyHist)), length: make([]int64, len(r.LengthHist))}
			by[r.Domain] = a
		}
		f := float64(r.Records)
		a.n += r.Records
		a.kept += r.Kept
		a.exact += r.ExactDuplicates
		a.near += r.NearDuplicates
		a.filtered += r.Filtered
		a.pii += r.PIIRecords
		a.cross += r.CrossDomainDups
		a.ce += r.MeanCharEntropy * f
		a.we += r.MeanWordEntropy * f
		a.words += r.MeanWords * f
		a.sim += r.MeanTargetSim * f
		a.distinct += r.DistinctBigrams
		a.overlap += r.VocabOverlap
		a.vocab = max(a.vocab, r.VocabSize)
		a.windows++
		for i, c := range r.EntropyHist {
			if i < len(a.ent) {
				a.ent[i] += c
			}
		}
		for i, c := range r.LengthHist {
			if i < len(a.length) {
				a.length[i] += c
			}
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		if n != "*" {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return by[names[i]].n > by[names[j]].n })
	names = append(names, "*")
	all := by["*"]
	fmt.Fprintf(w, "audit: %d records in %d windows\n\n", all.n, len(windows))
	fmt.Fprintf(w, "%-12s %9s %6s %9s %9s %9s %8s %6s %7s\n", "domain", "records", "share", "kept", "exact_dup", "near_dup", "filtered", "pii", "dup%")
	for _, n := range names {
		a := by[n]
		fmt.Fprintf(w, "%-12s %9d %5.1f%% %9d %9d %9d %8d %6d %6.2f%%\n", n, a.n, 100*float64(a.n)/float64(all.n),
			a.kept, a.exact, a.near, a.filtered, a.pii, 100*float64(a.exact+a.near)/float64(a.n))
	}
	fmt.Fprintf(w, "\n%-12s %8s %8s %8s %9s %8s %8s %9s %8s\n", "domain", "char_H", "word_H", "words", "bigram_d", "vocab", "overlap", "target", "gap")
	for _, n := range names {
		a := by[n]
		f := float64(a.n)
		fmt.Fprintf(w, "%-12s %8.2f %8.2f %8.1f %9.3f %8d %8.2f %9.3f %8.3f\n", n, a.ce/f, a.we/f, a.words/f,
			a.distinct/float64(a.windows), a.vocab, a.overlap/float64(a.windows), a.sim/f, all.sim/float64(all.n)-a.sim/f)
	}
	fmt.Fprintf(w, "\nchar entropy (bits, half-bit bins) and length (words, powers of two), all domains:\n")
	fmt.Fprintf(w, "  entropy %s\n  length  %s\n", spark(all.ent), spark(all.length))

	plans, err := lake.ReadTable[schemas.CurriculumPlan](ctx, store, schemas.TableCurriculum)
	if err != nil {
		return err
	}
	var last int64 = -1
	for _, p := range plans {
		last = max(last, p.Version)
	}
	if last >= 0 {
		fmt.Fprintf(w, "\ncurriculum plan version %d (%d versions kept):\n", last, len(windows))
		fmt.Fprintf(w, "%-6s %12s %12s %9s %10s %10s %10s\n", "stage", "difficulty_lo", "difficulty_hi", "records", "opens:lin", "root", "step")
		starts := map[[2]any]float64{}
		var stages []schemas.CurriculumPlan
		for _, p := range plans {
			if p.Version != last {
				continue
			}
			starts[[2]any{p.Stage, p.Pacing}] = p.StartFraction
			if p.Pacing == "linear" {
				stages = append(stages, p)
			}
		}
		sort.Slice(stages, func(i, j int) bool { return stages[i].Stage < stages[j].Stage })
		for _, p := range stages {
			fmt.Fprintf(w, "%-6d %12.3f %12.3f %9d %10.2f %10.2f %10.2f\n", p.Stage, p.DifficultyLo, p.DifficultyHi, p.StageRecords,
				starts[[2]any{p.Stage, "linear"}], starts[[2]any{p.Stage, "root"}], starts[[2]any{p.Stage, "step"}])
		}
	}
	return nil
}

// spark draws counts as a one-line bar chart.
func spark(counts []int64) string {
	bars := []rune(" ▁▂▃▄▅▆▇█")
	var hi int64
	for _, c := range counts {
		hi = max(hi, c)
	}
	var b strings.Builder
	for _, c := range counts {
		i := 0
		if hi > 0 {
			i = int((c*int64(len(bars)-1) + hi - 1) / hi)
		}
		b.WriteRune(bars[i])
	}
	return b.String()
}
