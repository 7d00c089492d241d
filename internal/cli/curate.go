package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
)

func runCurate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "curate", "--lake DIR [flags]")
	var cfg curate.Config
	configFile := fs.String("config", "", "YAML configuration `file` (keys as in curate.Config, dedup and metrics sections included; flags override it)")
	fs.StringVar(&cfg.Lake, "lake", "", "lake `folder` to curate (its raw table) and write to")
	topics := fs.String("topic", "", "raw topic(s) to curate, `name[,name]` (default every topic)")
	fs.StringVar(&cfg.Target, "target", "", "target-domain texts, a JSONL (\"text\" field) or text `file`, .gz allowed; default: the stream itself")
	fs.BoolVar(&cfg.Redact, "redact", false, "replace PII in curated text with placeholders such as [EMAIL]")
	fs.IntVar(&cfg.WindowRecords, "window-records", 0, "input records per window, one commit of every table (default 100000)")
	fs.DurationVar(&cfg.ExitOnIdle, "exit-on-idle", 0, "exit after no new raw segment for this `duration` (0: run until stopped)")
	fs.IntVar(&cfg.Stages, "stages", 0, "curriculum stages (default 4)")
	drop := fs.String("drop", "", "quality flags that filter a record, `flag[,flag]` (default "+fmt.Sprint(curate.DefaultDrop)+"; \"none\" keeps all)")
	listen := fs.String("listen", "", "serve /metrics and /healthz on `host:port`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *configFile != "" {
		// The file is the base; flags that were set win over it.
		var file curate.Config
		if err := loadYAML(*configFile, &file); err != nil {
			return &UsageError{Err: err}
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["lake"] {
			cfg.Lake = file.Lake
		}
		if !set["target"] {
			cfg.Target = file.Target
		}
		if !set["redact"] {
			cfg.Redact = file.Redact
		}
		if !set["window-records"] {
			cfg.WindowRecords = file.WindowRecords
		}
		if !set["exit-on-idle"] {
			cfg.ExitOnIdle = file.ExitOnIdle
		}
		if !set["stages"] {
			cfg.Stages = file.Stages
		}
		if !set["topic"] {
			*topics = strings.Join(file.Topics, ",")
		}
		if !set["drop"] && file.Drop != nil {
			cfg.Drop = file.Drop
			if len(file.Drop) == 0 {
				*drop = "none"
			}
		}
		cfg.Poll, cfg.InitialCompetence, cfg.Weights = file.Poll, file.InitialCompetence, file.Weights
		cfg.Dedup, cfg.Metrics, cfg.TargetBuckets = file.Dedup, file.Metrics, file.TargetBuckets
	}
	cfg.Topics = splitList(*topics)
	switch *drop {
	case "":
	case "none":
		cfg.Drop = []string{}
	default:
		cfg.Drop = splitList(*drop)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	_, err := curateRun(ctx, e, cfg, *listen)
	return err
}

// curateRun runs the curate stage with periodic progress lines.
func curateRun(ctx context.Context, e *env, cfg curate.Config, listen string) (curate.Progress, error) {
	store, err := lake.OpenDir(cfg.Lake)
	if err != nil {
		return curate.Progress{}, &UsageError{Err: err}
	}
	reg := newRegistry()
	st, err := curate.New(ctx, cfg, store, e.log, reg)
	if err != nil {
		if errors.Is(err, curate.ErrConfig) {
			return curate.Progress{}, &UsageError{Err: err}
		}
		return curate.Progress{}, err
	}
	if listen != "" {
		stop, err := serveHTTP(ctx, e.log, listen, reg, func() (any, error) { return st.Progress(), nil })
		if err != nil {
			return curate.Progress{}, &UsageError{Err: err}
		}
		defer stop()
	}
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
