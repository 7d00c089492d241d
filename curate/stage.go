package curate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thresher-ml/thresher/dedup"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// Object keys of curate's own state, beside the tables (never a .parquet).
const (
	stateDir = "_curate/state/"
	planDir  = "_curate/plan/"
	indexDir = "_curate/index/"
	// keepStates is how many committed states stay; older ones are deleted.
	keepStates = 2
)

// Config configures the curate stage.
type Config struct {
	Lake   string   `yaml:"lake"`
	Topics []string `yaml:"topics"` // raw topics to curate; empty: every topic in the lake
	// Target is an optional file of target-domain texts (JSON Lines with a
	// "text" member, or plain lines; .gz read transparently; at least
	// MinTargetTexts texts: see ReadTargetFile). Without it the target is
	// the stream seen so far.
	Target string `yaml:"target"`
	// Redact replaces PII spans in curated text with placeholders.
	Redact bool `yaml:"redact"`
	// WindowRecords bounds the input records of one window: one commit of
	// every curate table.
	WindowRecords int           `yaml:"window_records"`
	Poll          time.Duration `yaml:"poll"`         // how often to look for new raw segments
	ExitOnIdle    time.Duration `yaml:"exit_on_idle"` // > 0: exit after no new segment for this long
	// Curriculum.
	Stages            int               `yaml:"stages"`
	InitialCompetence float64           `yaml:"initial_competence"`
	Weights           DifficultyWeights `yaml:"weights"`
	// Drop lists the quality flags that filter a record out of curated.
	Drop []string `yaml:"drop"`
	// IndexEvery is how many input records may pass between two saves of
	// the dedup index (the bulk of curate's state, hundreds of bytes a
	// record). A restart loads the last saved index and replays the windows
	// after it through dedup (signatures only), so this bounds the replay;
	// saving less often saves CPU, I/O and memory on every window.
	IndexEvery    int64         `yaml:"index_every"`
	Dedup         dedup.Config  `yaml:"dedup"`
	Metrics       MetricsConfig `yaml:"metrics"`
	TargetBuckets int           `yaml:"target_buckets"`

	// target is the Target file as Validate read it, kept so that the
	// stage fits its model without reading the file again.
	target *targetSample
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	if c.WindowRecords == 0 {
		c.WindowRecords = 100_000
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.Stages == 0 {
		c.Stages = 4
	}
	if c.InitialCompetence == 0 {
		c.InitialCompetence = 0.25
	}
	if c.Weights == (DifficultyWeights{}) {
		c.Weights = DefaultDifficultyWeights
	}
	if c.Drop == nil {
		c.Drop = append([]string(nil), DefaultDrop...)
	}
	if c.TargetBuckets == 0 {
		c.TargetBuckets = DefaultTargetBuckets
	}
	if c.IndexEvery == 0 {
		c.IndexEvery = DefaultIndexEvery
	}
	c.Dedup.SetDefaults()
	c.Metrics.SetDefaults()
}

// DefaultIndexEvery saves the dedup index every million input records: a
// restart then replays at most that many records through dedup, about 5 s
// on 2 cores.
const DefaultIndexEvery = 1_000_000

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("curate: invalid configuration")

// Validate reports every problem at once. It reads the Target file, if
// any, and keeps its texts for the stage; a bad one is listed with the
// other problems, and the error then matches ErrTargetFile as well as
// ErrConfig.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	var targetErr error
	if c.Lake == "" {
		add("lake: a lake folder is required")
	}
	for _, t := range c.Topics {
		if err := lake.CheckTopic(t); err != nil {
			add("topics: %v", err)
		}
	}
	if c.Target != "" {
		if c.target == nil || c.target.path != c.Target {
			c.target = readTargetSample(c.Target)
		}
		if targetErr = c.target.err; targetErr != nil {
			add("target: %s", strings.TrimPrefix(targetErr.Error(), ErrTargetFile.Error()+": "))
		}
	} else {
		c.target = nil
	}
	if c.WindowRecords < 1 {
		add("window_records: %d must be positive", c.WindowRecords)
	}
	if c.Poll <= 0 {
		add("poll: must be positive")
	}
	if c.ExitOnIdle < 0 {
		add("exit_on_idle: must not be negative")
	}
	if c.Stages < 1 || c.Stages > 100 {
		add("stages: %d must be between 1 and 100", c.Stages)
	}
	if c.InitialCompetence <= 0 || c.InitialCompetence >= 1 {
		add("initial_competence: %v must be in (0, 1)", c.InitialCompetence)
	}
	w := c.Weights
	if w.WordEntropy < 0 || w.CompressionRatio < 0 || w.Length < 0 || w.TargetSimilarity < 0 {
		add("weights: must not be negative")
	}
	known := map[string]bool{}
	for _, f := range QualityFlagNames() {
		known[f] = true
	}
	for _, f := range c.Drop {
		if !known[f] {
			add("drop: %q is not a quality flag (one of %s)", f, strings.Join(QualityFlagNames(), ", "))
		}
	}
	if c.TargetBuckets < 256 || c.TargetBuckets > 1<<24 || c.TargetBuckets&(c.TargetBuckets-1) != 0 {
		add("target_buckets: %d must be a power of two from 256 to 16M", c.TargetBuckets)
	}
	if c.IndexEvery < 1 {
		add("index_every: %d must be positive", c.IndexEvery)
	}
	if err := c.Dedup.Validate(); err != nil {
		add("dedup: %v", err)
	}
	if err := c.Metrics.Validate(); err != nil {
		add("metrics: %v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	err := &configError{msg: fmt.Sprintf("%v:\n  - %s", ErrConfig, strings.Join(errs, "\n  - ")), errs: []error{ErrConfig}}
	if targetErr != nil {
		err.errs = append(err.errs, targetErr)
	}
	return err
}

// configError lists every problem of a Config; it matches ErrConfig and,
// when the target file is one of the problems, ErrTargetFile.
type configError struct {
	msg  string
	errs []error
}

func (e *configError) Error() string   { return e.msg }
func (e *configError) Unwrap() []error { return e.errs }

// Stage is the curate stage: it tails raw segments and writes the audit,
// curated and curriculum tables, one window at a time.
type Stage struct {
	cfg   Config
	store lake.Store
	log   *slog.Logger
	m     *stageMetrics

	st     *state
	ix     *dedup.Index
	target *Target
	drop   map[string]bool

	records, kept atomic.Int64
	pending       atomic.Int64 // raw offsets listed but not yet curated
	busy          atomic.Int64 // nanoseconds spent in windows that curated records
	committed     atomic.Int64 // the last window whose state is written
	total         atomic.Int64 // input records curated over the lake's life
	listed        atomic.Bool  // the raw table was listed (or a plan to redo read) once

	inflight chan error // the window being written, nil when none
}

// New opens the stage on a lake: it loads the last committed state, or
// starts fresh (fitting the target model from cfg.Target when given).
func New(ctx context.Context, cfg Config, store lake.Store, log *slog.Logger, reg prometheus.Registerer) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stage{cfg: cfg, store: store, log: log, m: newStageMetrics(reg), drop: map[string]bool{}}
	for _, f := range cfg.Drop {
		s.drop[f] = true
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// load restores the newest committed state.
func (s *Stage) load(ctx context.Context) error {
	objs, err := s.store.List(ctx, stateDir)
	if err != nil {
		return err
	}
	ix, err := dedup.NewIndex(s.cfg.Dedup)
	if err != nil {
		return err
	}
	s.ix = ix
	s.target = NewTarget(s.cfg.TargetBuckets)
	if len(objs) == 0 {
		s.st = &state{Version: stateVersion, Cursor: map[string]int64{}, Difficulty: newDifficulty(s.cfg.Weights)}
		return s.fitTarget(ctx)
	}
	last := objs[len(objs)-1].Key
	data, err := s.store.Get(ctx, last)
	if err != nil {
		return err
	}
	st, err := decodeState(data)
	if err != nil {
		return fmt.Errorf("%s: %w", last, err)
	}
	index := st.Dedup
	if len(st.Dedup) == 0 && st.IndexSeq > 0 {
		key := seqKey(indexDir, st.IndexSeq, ".dedup")
		if index, err = s.store.Get(ctx, key); err != nil {
			return fmt.Errorf("curate: %s names dedup index %s: %w", last, key, err)
		}
	}
	if len(index) > 0 {
		if err := s.ix.UnmarshalBinary(index); err != nil {
			return fmt.Errorf("%s: dedup index: %w", last, err)
		}
	}
	st.Dedup = nil
	if err := s.target.UnmarshalBinary(st.Target); err != nil {
		return fmt.Errorf("%s: target model: %w", last, err)
	}
	st.Difficulty.W = s.cfg.Weights
	s.st = st
	if err := s.replay(ctx, st.IndexSeq, st.Seq); err != nil {
		return err
	}
	s.committed.Store(st.Seq)
	s.total.Store(st.Records)
	s.log.Info("resumed", "window", st.Seq, "records", st.Records, "index_window", st.IndexSeq)
	s.checkTarget(ctx)
	return nil
}

// fitTarget fits the target model on a fresh start: on the Target file's
// texts, recorded in _curate/target.json before any window commits, or on
// nothing (the stream itself is the target). A record left by an earlier
// start that committed no window is replaced, or deleted without a target.
func (s *Stage) fitTarget(ctx context.Context) error {
	smp := s.cfg.target
	s.cfg.target = nil // the texts are not needed past this
	if smp == nil {
		if err := s.store.Delete(ctx, targetKey); err != nil {
			return fmt.Errorf("curate: deleting %s: %w", targetKey, err)
		}
		return nil
	}
	s.target.FitTarget(smp.texts)
	info, err := writeTargetInfo(ctx, s.store, smp, time.Now())
	if err != nil {
		return err
	}
	s.log.Info("target model fitted", "file", smp.path, "texts", info.Texts, "sha256", info.SHA256)
	return nil
}

// checkTarget warns when a resumed stage is given a target file other than
// the one its model was fitted on: the model comes from the state, so the
// file is not read again.
func (s *Stage) checkTarget(ctx context.Context) {
	smp := s.cfg.target
	s.cfg.target = nil
	if smp == nil {
		return
	}
	info, ok, err := ReadTargetInfo(ctx, s.store)
	switch {
	case err != nil:
		s.log.Warn("target record unreadable", "err", err)
	case !ok:
		s.log.Warn("target file ignored: this lake's target model was fitted on the stream, not on a target file; curate a new lake to use it",
			"file", smp.path)
	case info.SHA256 != smp.sha256:
		s.log.Warn("target file ignored: it differs from the one this lake's target model was fitted on; curate a new lake to use it",
			"file", smp.path, "fitted_on", info.File, "fitted_at", info.FittedAt)
	}
}

// replay brings the dedup index from the end of window from to the end of
// window to: it signs the records of the windows between, in plan order,
// and adds them, as curating them did. Dedup is deterministic, so the index
// ends as it was when window to was committed.
func (s *Stage) replay(ctx context.Context, from, to int64) error {
	t0 := time.Now()
	var n int
	for seq := from + 1; seq <= to; seq++ {
		data, err := s.store.Get(ctx, seqKey(planDir, seq, ".plan"))
		if err != nil {
			return fmt.Errorf("curate: replaying window %d into the dedup index: %w", seq, err)
		}
		p, err := decodePlan(data)
		if err != nil {
			return err
		}
		rows, _, err := s.readPlan(ctx, p)
		if err != nil {
			return fmt.Errorf("curate: replaying window %d into the dedup index: %w", seq, err)
		}
		sigs := make([]dedup.Signature, len(rows))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				signer := s.ix.Signer()
				for {
					from := int(next.Add(chunkRecords)) - chunkRecords
					if from >= len(rows) {
						return
					}
					for i := from; i < min(from+chunkRecords, len(rows)); i++ {
						signer.Sign(&sigs[i], rows[i].Text)
					}
				}
			}()
		}
		wg.Wait()
		for i := range rows {
			s.ix.AddSignature(dedup.RecordID{Topic: rows[i].Topic, Partition: rows[i].Partition, Offset: rows[i].Offset}, &sigs[i])
		}
		n += len(rows)
	}
	if n > 0 {
		s.log.Info("dedup index replayed", "from_window", from+1, "to_window", to, "records", n, "took", time.Since(t0))
	}
	return ctx.Err()
}

func seqKey(dir string, seq int64, ext string) string {
	return fmt.Sprintf("%s%012d%s", dir, seq, ext)
}

// recordKey is a record's identity as written in dup_of and cluster_id.
func recordKey(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
}

func partitionKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// nextPlan returns the plan of the next window: the one a crashed run left
// uncommitted, or a new one over the raw segments not yet curated (nil when
// there are none).
func (s *Stage) nextPlan(ctx context.Context) (*plan, error) {
	seq := s.st.Seq + 1
	if data, err := s.store.Get(ctx, seqKey(planDir, seq, ".plan")); err == nil {
		p, err := decodePlan(data)
		if err != nil {
			return nil, err
		}
		s.log.Info("redoing an uncommitted window", "window", seq)
		s.listed.Store(true)
		return p, nil
	} else if !errors.Is(err, lake.ErrNotExist) {
		return nil, err
	}
	// Live segments only: a merged segment, not the run it replaces; a
	// partial overlap (two writers of the same offsets) stops curate.
	live, _, err := lake.ListSegments(ctx, s.store, schemas.TableRaw)
	if err != nil {
		return nil, fmt.Errorf("curate: raw table: %w", err)
	}
	defer s.listed.Store(true) // once pending is known
	wanted := map[string]bool{}
	for _, t := range s.cfg.Topics {
		wanted[t] = true
	}
	// Offsets at or past each partition's cursor, in pieces of at most a
	// window (a merged segment can hold many windows' worth).
	window := int64(s.cfg.WindowRecords)
	parts := map[string][]planRange{}
	for _, sg := range live {
		if len(wanted) > 0 && !wanted[sg.Topic] {
			continue
		}
		pk := partitionKey(sg.Topic, sg.Partition)
		first := sg.Range.First
		if next, ok := s.st.Cursor[pk]; ok {
			first = max(first, next)
		}
		for ; first <= sg.Range.Last; first += window {
			last := sg.Range.Last
			if last-first >= window {
				last = first + window - 1
			}
			parts[pk] = append(parts[pk], planRange{Topic: sg.Topic, Partition: sg.Partition, First: first, Last: last})
		}
	}
	names := make([]string, 0, len(parts))
	var pending int64
	for pk, rs := range parts {
		names = append(names, pk)
		for _, r := range rs {
			pending += r.len()
		}
	}
	s.pending.Store(pending)
	sort.Strings(names)
	p := &plan{Seq: seq}
	budget := window
	// Round robin over partitions, a piece at a time, so a window mixes
	// the partitions (and the domains they carry).
	for budget > 0 {
		took := false
		for _, pk := range names {
			if len(parts[pk]) == 0 || budget <= 0 {
				continue
			}
			r := parts[pk][0]
			parts[pk] = parts[pk][1:]
			p.Ranges = append(p.Ranges, r)
			budget -= r.len()
			took = true
		}
		if !took {
			break
		}
	}
	if len(p.Ranges) == 0 {
		return nil, nil
	}
	data, err := p.encode()
	if err != nil {
		return nil, err
	}
	if err := s.store.Put(ctx, seqKey(planDir, seq, ".plan"), data); err != nil {
		return nil, fmt.Errorf("curate: writing plan %d (is another curate running on this lake?): %w", seq, err)
	}
	return p, nil
}

// Step curates one window, if there is new raw data, and returns how many
// input records it curated. The window is written in the background; Flush
// (or the next Step) waits for it.
func (s *Stage) Step(ctx context.Context) (int, error) {
	p, err := s.nextPlan(ctx)
	if err != nil || p == nil {
		return 0, err
	}
	t0 := time.Now()
	rows, cursor, err := s.readPlan(ctx, p)
	if err != nil {
		return 0, err
	}
	w := newWindow(p.Seq, len(rows))
	tRead := time.Since(t0)
	// The pure, costly part of each record (audit metrics, hashed features,
	// the dedup signature) runs on every core, a chunk at a time; decisions
	// that depend on the records before (target model, dedup index,
	// difficulty moments) stay serial, in plan order, as chunks complete.
	pipe := analyzeParallel(ctx, s.cfg, rows, s.ix)
	// Rows are built in place: they are large, and most records are kept.
	audits := make([]schemas.AuditRecord, len(rows))
	curated := make([]schemas.Curated, 0, len(rows))
	n := 0
	for ch := pipe.next(); ch != nil; ch = pipe.next() {
		for i := range ch.res {
			r := &rows[ch.from+i]
			a := &audits[n]
			n++
			curated = curated[:len(curated)+1]
			kept, dupOf := s.curateRecord(r, &ch.res[i], a, &curated[len(curated)-1])
			if !kept {
				curated = curated[:len(curated)-1]
			}
			w.add(a, dupOf, ch.res[i].feats)
		}
	}
	pipe.wait()
	audits = audits[:n]
	if len(curated) == 0 {
		curated = nil
	}
	if err := ctx.Err(); err != nil {
		// Nothing is committed: the plan is redone on restart.
		return 0, err
	}
	tCurate := time.Since(t0)
	// Stages come from the plan version that includes this window.
	bounds := s.st.Difficulty.boundaries(s.cfg.Stages)
	for i := range audits {
		audits[i].CurriculumStage = stageOf(audits[i].Difficulty, bounds)
	}
	for i := range curated {
		curated[i].CurriculumStage = stageOf(curated[i].Difficulty, bounds)
	}
	if err := s.commit(ctx, p, w, audits, curated, cursor); err != nil {
		return 0, err
	}
	s.log.Debug("window curated", "window", p.Seq, "records", len(audits), "kept", len(curated),
		"read", tRead, "curate", tCurate-tRead, "snapshot_and_wait", time.Since(t0)-tCurate)
	n = len(audits)
	s.records.Add(int64(n))
	s.kept.Add(int64(len(curated)))
	s.m.windows.Inc()
	s.m.windowSecs.Observe(time.Since(t0).Seconds())
	s.busy.Add(int64(time.Since(t0)))
	s.pending.Add(-int64(n))
	return n, nil
}

// curateRecord decides the fate of one raw record from its analysis. It
// fills in the audit row a and, when it keeps the record (the bool), the
// curated row c; it returns the record it duplicates (zero when none).
func (s *Stage) curateRecord(r *schemas.Raw, an *analysis, a *schemas.AuditRecord, c *schemas.Curated) (bool, recKey) {
	m := an.m
	m.TargetSimilarity = s.target.SimilarityFeatures(an.feats)
	s.target.ObserveFeatures(an.feats)
	audit := auditOf(&m)
	res := &an.dup
	*a = schemas.AuditRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, KafkaTS: r.KafkaTS,
		ID: r.ID, Source: r.Source, Domain: r.Domain,
		ClusterID: res.ClusterID.String(),
	}
	decision := res.Decision
	if !s.cfg.Dedup.Drops() {
		decision = dedup.Unique // kept: the index still names the cluster and dup_of
		if res.Decision != dedup.Unique {
			a.DupOf = res.DupOf.String()
		}
	}
	switch decision {
	case dedup.ExactDuplicate:
		a.Decision, a.Reason, a.DupOf = schemas.DecisionExactDuplicate, "exact duplicate after normalisation", res.DupOf.String()
	case dedup.NearDuplicate:
		a.Decision, a.Reason, a.DupOf = schemas.DecisionNearDuplicate, fmt.Sprintf("estimated Jaccard %.2f", res.Similarity), res.DupOf.String()
	default:
		a.Decision = schemas.DecisionKept
		for _, f := range audit.QualityFlags {
			if s.drop[f] {
				a.Decision, a.Reason = schemas.DecisionFiltered, f
				break
			}
		}
	}
	audit.Difficulty = s.st.Difficulty.score(&audit)
	a.Audit = audit
	s.m.decision(a.Decision).Inc()
	var dup recKey
	if res.Decision != dedup.Unique {
		dup = recKey{res.DupOf.Topic, res.DupOf.Partition, res.DupOf.Offset}
	}
	if a.Decision != schemas.DecisionKept {
		return false, dup
	}
	*c = schemas.Curated{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, KafkaTS: r.KafkaTS,
		ID: r.ID, Source: r.Source, Domain: r.Domain, Lang: r.Lang, Text: r.Text,
		ClusterID: a.ClusterID, Audit: audit,
	}
	if s.cfg.Redact && len(audit.PIIFlags) > 0 {
		c.Text, c.Redacted = Redact(r.Text, an.pii), true
	}
	return true, dup
}

