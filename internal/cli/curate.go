package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
)

// curateEnvPrefix names curate's environment variables: THRESHER_CURATE_
// and the YAML key path in upper case (THRESHER_CURATE_DEDUP_THRESHOLD).
const curateEnvPrefix = "THRESHER_CURATE_"

func runCurate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "curate", "--lake DIR [flags]")
	var flags curate.Config
	configFile := fs.String("config", "", "YAML configuration `file` (keys as in curate.Config, dedup and metrics sections included; "+
		curateEnvPrefix+"<KEY> variables override it, flags override both)")
	fs.StringVar(&flags.Lake, "lake", "", "lake `folder` to curate (its raw table) and write to")
	topics := fs.String("topic", "", "raw topic(s) to curate, `name[,name]` (default every topic)")
	fs.StringVar(&flags.Target, "target", "", "target-domain texts, a JSONL (\"text\" member) or text `file`, .gz allowed, at least 10 texts; default: the stream itself")
	fs.BoolVar(&flags.Redact, "redact", false, "replace PII in curated text with placeholders such as [EMAIL]")
	fs.IntVar(&flags.WindowRecords, "window-records", 0, "input records per window, one commit of every table (default 100000)")
	fs.DurationVar(&flags.ExitOnIdle, "exit-on-idle", 0, "exit after no new raw segment for this `duration` (0: run until stopped)")
	fs.IntVar(&flags.Stages, "stages", 0, "curriculum stages (default 4)")
	noDedup := fs.Bool("no-dedup", false, "keep duplicates (dedup.enabled: false): they are still found, clustered and named in the audit table's dup_of, but not dropped")
	drop := fs.String("drop", "", "quality flags that filter a record, `flag[,flag]` (default "+fmt.Sprint(curate.DefaultDrop)+"; \"none\" keeps all)")
	listen := fs.String("listen", "", "serve /metrics, /healthz and /readyz on `host:port`")
	check := fs.Bool("check", false, "validate the configuration, print it, and exit without curating")
	memLimit := fs.String("memory-limit", "", "soft memory `limit` of the process (e.g. 2GiB; default "+
		"768MiB plus 800 bytes per record the dedup index may hold; env "+curateEnvPrefix+"MEMORY_LIMIT, GOMEMLIMIT wins)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// Precedence: flags, then the environment, then the file, then defaults.
	var cfg curate.Config
	if *configFile != "" {
		if err := loadYAML(*configFile, &cfg); err != nil {
			return &UsageError{Err: err}
		}
	}
	var problems []string
	problems = append(problems, applyEnv(curateEnvPrefix, &cfg, nil)...)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, apply := range map[string]func(){
		"lake":           func() { cfg.Lake = flags.Lake },
		"target":         func() { cfg.Target = flags.Target },
		"redact":         func() { cfg.Redact = flags.Redact },
		"window-records": func() { cfg.WindowRecords = flags.WindowRecords },
		"exit-on-idle":   func() { cfg.ExitOnIdle = flags.ExitOnIdle },
		"stages":         func() { cfg.Stages = flags.Stages },
		"no-dedup": func() {
			on := !*noDedup
			cfg.Dedup.Enabled = &on
		},
		"topic": func() { cfg.Topics = splitList(*topics) },
		"drop": func() {
			if *drop == "none" {
				cfg.Drop = []string{}
			} else {
				cfg.Drop = splitList(*drop)
			}
		},
	} {
		if set[name] {
			apply()
		}
	}
	if len(cfg.Drop) == 1 && cfg.Drop[0] == "none" {
		cfg.Drop = []string{}
	}
	cfg.SetDefaults()
	limit, err := curateMemoryLimit(*memLimit, &cfg)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), curate.ErrConfig.Error()+":\n  - "))
	}
	if len(problems) > 0 {
		return &UsageError{Err: fmt.Errorf("%w:\n  - %s", curate.ErrConfig, strings.Join(problems, "\n  - "))}
	}
	if *check {
		out, err := yaml.Marshal(&cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "# effective curate configuration (memory limit %d bytes)\n%s", limit, out)
		return nil
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(limit)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// Curate's heap is mostly a window's rows, rich in pointers: at the
		// default 100 the collector takes about a tenth of the CPU. Twice
		// the room, still under the memory limit, saves most of that.
		debug.SetGCPercent(curateGCPercent)
	}
	_, err = curateRun(ctx, e, cfg, *listen)
	return err
}

// curateGCPercent is the GOGC curate runs with unless GOGC is set.
const curateGCPercent = 200

// curateMemoryLimit returns the soft memory limit: the flag, else
// THRESHER_CURATE_MEMORY_LIMIT, else room for the dedup index at its bound
// (and one saved copy of it) plus the windows in flight.
func curateMemoryLimit(flagValue string, cfg *curate.Config) (int64, error) {
	v := flagValue
	if v == "" {
		v = os.Getenv(curateEnvPrefix + "MEMORY_LIMIT")
	}
	if v == "" {
		if cfg.Dedup.MaxRecords < 0 {
			return math.MaxInt64, nil
		}
		return 768<<20 + 800*cfg.Dedup.MaxRecords, nil
	}
	n, err := ingest.ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("memory_limit: %v", err)
	}
	if n < 64<<20 {
		return 0, fmt.Errorf("memory_limit: %s must be at least 64MiB", v)
	}
	return int64(n), nil
}

// curateRun runs the curate stage with periodic progress lines.
func curateRun(ctx context.Context, e *env, cfg curate.Config, listen string) (curate.Progress, error) {
	store, err := lake.OpenDir(cfg.Lake)
	if err != nil {
		return curate.Progress{}, &UsageError{Err: err}
	}
	reg := newRegistry()
	// The server answers while the state loads (a resume replays the
	// windows since the last saved dedup index): /healthz 200, /readyz
	// 503 until the stage has listed the raw table.
	var stage atomic.Pointer[curate.Stage]
	if listen != "" {
		stop, err := serveHTTP(ctx, e.log, listen, reg, func() health {
			st := stage.Load()
			if st == nil {
				return health{Status: healthStarting}
			}
			p := st.Progress()
			if !p.Ready {
				return health{Status: healthStarting, Detail: p}
			}
			return health{Status: healthOK, Detail: p}
		})
		if err != nil {
			return curate.Progress{}, &UsageError{Err: err}
		}
		defer stop()
	}
	st, err := curate.New(ctx, cfg, store, e.log, reg)
	if err != nil {
		if errors.Is(err, curate.ErrConfig) {
			return curate.Progress{}, &UsageError{Err: err}
		}
		return curate.Progress{}, err
	}
	stage.Store(st)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p := st.Progress()
				rate := p.Rate()
				eta := "-"
				if rate > 0 && p.Pending > 0 {
					eta = (time.Duration(float64(p.Pending)/rate) * time.Second).Round(time.Second).String()
				}
				fmt.Fprintf(e.stderr, "curate: window %d, %d records (%.0f rec/s), %d kept, %d pending, eta %s\n",
					p.Window, p.Records, rate, p.Kept, p.Pending, eta)
			}
		}
	}()
	err = st.Run(ctx)
	close(done)
	<-stopped
	p := st.Progress()
	fmt.Fprintf(e.stdout, "curate: windows=%d records=%d kept=%d busy_s=%.2f rate=%.0f rec/s\n",
		p.Window, p.Records, p.Kept, p.Busy.Seconds(), p.Rate())
	return p, err
}

// loadYAML decodes a YAML file into v; unknown keys are errors.
func loadYAML(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
