package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/sampler"
)

// sampleEnvPrefix names the sampler's environment variables:
// THRESHER_SAMPLE_ and the YAML key in upper case (THRESHER_SAMPLE_BATCH_SIZE).
const sampleEnvPrefix = "THRESHER_SAMPLE_"

func runSample(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sample", "--lake DIR --listen HOST:PORT [flags]")
	var cfg sampler.Config
	configFile := fs.String("config", "", "YAML configuration `file` (keys as in sampler.Config; "+sampleEnvPrefix+"<KEY> variables override it, flags override both)")
	lakeDir := fs.String("lake", "", "lake `folder` whose curated tables to sample")
	listen := fs.String("listen", "", "serve the Arrow IPC stream of batches on `host:port` (each batch to one client)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of every random choice (same lake, configuration and seed: same batches)")
	fs.IntVar(&cfg.BatchSize, "batch-size", 0, fmt.Sprintf("examples per batch (default %d)", sampler.DefaultBatchSize))
	metrics := fs.String("metrics", "", "serve /metrics and /healthz on `host:port`")
	progress := fs.Duration("progress", 10*time.Second, "print a progress line to stderr this often (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// Precedence: flags, then THRESHER_SAMPLE_<KEY> variables, then the
	// file, then defaults.
	flags := cfg
	cfg = sampler.Config{}
	if *configFile != "" {
		if err := loadYAML(*configFile, &cfg); err != nil {
			return &UsageError{Err: err}
		}
	}
	problems := applyEnv(sampleEnvPrefix, &cfg, nil)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["seed"] {
		cfg.Seed = flags.Seed
	}
	if set["batch-size"] {
		cfg.BatchSize = flags.BatchSize
	}
	cfg.SetDefaults()
	if *lakeDir == "" {
		problems = append(problems, "lake: a lake folder is required (--lake)")
	}
	if *listen == "" {
		problems = append(problems, "listen: an address to serve batches on is required (--listen host:port)")
	} else if _, _, err := net.SplitHostPort(*listen); err != nil {
		problems = append(problems, fmt.Sprintf("listen: %q is not host:port: %v", *listen, err))
	}
	if *progress < 0 {
		problems = append(problems, "progress: must not be negative")
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), sampler.ErrConfig.Error()+":\n  - "))
	}
	if len(problems) > 0 {
		return &UsageError{Err: fmt.Errorf("%w:\n  - %s", sampler.ErrConfig, strings.Join(problems, "\n  - "))}
	}
	store, err := lake.OpenDir(*lakeDir)
	if err != nil {
		return &UsageError{Err: err}
	}
	s, err := sampler.New(ctx, cfg, store, e.log)
	if err != nil {
		if errors.Is(err, sampler.ErrConfig) {
			return &UsageError{Err: err}
		}
		return err
	}
	defer s.Close()
	if *metrics != "" {
		reg := newRegistry()
		if err := s.Register(reg); err != nil {
			return err
		}
		stop, err := serveHTTP(ctx, e.log, *metrics, reg, func() health {
			st := s.Status()
			if st.PollError != "" {
				return health{Status: healthFailing, Error: st.PollError, Detail: st}
			}
			return health{Status: healthOK, Detail: st}
		})
		if err != nil {
			return &UsageError{Err: err}
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("listen %s: %w", *listen, err)}
	}
	fmt.Fprintf(e.stderr, "sample: serving batches on %s\n", ln.Addr())
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		if *progress == 0 {
			<-done
			return
		}
		t := time.NewTicker(*progress)
		defer t.Stop()
		began, last := time.Now(), s.Status()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				st := s.Status()
				rate := float64(st.Examples-last.Examples) / progress.Seconds()
				fmt.Fprintf(e.stderr, "sample: %d batches, %d examples (%.0f ex/s, %.0f ex/s overall), window %d, pool %d, epoch %d, stage %d\n",
					st.Batches, st.Examples, rate, float64(st.Examples)/time.Since(began).Seconds(), st.Window, st.PoolRecords, st.Epoch, st.Stage)
				last = st
			}
		}
	}()
	err = sampler.Serve(ctx, ln, s, e.log)
	close(done)
	<-stopped
	st := s.Status()
	fmt.Fprintf(e.stdout, "sample: batches=%d examples=%d window=%d epoch=%d stage=%d\n", st.Batches, st.Examples, st.Window, st.Epoch, st.Stage)
	return err
}