// commit snapshots the window's state (the index and models go on changing
// with the next window), then writes its tables and, last, its state in the
// background, so that writing one window overlaps curating the next. The
// state object is the commit point; the dedup index is saved beside it, as
// an object of its own, only every IndexEvery records (a load replays the
// windows since). A redo after a crash rebuilds byte-identical files from
// the same plan and state, so a table file already there is left as it is.
// Only one window is written at a time.
func (s *Stage) commit(ctx context.Context, p *plan, w *window, audits []schemas.AuditRecord, curated []schemas.Curated, cursor map[string]int64) error {
	st := *s.st
	st.Seq = p.Seq
	st.Records += int64(len(audits))
	st.Cursor = make(map[string]int64, len(s.st.Cursor)+len(cursor))
	for k, v := range s.st.Cursor {
		st.Cursor[k] = v
	}
	for k, v := range cursor {
		st.Cursor[k] = v
	}
	var index []byte
	if st.Records-st.IndexRecords >= s.cfg.IndexEvery {
		var err error
		if index, err = s.ix.MarshalBinary(); err != nil {
			return err
		}
		st.IndexSeq, st.IndexRecords = st.Seq, st.Records
	}
	var err error
	if st.Target, err = s.target.MarshalBinary(); err != nil {
		return err
	}
	state, err := st.encode()
	if err != nil {
		return err
	}
	planRows := st.Difficulty.plan(p.Seq, s.cfg.Stages, s.cfg.InitialCompetence)
	summary := w.rows()
	prevIndex := s.st.IndexSeq
	s.st = &st
	s.m.indexBytes.Set(float64(s.ix.Stats().Bytes))
	if err := s.wait(); err != nil {
		return err
	}
	done := make(chan error, 1)
	s.inflight = done
	go func() {
		done <- s.write(context.WithoutCancel(ctx), p.Seq, st.Records, audits, curated, summary, planRows,
			index, state, min(prevIndex, st.IndexSeq))
	}()
	return nil
}

