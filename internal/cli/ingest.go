package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
)

// ingestFlags binds the ingest flags over cfg; flags win over the config
// file and the environment because they are applied last.
type ingestFlags struct {
	config              string
	check               bool
	brokers, topics     string
	group, lake, format string
	listen              string
	fields              string
	exitOnIdle          ingest.Duration
	maxValue, rollBytes ingest.Size
	rollRecords         int
	rollInterval        ingest.Duration
	sessionTimeout      ingest.Duration
	stallTimeout        ingest.Duration
	startFrom           string
	sec                 securityFlags
	compactInterval     ingest.Duration
	compactTarget       ingest.Size
	isolation, onGap    string
}

func (f *ingestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (keys as in ingest.Config; flags override it, THRESHER_INGEST_* variables override the file)")
	fs.BoolVar(&f.check, "check", false, "validate the configuration, print it, and exit without connecting")
	fs.StringVar(&f.brokers, "brokers", "", "bootstrap brokers, `host:port[,host:port]`")
	fs.StringVar(&f.topics, "topic", "", "topic(s) to consume, `name[,name]`")
	fs.StringVar(&f.group, "group", "", "consumer group `id` shared by every ingest process")
	fs.StringVar(&f.lake, "lake", "", "lake `folder`")
	fs.StringVar(&f.format, "format", "", "value format: json (default) or text")
	fs.StringVar(&f.fields, "fields", "", "JSON field names, `column=field[,...]` for text, id, source, domain, lang, ts")
	fs.StringVar(&f.listen, "listen", "", "serve /metrics, /healthz and /readyz on `host:port`")
	fs.Var(&f.stallTimeout, "stall-timeout", "report degraded on /healthz after this `duration` without a fetch while behind (default 2m)")
	fs.Var(&f.exitOnIdle, "exit-on-idle", "drain and exit after the group has been caught up for this `duration` (0: run until stopped)")
	fs.Var(&f.maxValue, "max-value-bytes", "reject larger values to the DLQ (default 1MiB)")
	fs.IntVar(&f.rollRecords, "roll-records", 0, "commit a segment at this many records (default 200000)")
	fs.Var(&f.rollBytes, "roll-bytes", "commit a segment at this many value bytes (default 8MiB)")
	fs.Var(&f.rollInterval, "roll-interval", "commit a segment when its first record is this old (default 5s)")
	fs.Var(&f.sessionTimeout, "session-timeout", "consumer group session timeout (default 10s)")
	fs.StringVar(&f.startFrom, "start-from", "", "where a partition with nothing in the lake starts: earliest (default) or latest")
	f.sec.register(fs)
	fs.Var(&f.compactInterval, "compact-interval", "compact each held partition this often (default 10m; 0: never)")
	fs.Var(&f.compactTarget, "compact-target-size", "merge small segments into segments of up to this size (default 64MiB)")
	fs.StringVar(&f.isolation, "isolation", "", "read_committed (default: records of aborted transactions never land) or read_uncommitted")
	fs.StringVar(&f.onGap, "on-gap", "", "when offsets the lake lacks are gone from the broker: fail (default: exit naming them) or record (land them in the gaps table and go on)")
}

// apply overlays the flags that were set onto cfg.
func (f *ingestFlags) apply(fs *flag.FlagSet, cfg *ingest.Config) error {
	f.sec.apply(fs, &cfg.Security, &cfg.SASL, &cfg.TLS)
	var errs []error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "brokers":
			cfg.Brokers = splitList(f.brokers)
		case "topic":
			cfg.Topics = splitList(f.topics)
		case "group":
			cfg.Group = f.group
		case "lake":
			cfg.Lake = f.lake
		case "format":
			cfg.Format = f.format
		case "listen":
			cfg.Listen = f.listen
		case "exit-on-idle":
			cfg.ExitOnIdle = f.exitOnIdle
		case "max-value-bytes":
			cfg.MaxValueBytes = f.maxValue
		case "roll-records":
			cfg.RollRecords = f.rollRecords
		case "roll-bytes":
			cfg.RollBytes = f.rollBytes
		case "roll-interval":
			cfg.RollInterval = f.rollInterval
		case "session-timeout":
			cfg.SessionTimeout = f.sessionTimeout
		case "stall-timeout":
			cfg.StallTimeout = f.stallTimeout
		case "start-from":
			cfg.StartFrom = f.startFrom
		case "compact-interval":
			d := f.compactInterval
			cfg.CompactInterval = &d
		case "compact-target-size":
			cfg.CompactTargetSize = f.compactTarget
		case "isolation":
			cfg.Isolation = f.isolation
		case "on-gap":
			cfg.OnGap = f.onGap
		case "fields":
			for _, kv := range splitList(f.fields) {
				k, v, ok := cutKV(kv)
				var dst *string
				switch k {
				case "text":
					dst = &cfg.Fields.Text
				case "id":
					dst = &cfg.Fields.ID
				case "source":
					dst = &cfg.Fields.Source
				case "domain":
					dst = &cfg.Fields.Domain
				case "lang":
					dst = &cfg.Fields.Lang
				case "ts":
					dst = &cfg.Fields.TS
				}
				if !ok || dst == nil {
					errs = append(errs, fmt.Errorf("-fields: %q is not column=field with column one of text, id, source, domain, lang, ts", kv))
					continue
				}
				*dst = v
			}
		}
	})
	return errors.Join(errs...)
}

