package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/eval"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/train"
)

// trainEvalSeed fixes the label draws and the task subsample of the
// periodic evaluation, so every checkpoint of every run is scored on the
// same examples.
const trainEvalSeed = 1

// trainEnvPrefix names the trainer's environment variables: THRESHER_TRAIN_
// and the YAML key path in upper case (THRESHER_TRAIN_LEARNER_QUEUE_SIZE).
const trainEnvPrefix = "THRESHER_TRAIN_"

func runTrain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "train", "--lake DIR [flags]")
	var (
		cfg                                             train.ServiceConfig
		seed                                            uint64
		deterministic                                   bool
		checkpointSteps, maxSteps                       int64
		maxDuration, checkpointInterval, progressPeriod time.Duration
		evalTasks                                       stringList
		evalEvery                                       int64
		evalLabels                                      string
		evalDraws                                       int
		promoteTolerance                                float64
	)
	configFile := fs.String("config", "", "YAML configuration `file` (keys as in train.ServiceConfig, learner and sampler sections included; "+trainEnvPrefix+"<KEY> variables override it, flags override both)")
	fs.StringVar(&cfg.Lake, "lake", "", "lake `folder`: curated input and checkpoints/")
	fs.StringVar(&cfg.Listen, "listen", "", "serve /healthz, /readyz, /metrics, /v1/status and /v1/embed on `host:port`")
	fs.StringVar(&cfg.SamplerAddr, "sampler", "", "take batches from a remote sampler (thresher sample --listen) at `host:port` instead of sampling the lake in process")
	fs.Int64Var(&maxSteps, "max-steps", 0, "stop after this many optimiser steps, counted across restarts (0: run until stopped)")
	fs.DurationVar(&maxDuration, "max-duration", 0, "stop after this long (0: run until stopped)")
	fs.Int64Var(&checkpointSteps, "checkpoint-steps", 0, "checkpoint every this many steps (default 1000)")
	fs.DurationVar(&checkpointInterval, "checkpoint-interval", 0, "checkpoint at least this often (default 60s)")
	fs.Uint64Var(&seed, "seed", 0, "seed of the learner and the sampler")
	fs.BoolVar(&deterministic, "deterministic", false, "reproducible bit for bit: one learner worker and a fixed seed (1 unless --seed)")
	fs.DurationVar(&progressPeriod, "progress", 5*time.Second, "print a progress line to stderr this often (0: never)")
	fs.Var(&evalTasks, "eval-task", "evaluate checkpoints on the labeled task in `DIR` (repeatable; config key eval_tasks)")
	fs.Int64Var(&evalEvery, "eval-every", 0, "evaluate a checkpoint every this many steps (default 1000)")
	fs.StringVar(&evalLabels, "eval-labels-per-class", "", "label budgets of the evaluation's linear probe, comma-separated numbers or all (default 16,64)")
	fs.IntVar(&evalDraws, "eval-draws", 0, "seeded label draws per budget (default 3)")
	fs.Float64Var(&promoteTolerance, "promote-tolerance", 0, "largest accuracy drop against the promoted checkpoint that still promotes (default 0.01)")
	check := fs.Bool("check", false, "validate the configuration, print it, and exit without training")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// Precedence: flags, then THRESHER_TRAIN_<KEY> variables, then the
	// file, then defaults.
	flags := cfg
	cfg = train.ServiceConfig{}
	if *configFile != "" {
		if err := loadYAML(*configFile, &cfg); err != nil {
			return &UsageError{Err: err}
		}
	}
	problems := applyEnv(trainEnvPrefix, &cfg, nil)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["lake"] {
		cfg.Lake = flags.Lake
	}
	if set["listen"] {
		cfg.Listen = flags.Listen
	}
	if set["sampler"] {
		cfg.SamplerAddr = flags.SamplerAddr
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "max-steps":
			cfg.MaxSteps = maxSteps
		case "max-duration":
			cfg.MaxDuration = maxDuration
		case "checkpoint-steps":
			cfg.CheckpointSteps = checkpointSteps
		case "checkpoint-interval":
			cfg.CheckpointInterval = checkpointInterval
		case "seed":
			cfg.Learner.Seed, cfg.Sampler.Seed = seed, seed
		case "eval-task":
			cfg.EvalTasks = evalTasks
		case "eval-every":
			cfg.EvalEvery = evalEvery
		case "eval-labels-per-class":
			cfg.EvalLabelsPerClass = []string{evalLabels}
		case "eval-draws":
			cfg.EvalDraws = evalDraws
		case "promote-tolerance":
			cfg.PromoteTolerance = promoteTolerance
		case "deterministic":
			cfg.Deterministic = deterministic
			if deterministic {
				cfg.Learner.Workers = 1
			}
		}
	})
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), train.ErrServiceConfig.Error()+":\n  - "))
	}
	if len(problems) > 0 {
		return &UsageError{Err: fmt.Errorf("%w:\n  - %s", train.ErrServiceConfig, strings.Join(problems, "\n  - "))}
	}
	if *check {
		out, err := yaml.Marshal(&cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "# effective train configuration\n%s", out)
		return nil
	}
	store, err := lake.OpenDir(cfg.Lake)
	if err != nil {
		return &UsageError{Err: err}
	}
	reg := newRegistry()
	// Progress lines and log records share stderr: one writer, one lock.
	stderr := &lockedWriter{w: e.stderr}
	level := slog.LevelInfo
	if e.log.Enabled(ctx, slog.LevelDebug) {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// The server answers from the start: /healthz 200, the rest 503 until
	// the trainer is built, then the trainer's own handler (whose /readyz
	// waits for the resume).
	var handler atomic.Pointer[http.Handler]
	if cfg.Listen != "" {
		stop, addr, err := serveTrainer(ctx, log, cfg.Listen, &handler)
		if err != nil {
			return &UsageError{Err: err}
		}
		defer stop()
		fmt.Fprintf(stderr, "train: serving on http://%s\n", addr)
	}
	var opts []train.Option
	if len(cfg.EvalTasks) > 0 {
		ev, err := newTrainEvaluator(cfg, log)
		if err != nil {
			return &UsageError{Err: err}
		}
		opts = append(opts, train.WithEvaluator(ev))
	}
	t, err := train.NewTrainer(ctx, cfg, store, log, reg, opts...)
	if err != nil {
		if errors.Is(err, train.ErrServiceConfig) {
			return &UsageError{Err: err}
		}
		return err
	}
	defer t.Close()
	h := t.Handler()
	handler.Store(&h)

	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		if progressPeriod <= 0 {
			<-done
			return
		}
		tick := time.NewTicker(progressPeriod)
		defer tick.Stop()
		var p0 *train.TrainerStatus // the first status after the resume
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				st := t.Status()
				if p0 == nil && st.Ready {
					p0 = &st
				}
				rate := 0.0
				if p0 != nil && st.UptimeS > p0.UptimeS {
					rate = float64(st.Step-p0.Step) / (st.UptimeS - p0.UptimeS)
				}
				fmt.Fprintln(stderr, progressLine(st, cfg, rate))
			}
		}
	}()
	err = t.Run(ctx)
	close(done)
	<-stopped
	st := t.Status()
	fmt.Fprintf(e.stdout, "train: step=%d examples_seen=%d tokens_seen=%d checkpoint_step=%d promoted_step=%d loss=%.4f accuracy=%.3f examples_per_s=%.1f tokens_per_s=%.0f peak_rss_mb=%.1f\n",
		st.Step, st.ExamplesSeen, st.TokensSeen, st.CheckpointStep, st.Promoted.Step, st.Losses.Total, st.Accuracy, st.ExamplesPerS, st.TokensPerS, peakRSSMiB())
	return err
}

