package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/report"
)

func runReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "report", "--lake DIR [--out FILE] [--sample N]")
	lakeDir := fs.String("lake", "", "lake `folder` to report on")
	out := fs.String("out", "report.html", "HTML `file` to write (replaced atomically)")
	sampleN := fs.Int("sample", report.DefaultSample, "curated records to embed for the projection (-1: none)")
	seed := fs.Uint64("seed", report.DefaultSeed, "seed of the embedding sample")
	buckets := fs.Int("buckets", report.DefaultBuckets, "time buckets of the timeline")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	if *lakeDir == "" {
		problems = append(problems, "--lake is required")
	}
	if *out == "" {
		problems = append(problems, "--out must name a file")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	opts := report.Options{Sample: *sampleN, Seed: *seed, Buckets: *buckets, Log: e.log}
	if *sampleN == 0 {
		problems = append(problems, "--sample 0: give a positive number, or -1 for none")
	}
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}
	abs, err := filepath.Abs(*lakeDir)
	if err != nil {
		return usagef("--lake: %v", err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return usagef("--lake %s: not a lake folder", *lakeDir)
	}
	store, err := lake.OpenDir(abs)
	if err != nil {
		return &UsageError{Err: err}
	}
	opts.LakePath = abs
	path, sum, err := writeReport(ctx, store, *out, opts)
	if err != nil {
		return err
	}
	for _, s := range sum.Sections {
		if s.Err != nil {
			fmt.Fprintf(e.stderr, "report: section %s: %v\n", s.ID, s.Err)
		}
	}
	printReportSummary(e, sum)
	fmt.Fprintf(e.stdout, "report: %s\n", path)
	return nil
}

// writeReport builds the report of store into path, atomically (a
// temporary file beside it, then a rename), and returns path made
// absolute.
func writeReport(ctx context.Context, store lake.Store, path string, opts report.Options) (string, *report.Summary, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	began := time.Now()
	f, err := os.CreateTemp(filepath.Dir(abs), ".report-*.tmp")
	if err != nil {
		return "", nil, fmt.Errorf("report: %w", err)
	}
	defer os.Remove(f.Name())
	sum, err := report.Build(ctx, store, f, opts)
	if err != nil {
		f.Close()
		return "", nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		return "", nil, err
	}
	if err := os.Rename(f.Name(), abs); err != nil {
		return "", nil, fmt.Errorf("report: %w", err)
	}
	opts.Log.Debug("report written", "path", abs, "seconds", time.Since(began).Seconds())
	return abs, sum, nil
}

// printReportSummary prints which sections hold data.
func printReportSummary(e *env, sum *report.Summary) {
	for _, s := range sum.Sections {
		marks := 0
		for _, n := range s.Charts {
			marks += n
		}
		state := fmt.Sprintf("%d charts, %d marks", len(s.Charts), marks)
		if s.Note != "" {
			state = s.Note
		}
		fmt.Fprintf(e.stderr, "report: %-13s %s\n", s.ID, state)
	}
}