// wait waits for the window being written, if any, and returns its error.
func (s *Stage) wait() error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	return err
}

// write encodes the four tables at once, puts them in a fixed order, then
// puts the state.
func (s *Stage) write(ctx context.Context, seq, records int64, audits []schemas.AuditRecord, curated []schemas.Curated,
	summary []schemas.AuditSummary, planRows []schemas.CurriculumPlan, index, state []byte, keepIndex int64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	type out struct {
		key  string
		data []byte
		err  error
	}
	outs := make([]out, 4)
	var wg sync.WaitGroup
	enc := func(i int, table string, f func() ([]byte, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := f()
			outs[i] = out{seqKey(table+"/", seq, ".parquet"), data, err}
		}()
	}
	enc(0, schemas.TableAuditRecords, func() ([]byte, error) {
		return lake.EncodeRows(schemas.TableAuditRecords, schemas.AuditRecordsVersion, audits)
	})
	if len(curated) > 0 {
		enc(1, schemas.TableCurated, func() ([]byte, error) {
			return lake.EncodeRows(schemas.TableCurated, schemas.CuratedVersion, curated)
		})
	}
	enc(2, schemas.TableAuditSummary, func() ([]byte, error) {
		return lake.EncodeRows(schemas.TableAuditSummary, schemas.AuditSummaryVersion, summary)
	})
	enc(3, schemas.TableCurriculum, func() ([]byte, error) {
		return lake.EncodeRows(schemas.TableCurriculum, schemas.CurriculumVersion, planRows)
	})
	wg.Wait()
	if len(index) > 0 {
		outs = append(outs, out{key: seqKey(indexDir, seq, ".dedup"), data: index})
	}
	outs = append(outs, out{key: seqKey(stateDir, seq, ".state"), data: state})
	for _, o := range outs {
		if o.key == "" {
			continue
		}
		if o.err != nil {
			return o.err
		}
		if err := s.store.Put(ctx, o.key, o.data); err != nil && !errors.Is(err, lake.ErrExist) {
			return err
		}
	}
	s.committed.Store(seq)
	s.total.Store(records)
	// Older states are no longer needed to resume.
	if old := seq - keepStates; old > 0 {
		_ = s.store.Delete(ctx, seqKey(stateDir, old, ".state"))
	}
	// So are the index objects older than those the kept states name.
	if objs, err := s.store.List(ctx, indexDir); err == nil {
		for _, o := range objs {
			if o.Key < seqKey(indexDir, keepIndex, ".dedup") {
				_ = s.store.Delete(ctx, o.Key)
			}
		}
	}
	return nil
}