func cutKV(s string) (k, v string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return s, "", false
}

// loadIngestConfig builds the effective configuration: defaults, then the
// file, then the environment, then the flags; it reports every problem.
func loadIngestConfig(e *env, args []string) (ingest.Config, bool, error) {
	var f ingestFlags
	fs := newFlagSet(e, "ingest", "--brokers HOST:PORT --topic T[,T] --group G --lake DIR [flags]")
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return ingest.Config{}, false, err
	}
	if fs.NArg() > 0 {
		return ingest.Config{}, false, usagef("unexpected arguments %q", fs.Args())
	}
	var cfg ingest.Config
	if f.config != "" {
		if err := cfg.LoadFile(f.config); err != nil {
			return cfg, false, &UsageError{Err: err}
		}
	}
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return cfg, false, &UsageError{Err: err}
	}
	if err := f.apply(fs, &cfg); err != nil {
		return cfg, false, &UsageError{Err: err}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, false, &UsageError{Err: err}
	}
	return cfg, f.check, nil
}

func runIngest(ctx context.Context, e *env, args []string) error {
	cfg, check, err := loadIngestConfig(e, args)
	if err != nil {
		return err
	}
	if check {
		out, _ := yaml.Marshal(cfg)
		fmt.Fprintf(e.stdout, "# effective ingest configuration\n%s", out)
		return nil
	}
	sum, err := ingestRun(ctx, e, cfg)
	fmt.Fprintf(e.stdout, "ingest: %s\n", sum)
	return err
}

// ingestRun runs one ingest member to the end: lake and broker checks at
// start (failures are usage errors), then ingest.Run.
func ingestRun(ctx context.Context, e *env, cfg ingest.Config) (ingest.Summary, error) {
	store, err := lake.OpenDir(cfg.Lake)
	if err != nil {
		return ingest.Summary{}, &UsageError{Err: err}
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	reg := newRegistry()
	in, err := ingest.New(cfg, store, e.log, reg)
	if err != nil {
		return ingest.Summary{}, &UsageError{Err: err}
	}
	if err := in.CheckBrokers(ctx); err != nil {
		return ingest.Summary{}, &UsageError{Err: err}
	}
	if cfg.Listen != "" {
		stop, err := serveHTTP(ctx, e.log, cfg.Listen, reg, func() health { return ingestHealth(in.Status()) })
		if err != nil {
			return ingest.Summary{}, &UsageError{Err: err}
		}
		defer stop()
	}
	e.log.Info("ingest starting", "brokers", cfg.Brokers, "security_protocol", cfg.Security.Protocol,
		"topics", cfg.Topics, "group", cfg.Group, "lake", cfg.Lake)
	err = in.Run(ctx)
	return in.Summary(), err
}

// ingestHealth is a member's answer on /healthz and /readyz: failing after a
// fatal error, degraded while stalled (ingest.Stall), starting until it
// knows where its first generation's partitions start.
func ingestHealth(st ingest.Status) health {
	h := health{Status: healthOK, Detail: st}
	switch {
	case st.Error != "":
		h.Status, h.Error = healthFailing, st.Error
	case st.Stalled != nil:
		h.Status, h.Error, h.Since = healthDegraded, st.Stalled.Reason, &st.Stalled.Since
		if st.Stalled.LastError != "" {
			h.Error += "; last Kafka error: " + st.Stalled.LastError
		}
	case !st.Ready:
		h.Status = healthStarting
	}
	return h
}
