// Package cli holds thresher's subcommands, one file each. A subcommand parses
// its flags, builds the stage it runs from the stage's own package, and reports
// errors; it holds no logic that belongs to a stage.
//
// Exit codes: 0 success, 1 a failure while running, 2 a usage or configuration
// error found before any work started.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError reports bad flags, arguments or configuration: the command exits
// with ExitUsage and prints the message, which lists every problem found.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usagef returns a *UsageError with a formatted message.
func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// env is what every subcommand gets from the process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"broker":  {"run an embedded Kafka-protocol broker", runBroker},
		"produce": {"produce JSONL or text records to a topic", runProduce},
		"ingest":  {"consume topics into the lake, exactly once", runIngest},
		"compact": {"merge small raw and dlq segments of a lake into larger ones", runCompact},
		"curate":  {"dedup and audit raw segments into curated, audit and curriculum tables", runCurate},
		"audit":   {"print the audit tables of a lake", runAudit},
		"lake":    {"check a lake: every partition's offsets in its segments exactly once", runLake},
		"demo":    {"run the pipeline end to end on an embedded broker and a bundled sample", runDemo},
		"bench":   {"measure end-to-end ingest against kcat on the embedded broker", runBench},
		"sample":  {"serve curriculum-paced batches of curated records as an Arrow IPC stream", runSample},
		"train":   {"run the online self-supervised trainer as a service", runTrain},
		"embed":   {"embed a JSONL file of texts with a checkpoint's encoder", runEmbed},
		"eval":    {"score an encoder on a labeled task with few labels, against baselines", runEval},
		"adapt":   {"train a classification head on a checkpoint's frozen embeddings", runAdapt},
		"report":  {"write an HTML report of a lake: audits, curriculum, training, probes, embeddings", runReport},
	}
}

// Run runs the subcommand named by args[0] and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	level := slog.LevelInfo
	if os.Getenv("THRESHER_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	e := &env{
		stdin: stdin, stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout, cmds)
		return ExitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "thresher: unknown command %q\n\n", args[0])
		printHelp(stderr, cmds)
		return ExitUsage
	}
	if path := os.Getenv("THRESHER_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "thresher: THRESHER_CPUPROFILE: %v\n", err)
			return ExitUsage
		}
		defer stop()
	}
	err := cmd.run(ctx, e, args[1:])
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	default:
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "thresher %s: %v\n", args[0], err)
			return ExitUsage
		}
		fmt.Fprintf(stderr, "thresher %s: %v\n", args[0], err)
		return ExitFailure
	}
}

func printHelp(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: thresher <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'thresher <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("thresher "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: thresher %s %s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into a *UsageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Err: err}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// startCPUProfile writes a CPU profile of the command to path (set
// THRESHER_CPUPROFILE=path), for `go tool pprof`.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
