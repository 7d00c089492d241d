package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
)

func runCompact(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "compact", "--lake DIR [--target-size 64MiB]")
	lakeDir := fs.String("lake", "", "lake `folder` whose raw and dlq tables to compact")
	target := ingest.Size(lake.DefaultCompactTarget)
	fs.Var(&target, "target-size", "merge adjacent segments smaller than this into segments of up to this `size` (default 64MiB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	if *lakeDir == "" {
		problems = append(problems, "--lake is required")
	}
	if target < 1<<20 || target > 1<<30 {
		problems = append(problems, fmt.Sprintf("--target-size %v must be between 1MiB and 1GiB", target))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}
	if fi, err := os.Stat(*lakeDir); err != nil || !fi.IsDir() {
		return usagef("--lake %s: not a lake folder", *lakeDir)
	}
	store, err := lake.OpenDir(*lakeDir)
	if err != nil {
		return &UsageError{Err: err}
	}
	t0 := time.Now()
	st, err := lake.Compact(ctx, store, int64(target))
	fmt.Fprintf(e.stdout, "compact: %s took_s=%.2f\n", st, time.Since(t0).Seconds())
	return err
}