// Flush waits until every curated window is written.
func (s *Stage) Flush() error { return s.wait() }

// Progress is a snapshot for progress lines and /healthz.
type Progress struct {
	Window  int64 `json:"window"`
	Records int64 `json:"records"` // curated since start
	Kept    int64 `json:"kept"`
	Pending int64 `json:"pending"` // raw offsets listed and not yet curated
	Total   int64 `json:"total"`   // input records curated over the lake's life
	// Busy is the time spent curating (waiting for new data excluded).
	Busy time.Duration `json:"busy_ns"`
	// Ready is true once the stage, its state loaded, has listed the raw
	// table (or read the plan of a window to redo): it is at work.
	Ready bool `json:"ready"`
}

// Rate is records per busy second.
func (p Progress) Rate() float64 {
	if p.Busy <= 0 {
		return 0
	}
	return float64(p.Records) / p.Busy.Seconds()
}

// Progress returns the stage's position.
func (s *Stage) Progress() Progress {
	return Progress{Window: s.committed.Load(), Records: s.records.Load(), Kept: s.kept.Load(),
		Pending: max(0, s.pending.Load()), Total: s.total.Load(), Busy: time.Duration(s.busy.Load()),
		Ready: s.listed.Load()}
}

// Run curates windows until ctx is done or, with ExitOnIdle, no new raw
// segment has appeared for that long. A stop between windows loses nothing:
// an interrupted window is redone from its plan on the next start.
func (s *Stage) Run(ctx context.Context) (err error) {
	defer func() {
		t0 := time.Now()
		if werr := s.wait(); err == nil {
			err = werr
		}
		s.busy.Add(int64(time.Since(t0)))
	}()
	idleSince := time.Now()
	for {
		n, err := s.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n > 0 {
			idleSince = time.Now()
			continue
		}
		if s.cfg.ExitOnIdle > 0 && time.Since(idleSince) >= s.cfg.ExitOnIdle {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.Poll):
		}
	}
}

