package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
)

// lakeCommands are the subcommands of thresher lake.
func lakeCommands() map[string]command {
	return map[string]command{
		"check": {"prove that each partition's raw, dlq and gaps segments account for its offsets once", runLakeCheck},
	}
}

func runLake(ctx context.Context, e *env, args []string) error {
	cmds := lakeCommands()
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		printLakeHelp(e.stderr, cmds)
		return nil
	}
	if len(args) == 0 {
		printLakeHelp(e.stderr, cmds)
		return usagef("a subcommand is required")
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		printLakeHelp(e.stderr, cmds)
		return usagef("unknown subcommand %q", args[0])
	}
	return cmd.run(ctx, e, args[1:])
}

func printLakeHelp(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: thresher lake <subcommand> [flags]\n\nsubcommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'thresher lake <subcommand> -h' for its flags.")
}

// runLakeCheck checks a lake (lake.Check) and prints each finding, then a
// line per table. It exits 1 when it finds an error, 2 when the lake cannot
// be read.
func runLakeCheck(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "lake check", "--lake DIR [--json] [--workers N]\n\n"+
		"Exits 0 when every partition's raw and gaps segments cover its offsets once\n"+
		"and every dlq segment lies in raw ones, 1 listing each problem otherwise,\n"+
		"2 on bad flags or a lake it cannot read.")
	lakeDir := fs.String("lake", "", "lake `folder` to check")
	asJSON := fs.Bool("json", false, "print the report as one JSON object on stdout instead of lines")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "segments read at once")
	progress := fs.Duration("progress", 2*time.Second, "print a progress line to stderr this often (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	if *lakeDir == "" {
		problems = append(problems, "--lake DIR is required")
	}
	if *workers < 1 {
		problems = append(problems, fmt.Sprintf("--workers %d: must be at least 1", *workers))
	}
	if *progress < 0 {
		problems = append(problems, "--progress must not be negative")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return usagef("%s", joinProblems(problems))
	}
	// Checking never creates a lake.
	abs, err := filepath.Abs(*lakeDir)
	if err != nil {
		return usagef("--lake: %v", err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return usagef("--lake %s: %v", abs, err)
	}
	store, err := lake.OpenDir(abs)
	if err != nil {
		return &UsageError{Err: err}
	}
	pr := &lakeCheckProgress{w: e.stderr, period: *progress, began: time.Now()}
	rep, err := lake.Check(ctx, store, lake.CheckOptions{Workers: *workers, Progress: pr.update})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &UsageError{Err: err} // the lake could not be read
	}
	pr.finish()
	nerr, nwarn := rep.Count(lake.SeverityError), rep.Count(lake.SeverityWarning)
	if *asJSON {
		data, err := json.MarshalIndent(struct {
			OK       bool                `json:"ok"`
			Errors   int                 `json:"errors"`
			Warnings int                 `json:"warnings"`
			Tables   []lake.TableSummary `json:"tables"`
			Findings []lake.Finding      `json:"findings"`
		}{nerr == 0, nerr, nwarn, rep.Tables, rep.Findings}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", data)
	} else {
		for _, f := range rep.Findings {
			fmt.Fprintln(e.stdout, f)
		}
		for _, t := range rep.Tables {
			fmt.Fprintln(e.stdout, t)
		}
		verdict := "ok"
		if nerr > 0 {
			verdict = "FAILED"
		}
		fmt.Fprintf(e.stdout, "lake check: %s: errors=%d warnings=%d superseded=%d\n",
			verdict, nerr, nwarn, rep.Count(lake.SeverityInfo))
	}
	if nerr > 0 {
		noun := "errors"
		if nerr == 1 {
			noun = "error"
		}
		return fmt.Errorf("check found %d %s in %s", nerr, noun, abs)
	}
	return nil
}

// lakeCheckProgress prints a progress line with rate and ETA at most every
// period.
type lakeCheckProgress struct {
	w      io.Writer
	period time.Duration
	began  time.Time

	mu   sync.Mutex
	last time.Time
	p    lake.CheckProgress
}

func (p *lakeCheckProgress) update(pr lake.CheckProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p = pr
	if p.period <= 0 || time.Since(p.last) < p.period || time.Since(p.began) < p.period {
		return
	}
	p.last = time.Now()
	p.line()
}

func (p *lakeCheckProgress) line() {
	el := time.Since(p.began).Seconds()
	rate := float64(p.p.Bytes) / max(el, 1e-9)
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(p.p.TotalBytes-p.p.Bytes)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "lake check: read %d/%d segments, %.1f/%.1f MB (%.1f MB/s), eta %s\n",
		p.p.Files, p.p.TotalFiles, float64(p.p.Bytes)/1e6, float64(p.p.TotalBytes)/1e6, rate/1e6, eta)
}

// finish prints the last line of a check that printed progress.
func (p *lakeCheckProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.period > 0 && !p.last.IsZero() {
		p.line()
	}
}