// newTrainEvaluator loads the evaluation tasks of cfg (validated).
func newTrainEvaluator(cfg train.ServiceConfig, log *slog.Logger) (*eval.Periodic, error) {
	budgets, err := train.ParseLabelBudgets(cfg.EvalLabelsPerClass)
	if err != nil {
		return nil, err
	}
	lpc := make([]eval.LabelsPerClass, len(budgets))
	for i, b := range budgets {
		lpc[i] = eval.LabelsPerClass(b) // 0 is eval.AllLabels
	}
	began := time.Now()
	ev, err := eval.NewPeriodic(eval.PeriodicConfig{
		Tasks: cfg.EvalTasks, LabelsPerClass: lpc, Draws: cfg.EvalDraws, Seed: trainEvalSeed, MaxExamples: cfg.EvalMaxExamples,
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("evaluation tasks loaded", "tasks", len(ev.Tasks()), "every", cfg.EvalEvery, "seconds", time.Since(began).Seconds())
	return ev, nil
}

// progressLine formats one progress line of a training run; stepsPerS is
// the recent rate of optimiser steps.
func progressLine(st train.TrainerStatus, cfg train.ServiceConfig, stepsPerS float64) string {
	var left time.Duration
	if cfg.MaxSteps > 0 && stepsPerS > 0 {
		left = time.Duration(float64(cfg.MaxSteps-st.Step) / stepsPerS * float64(time.Second))
	}
	if cfg.MaxDuration > 0 {
		if d := cfg.MaxDuration - time.Duration(st.UptimeS*float64(time.Second)); left <= 0 || d < left {
			left = d
		}
	}
	eta := "-"
	if left > 0 {
		eta = left.Round(time.Second).String()
	}
	return fmt.Sprintf("train: step %d, %d examples (%.0f ex/s, %.0f tok/s), loss %.4f, accuracy %.3f, lr %.2g, checkpoint %d, promoted %d, eta %s",
		st.Step, st.ExamplesSeen, st.ExamplesPerS, st.TokensPerS, st.Losses.Total, st.Accuracy, st.LR, st.CheckpointStep, st.Promoted.Step, eta)
}

// serveTrainer serves the handler h points at (503 before it is set) on
// addr until stop is called; the listener is bound before it returns.
func serveTrainer(ctx context.Context, log *slog.Logger, addr string, h *atomic.Pointer[http.Handler]) (stop func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hp := h.Load(); hp != nil {
				(*hp).ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/healthz" {
				_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"starting"}`+"\n")
		}),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, ln.Addr().String(), nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// peakRSSMiB returns the process's peak resident set (VmHWM), or 0 where
// /proc is absent.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}