// stageMetrics are the Prometheus series of the stage.
type stageMetrics struct {
	records    *prometheus.CounterVec
	byDecision map[string]prometheus.Counter // records' children, looked up once
	windows    prometheus.Counter
	windowSecs prometheus.Histogram
	indexBytes prometheus.Gauge
}

func newStageMetrics(reg prometheus.Registerer) *stageMetrics {
	m := &stageMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_curate_records_total", Help: "Input records curated, by decision.",
		}, []string{"decision"}),
		windows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thresher_curate_windows_total", Help: "Windows committed.",
		}),
		windowSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "thresher_curate_window_seconds", Help: "Time to curate and commit one window.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		indexBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thresher_curate_dedup_index_bytes", Help: "Memory held by the dedup index.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.windows, m.windowSecs, m.indexBytes)
	}
	m.byDecision = map[string]prometheus.Counter{}
	for _, d := range []string{schemas.DecisionKept, schemas.DecisionExactDuplicate, schemas.DecisionNearDuplicate, schemas.DecisionFiltered} {
		m.byDecision[d] = m.records.WithLabelValues(d)
	}
	return m
}

// decision returns the records counter of a decision.
func (m *stageMetrics) decision(d string) prometheus.Counter {
	if c, ok := m.byDecision[d]; ok {
		return c
	}
	return m.records.WithLabelValues(d)
}

// readPlan reads the raw rows of a plan's offsets, in plan order, and the
// cursor they advance to. A compaction may delete a segment between the
// listing and the read: then it lists again.
func (s *Stage) readPlan(ctx context.Context, p *plan) ([]schemas.Raw, map[string]int64, error) {
	ranges, err := p.ranges()
	if err != nil {
		return nil, nil, err
	}
	cursor := map[string]int64{}
	for _, r := range ranges {
		cursor[partitionKey(r.Topic, r.Partition)] = r.Last + 1
	}
	for attempt := 1; ; attempt++ {
		rows, err := s.readRanges(ctx, ranges)
		if err == nil {
			return rows, cursor, nil
		}
		if !errors.Is(err, lake.ErrNotExist) || attempt == 3 {
			return nil, nil, err
		}
		s.log.Info("raw segments changed while reading (compaction): listing again", "window", p.Seq, "err", err)
	}
}

// segmentRead is the part of one raw segment a plan reads.
type segmentRead struct {
	key  string
	want lake.Range // offsets to keep
	full bool       // want is the whole segment
}

// readRanges reads the rows of the live raw segments at the offsets of
// ranges, in order: each range's segments in offset order, and of a segment
// that holds more than the range, the rows in it.
func (s *Stage) readRanges(ctx context.Context, ranges []planRange) ([]schemas.Raw, error) {
	live, _, err := lake.ListSegments(ctx, s.store, schemas.TableRaw)
	if err != nil {
		return nil, fmt.Errorf("curate: raw table: %w", err)
	}
	byPart := map[string][]lake.Segment{}
	for _, sg := range live {
		pk := partitionKey(sg.Topic, sg.Partition)
		byPart[pk] = append(byPart[pk], sg)
	}
	var reads []segmentRead
	for _, r := range ranges {
		segs := byPart[partitionKey(r.Topic, r.Partition)]
		i, _ := slices.BinarySearchFunc(segs, r.First, func(sg lake.Segment, first int64) int {
			return cmp.Compare(sg.Range.Last, first)
		})
		for ; i < len(segs) && segs[i].Range.First <= r.Last; i++ {
			sr := segs[i].Range
			want := lake.Range{First: max(sr.First, r.First), Last: min(sr.Last, r.Last)}
			reads = append(reads, segmentRead{key: segs[i].Key, want: want, full: want == sr})
		}
	}
	files := make([]*lake.RawFile, len(reads))
	parts := make([][]schemas.Raw, len(reads)) // rows of the partial reads
	errs := make([]error, len(reads))
	// Fetch and open every segment, then read each into its place in one
	// slice (rows are large: concatenating them would copy them again).
	each := func(f func(i int, rd segmentRead) error) error {
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		var wg sync.WaitGroup
		for i, rd := range reads {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := f(i, rd); err != nil {
					errs[i] = fmt.Errorf("curate: %s: %w", rd.key, err)
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	err = each(func(i int, rd segmentRead) error {
		data, err := s.store.Get(ctx, rd.key)
		if err != nil {
			return err
		}
		f, err := lake.OpenRaw(data)
		if err != nil || rd.full {
			files[i] = f
			return err
		}
		all := make([]schemas.Raw, f.NumRows())
		if err := f.ReadInto(all); err != nil {
			return err
		}
		var kept []schemas.Raw
		for _, row := range all {
			if row.Offset >= rd.want.First && row.Offset <= rd.want.Last {
				kept = append(kept, row)
			}
		}
		parts[i] = kept
		return nil
	})
	if err != nil {
		return nil, err
	}
	starts := make([]int, len(reads)+1)
	for i := range reads {
		n := len(parts[i])
		if files[i] != nil {
			n = files[i].NumRows()
		}
		starts[i+1] = starts[i] + n
	}
	if starts[len(reads)] == 0 {
		return nil, nil
	}
	rows := make([]schemas.Raw, starts[len(reads)])
	err = each(func(i int, _ segmentRead) error {
		if files[i] == nil {
			copy(rows[starts[i]:starts[i+1]], parts[i])
			parts[i] = nil
			return nil
		}
		err := files[i].ReadInto(rows[starts[i]:starts[i+1]])
		files[i] = nil
		return err
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// analysis is the pure, order-independent part of curating a record.
type analysis struct {
	m     Metrics
	feats []uint64
	pii   []PIISpan
	sig   dedup.Signature
	dup   dedup.Result // the dedup decision, made in order by the pipeline
}

// chunk is a run of consecutive records analysed by one worker. Its
// buffers (results, signatures, features) are reused by later chunks.
type chunk struct {
	from    int
	res     []analysis
	arena   []uint64 // the features of every record of the chunk
	ends    []int
	ready   chan struct{} // the analysis of chunk from is in res
	deduped chan struct{} // so are the dedup decisions
	free    chan struct{} // the consumer is done with the chunk
}

const (
	chunkRecords = 512
	// chunksAhead is how many chunks per worker may be analysed ahead of
	// the serial consumer: the most analysis memory a window holds.
	chunksAhead = 4
)

// pipeline analyses a window's rows on GOMAXPROCS workers into a ring of
// reused chunks, runs the dedup decisions over them in order on a goroutine
// of their own, and hands them to the serial consumer in order (next), so
// that deciding duplicates overlaps the rest of the serial work, and memory
// stays bounded by the ring whatever the window size.
type pipeline struct {
	ctx   context.Context
	rows  []schemas.Raw
	ring  []*chunk
	taken int // chunks the consumer has taken
	wg    sync.WaitGroup
}

func analyzeParallel(ctx context.Context, cfg Config, rows []schemas.Raw, ix *dedup.Index) *pipeline {
	workers := runtime.GOMAXPROCS(0)
	n := (len(rows) + chunkRecords - 1) / chunkRecords
	p := &pipeline{ctx: ctx, rows: rows, ring: make([]*chunk, min(n, chunksAhead*workers))}
	for i := range p.ring {
		p.ring[i] = &chunk{ready: make(chan struct{}, 1), deduped: make(chan struct{}, 1), free: make(chan struct{}, 1)}
		p.ring[i].free <- struct{}{}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := range n {
			ch := p.ring[i%len(p.ring)]
			select {
			case <-ch.ready:
			case <-ctx.Done():
				return
			}
			for j := range ch.res {
				r := &rows[ch.from+j]
				ch.res[j].dup = ix.AddSignature(dedup.RecordID{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, &ch.res[j].sig)
			}
			ch.deduped <- struct{}{}
		}
	}()
	var next atomic.Int64
	for range min(workers, n) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			an := NewAnalyzer(cfg.Metrics)
			signer, err := dedup.NewSigner(cfg.Dedup)
			if err != nil {
				panic(err) // cfg was validated
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ch := p.ring[i%len(p.ring)]
				select {
				case <-ch.free:
				case <-ctx.Done():
					return
				}
				ch.from = i * chunkRecords
				ch.fill(an, signer, cfg.Redact, rows[ch.from:min(ch.from+chunkRecords, len(rows))])
				ch.ready <- struct{}{}
			}
		}()
	}
	return p
}

// fill analyses rows into the chunk.
func (ch *chunk) fill(an *Analyzer, signer *dedup.Signer, redact bool, rows []schemas.Raw) {
	if cap(ch.res) < len(rows) {
		ch.res = make([]analysis, len(rows))
		ch.ends = make([]int, len(rows))
	}
	ch.res, ch.ends = ch.res[:len(rows)], ch.ends[:len(rows)]
	ch.arena = ch.arena[:0]
	for j := range rows {
		text := rows[j].Text
		res := &ch.res[j]
		res.m = an.Analyze(text)
		ch.arena = append(ch.arena, an.Features()...)
		ch.ends[j] = len(ch.arena)
		res.pii = res.pii[:0]
		if redact && res.m.PII != 0 {
			res.pii = append(res.pii, an.PIISpans()...)
		}
		signer.Sign(&res.sig, text)
	}
	start := 0
	for j := range ch.res {
		ch.res[j].feats = ch.arena[start:ch.ends[j]:ch.ends[j]]
		start = ch.ends[j]
	}
	// One huge record must not pin a huge arena for the life of the stage.
	if cap(ch.arena) > 64<<20 {
		ch.arena = nil
	}
}

// next returns the next chunk in order, or nil at the end of the rows or
// when ctx is done. The chunk is the caller's until the next call.
func (p *pipeline) next() *chunk {
	if p.taken > 0 {
		p.ring[(p.taken-1)%len(p.ring)].free <- struct{}{}
	}
	if p.taken*chunkRecords >= len(p.rows) {
		return nil
	}
	ch := p.ring[p.taken%len(p.ring)]
	select {
	case <-ch.deduped:
	case <-p.ctx.Done():
		return nil
	}
	p.taken++
	return ch
}

// wait waits for the workers to stop (after the last next, or ctx done).
func (p *pipeline) wait() { p.wg.Wait() }

// CommittedWindow returns the newest window whose tables are committed
// (0 when none): curate's state object is the commit point, so a reader of
// curated, audit or curriculum files must take only windows up to it. A
// window file above it may be one a crashed run left and a resume will
// rewrite byte for byte; it is not yet part of the table.
func CommittedWindow(ctx context.Context, store lake.Store) (int64, error) {
	objs, err := store.List(ctx, stateDir)
	if err != nil {
		return 0, err
	}
	var last int64
	for _, o := range objs {
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, stateDir), ".state")
		if seq, err := strconv.ParseInt(name, 10, 64); err == nil && seq > last && strings.HasSuffix(o.Key, ".state") {
			last = seq
		}
	}
	return last, nil
}

// WindowKey returns the object key of window seq of a curate table
// (schemas.TableCurated, TableCurriculum, ...).
func WindowKey(table string, seq int64) string {
	return seqKey(table+"/", seq, ".parquet")
}
