package sampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// Example is one record of a batch with its two augmented views.
type Example struct {
	Topic       string
	Partition   int32
	Offset      int64
	ClusterID   string
	Domain      string
	Text        string // the source text
	Words       int32  // whitespace-separated words of Text
	Stage       int32  // curriculum_stage of the record, as curated
	Difficulty  float32
	CharEntropy float32
	WordEntropy float32
	LengthWords int32
	ViewA       string   // the two augmented views
	ViewB       string   //
	MaskedA     []string // words span-masked out of each view, in order; nil when none
	MaskedB     []string //
	Replay      bool     // drawn from the replay reservoir
}

// Batch is what Next returns: BatchSize examples (fresh ones first, then
// replayed ones) and candidate negatives.
type Batch struct {
	Seq         int64 // batches before this one
	Examples    []Example
	Negatives   []Example // candidate negatives: no view, never a cluster of Examples; nil when none
	Stage       int32     // highest open curriculum stage
	Competence  float64   // c(t) of the pacing
	PlanVersion int64     // the curriculum plan version followed
	Epoch       int64     // completed passes over the sampled data
}

// Source yields batches. *Sampler and *Remote implement it.
type Source interface {
	Next(ctx context.Context) (*Batch, error)
}

var (
	_ Source = (*Sampler)(nil)
	_ Source = (*Remote)(nil)
)

// Status is a snapshot of a sampler.
type Status struct {
	Window           int64            `json:"window"`       // newest committed curated window loaded
	PoolRecords      int64            `json:"pool_records"` // records in the pool
	ReservoirRecords int64            `json:"reservoir_records"`
	Batches          int64            `json:"batches"`
	Examples         int64            `json:"examples"`
	Replayed         int64            `json:"replayed"` // examples drawn from the reservoir
	Epoch            int64            `json:"epoch"`
	Stage            int32            `json:"stage"`
	Competence       float64          `json:"competence"`
	PlanVersion      int64            `json:"plan_version"`
	Domains          map[string]int64 `json:"domains"` // examples emitted per domain
	// Mixture is each domain's probability for the next fresh example,
	// and BaseMixture what it would be without target weighting and the
	// novelty boost: their ratio is how much a domain is favoured.
	Mixture     map[string]float64 `json:"mixture"`
	BaseMixture map[string]float64 `json:"base_mixture"`
	// Targeted is set when the lake was curated with a target sample and
	// TargetWeight steers the mixture.
	Targeted  bool   `json:"targeted"`
	Drift     Drift  `json:"drift"`
	PollError string `json:"poll_error,omitempty"` // the last failure to read the lake, cleared by a success
}

// Errors.
var (
	// ErrCursor is wrapped by every error of Restore about the cursor.
	ErrCursor = errors.New("sampler: invalid cursor")
	// ErrRestore is returned by Restore on a sampler that has made batches.
	ErrRestore = errors.New("sampler: Restore must come before the first Next")
)

// Sampler makes batches from the curated tables of a lake. Next, Cursor
// and Restore must not be called concurrently; Status may be called at any
// time.
type Sampler struct {
	cfg   Config
	store lake.Store
	log   *slog.Logger

	pcg *rand.PCG
	rng *rand.Rand
	vw  *viewer

	started bool // the first load happened (or Restore)

	window  int64 // newest window integrated
	nextSeq int64
	plan    plan
	pool    []*rec // load order; pool[head:] are live
	head    int
	domains map[string]*domainState
	order   []*domainState // by name
	intern  map[string]string

	ring     []*rec // recently emitted records, for negatives
	ringNext int

	batches, examples, replayed, epoch int64
	emitted                            map[string]int64
	recent                             map[string]float64 // each domain's share of the last NoveltyExamples examples (EMA)
	targeted                           bool               // a loaded window's lake has a target sample
	entHist                            [entBins]int64
	lenHist                            [lenBins]int64
	newest                             windowHist

	// A poll of the lake in the background: at most one at a time.
	fetch    *fetchJob
	lastPoll time.Time
	pollErr  string

	// Per-batch scratch.
	words   []string
	inBatch map[int64]bool

	mu     sync.Mutex
	status Status
}

// New returns a sampler over the curated tables of store. It reads nothing
// but the commit point yet: the first Next (or Restore) loads the windows.
// Zero fields of cfg take their defaults; log may be nil.
func New(ctx context.Context, cfg Config, store lake.Store, log *slog.Logger) (*Sampler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := curate.CommittedWindow(ctx, store); err != nil {
		return nil, fmt.Errorf("sampler: read the lake's commit point: %w", err)
	}
	s := &Sampler{cfg: cfg, store: store, log: log, vw: newViewer(&cfg), inBatch: map[int64]bool{}}
	s.init()
	s.publish()
	return s, nil
}

// init sets the sampler's state to that of a fresh sampler.
func (s *Sampler) init() {
	s.pcg = rand.NewPCG(s.cfg.Seed, mix64(s.cfg.Seed^0x5851f42d4c957f2d))
	s.rng = rand.New(s.pcg)
	s.started, s.window, s.nextSeq = false, 0, 0
	s.plan = newPlan(nil, s.cfg.Pacing)
	s.pool, s.head = nil, 0
	s.domains, s.order, s.intern = map[string]*domainState{}, nil, map[string]string{}
	s.ring, s.ringNext = nil, 0
	s.batches, s.examples, s.replayed, s.epoch = 0, 0, 0, 0
	s.emitted = map[string]int64{}
	s.recent = map[string]float64{}
	s.targeted = false
	s.entHist, s.lenHist = [entBins]int64{}, [lenBins]int64{}
	s.newest = windowHist{}
}

// Close stops a poll of the lake in flight and waits for it. The sampler
// must not be used afterwards.
func (s *Sampler) Close() error {
	if s.fetch != nil {
		s.fetch.cancel()
		<-s.fetch.done
		s.fetch = nil
	}
	return nil
}

// Status returns a snapshot; it is safe to call concurrently with Next.
func (s *Sampler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Domains = maps.Clone(s.status.Domains)
	st.Mixture = maps.Clone(s.status.Mixture)
	st.BaseMixture = maps.Clone(s.status.BaseMixture)
	return st
}

// Next returns the next batch. The first call loads every committed
// window; later calls take in the windows a background poll (every
// cfg.Poll) has read since, before making the batch. Without any eligible
// record it waits, polling the lake, until there is one or ctx is done.
func (s *Sampler) Next(ctx context.Context) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.started {
		s.started = true
		if err := s.catchUp(ctx, math.MaxInt64, nil); err != nil {
			return nil, err
		}
		s.lastPoll = time.Now()
	}
	for {
		s.collect(ctx)
		if b := s.makeBatch(); b != nil {
			s.publish()
			return b, nil
		}
		// Nothing to sample: wait for the lake.
		if s.fetch == nil {
			wait := time.Until(s.lastPoll.Add(s.cfg.Poll))
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				case <-t.C:
				}
			}
			s.startFetch()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.fetch.done:
		}
	}
}

// catchUp loads the committed windows after s.window up to limit, one at a
// time; need, when set, collects the records whose seq it lists.
func (s *Sampler) catchUp(ctx context.Context, limit int64, need map[int64]*rec) error {
	committed, err := curate.CommittedWindow(ctx, s.store)
	if err != nil {
		return fmt.Errorf("sampler: read the lake's commit point: %w", err)
	}
	if limit != math.MaxInt64 && committed < limit {
		return fmt.Errorf("%w: it has loaded window %d, the lake commits only %d", ErrCursor, limit, committed)
	}
	for w := s.window + 1; w <= min(committed, limit); w++ {
		lw, err := readWindow(ctx, s.store, w, s.targeted)
		if err != nil {
			return err
		}
		s.integrate(lw, need)
	}
	s.publish()
	return nil
}

// loadedWindow is one window as read from the lake.
type loadedWindow struct {
	seq      int64
	rows     []schemas.Curated
	plan     []schemas.CurriculumPlan
	targeted bool // the lake's curate fitted a target sample
}

// readWindow reads the curated rows and the curriculum plan of window w (a
// window that kept no record has no curated file), and whether the lake
// has a target sample, unless targeted says it is already known to.
func readWindow(ctx context.Context, store lake.Store, w int64, targeted bool) (loadedWindow, error) {
	lw := loadedWindow{seq: w, targeted: targeted}
	if !targeted {
		var err error
		if _, lw.targeted, err = curate.ReadTargetInfo(ctx, store); err != nil {
			return lw, fmt.Errorf("sampler: window %d: %w", w, err)
		}
	}
	data, err := store.Get(ctx, curate.WindowKey(schemas.TableCurated, w))
	switch {
	case errors.Is(err, lake.ErrNotExist):
	case err != nil:
		return lw, fmt.Errorf("sampler: window %d: %w", w, err)
	default:
		if lw.rows, err = lake.ReadRows[schemas.Curated](data); err != nil {
			return lw, fmt.Errorf("sampler: window %d: curated: %w", w, err)
		}
	}
	data, err = store.Get(ctx, curate.WindowKey(schemas.TableCurriculum, w))
	switch {
	case errors.Is(err, lake.ErrNotExist):
	case err != nil:
		return lw, fmt.Errorf("sampler: window %d: %w", w, err)
	default:
		if lw.plan, err = lake.ReadRows[schemas.CurriculumPlan](data); err != nil {
			return lw, fmt.Errorf("sampler: window %d: curriculum: %w", w, err)
		}
	}
	return lw, nil
}

// maxFetch bounds the windows one background poll reads.
const maxFetch = 4

type fetchJob struct {
	cancel context.CancelFunc
	done   chan struct{}
	out    []loadedWindow
	err    error
}

// startFetch polls the lake in the background for the windows after
// s.window. The poll outlives the Next that started it (a caller's
// per-call deadline must not keep the sampler from following the lake);
// it reads at most maxFetch windows and ends, or Close cancels it.
func (s *Sampler) startFetch() {
	fctx, cancel := context.WithCancel(context.Background())
	j := &fetchJob{cancel: cancel, done: make(chan struct{})}
	s.fetch, s.lastPoll = j, time.Now()
	from, store, known := s.window+1, s.store, s.targeted
	go func() {
		defer close(j.done)
		defer cancel()
		committed, err := curate.CommittedWindow(fctx, store)
		if err != nil {
			j.err = err
			return
		}
		for w := from; w <= committed && w < from+maxFetch; w++ {
			lw, err := readWindow(fctx, store, w, known)
			if err != nil {
				j.err = err
				return
			}
			known = known || lw.targeted
			j.out = append(j.out, lw)
		}
	}()
}

// collect takes in what a finished background poll read, and starts the
// next poll when it is due.
func (s *Sampler) collect(ctx context.Context) {
	if j := s.fetch; j != nil {
		select {
		case <-j.done:
			s.fetch = nil
			for _, lw := range j.out {
				s.integrate(lw, nil)
			}
			switch {
			case j.err != nil && !errors.Is(j.err, context.Canceled):
				s.pollErr = j.err.Error()
				s.log.Error("sampler: polling the lake failed; retrying", "err", j.err)
			case j.err == nil:
				s.pollErr = ""
			}
			if len(j.out) == maxFetch { // more may be waiting
				s.lastPoll = time.Time{}
			}
		default:
		}
	}
	if s.fetch == nil && time.Since(s.lastPoll) >= s.cfg.Poll && ctx.Err() == nil {
		s.startFetch()
	}
}

func (s *Sampler) internStr(x string) string {
	if v, ok := s.intern[x]; ok {
		return v
	}
	if len(s.intern) < 1<<16 {
		s.intern[x] = x
	}
	return x
}

// integrate adds a window's records to the pool, the queues and the
// reservoir, evicts the oldest records beyond PoolRecords and takes the
// window's plan. The result depends only on the windows integrated so far,
// not on how they were grouped.
func (s *Sampler) integrate(lw loadedWindow, need map[int64]*rec) {
	if lw.seq != s.window+1 {
		return // already integrated (or out of order: never)
	}
	s.window = lw.seq
	if lw.targeted && !s.targeted {
		s.targeted = true
		s.retarget()
	}
	if lw.plan != nil {
		s.plan = newPlan(lw.plan, s.cfg.Pacing)
	}
	if len(lw.rows) == 0 {
		return
	}
	type qk struct {
		d *domainState
		s int32
	}
	added := map[qk][]*rec{}
	var keys []qk
	quota := s.cfg.quota()
	var hist windowHist
	hist.reset(lw.seq)
	for i := range lw.rows {
		row := &lw.rows[i]
		r := &rec{
			seq: s.nextSeq, window: lw.seq,
			topic: s.internStr(row.Topic), partition: row.Partition, offset: row.Offset,
			// Copies: a record the reservoir keeps must not pin the
			// buffers of the window it was decoded from.
			cluster: strings.Clone(row.ClusterID), domain: s.internStr(row.Domain), text: strings.Clone(row.Text),
			rawStage: row.CurriculumStage, stage: min(maxStage, max(0, row.CurriculumStage)),
			diff: row.Difficulty, charEnt: row.CharEntropy, wordEnt: row.WordEntropy, lenWords: row.LengthWords,
			tsim: row.TargetSimilarity,
		}
		r.weight = s.targetWeightOf(r)
		s.nextSeq++
		if need != nil {
			if _, ok := need[r.seq]; ok {
				need[r.seq] = r
			}
		}
		d := s.domain(r.domain)
		k := qk{d, r.stage}
		if _, ok := added[k]; !ok {
			keys = append(keys, k)
		}
		added[k] = append(added[k], r)
		d.res.offer(quota, priority(s.cfg.Seed, r.seq), r)
		s.pool = append(s.pool, r)
		hist.add(r.domain, r.wordEnt, r.lenWords)
	}
	s.newest = hist
	for _, k := range keys {
		k.d.queue(k.s, s.epoch).add(s.cfg.Seed, added[k])
	}
	// Evict the oldest records beyond the bound.
	for len(s.pool)-s.head > s.cfg.PoolRecords {
		r := s.pool[s.head]
		s.pool[s.head] = nil
		s.head++
		s.domains[r.domain].queues[r.stage].evict(s.cfg.Seed, r)
	}
	if s.head > 1024 && s.head > len(s.pool)/2 {
		n := copy(s.pool, s.pool[s.head:])
		clear(s.pool[n:])
		s.pool, s.head = s.pool[:n], 0
	}
}

func (s *Sampler) domain(name string) *domainState {
	d := s.domains[name]
	if d == nil {
		d = &domainState{name: name}
		s.domains[name] = d
		i := sort.Search(len(s.order), func(i int) bool { return s.order[i].name >= name })
		s.order = append(s.order, nil)
		copy(s.order[i+1:], s.order[i:])
		s.order[i] = d
	}
	return d
}

// progress returns the training progress t of the curriculum.
func (s *Sampler) progress() float64 {
	return min(1, float64(s.examples)/float64(s.cfg.CurriculumExamples))
}

// openStages returns the stages open at the current progress: stages below
// open are eligible, or every stage when all is set. When no open stage has
// a record, the easiest stage that has one opens too.
func (s *Sampler) openStages() (open int, all bool, top int32) {
	open, all = s.plan.open(s.progress())
	if !all && s.eligible(open, all) == 0 {
		lowest := maxStage + 1
		for _, d := range s.order {
			for st, q := range d.queues {
				if q != nil && q.live > 0 && st < lowest {
					lowest = st
				}
			}
		}
		if lowest <= maxStage {
			open = lowest + 1
			all = open >= s.plan.stages()
		}
	}
	switch {
	case all && s.plan.stages() > 0:
		top = int32(s.plan.stages() - 1)
	case all:
		top = 0
		for _, d := range s.order {
			for st, q := range d.queues {
				if q != nil && q.live > 0 && int32(st) > top {
					top = int32(st)
				}
			}
		}
	default:
		top = int32(open - 1)
	}
	return open, all, top
}

func (s *Sampler) eligible(open int, all bool) int {
	n := 0
	for _, d := range s.order {
		n += d.live(open, all)
	}
	return n
}

// weights returns the mixture weight of every domain (in s.order) given
// the open stages.
func (s *Sampler) weights(open int, all bool) ([]float64, float64) {
	return s.mixture(open, all, true)
}

// mixture returns the weight of every domain (in s.order) given the open
// stages: the mixture's formula over each domain's size n_d (its eligible
// records, or their summed target weights on a targeted lake), then the
// novelty boost. Without levers, n_d is the record count and there is no
// boost.
func (s *Sampler) mixture(open int, all, levers bool) ([]float64, float64) {
	w := make([]float64, len(s.order))
	var total float64
	weighted := levers && s.targeted && s.cfg.targetWeight() > 0
	for i, d := range s.order {
		n := float64(d.live(open, all))
		if n == 0 {
			continue
		}
		if weighted {
			n = d.mass(open, all)
		}
		switch s.cfg.Mixture {
		case MixtureTemperature:
			w[i] = math.Pow(n, 1/s.cfg.Temperature)
		case MixtureFixed:
			x, ok := s.cfg.Weights[d.name]
			if !ok {
				x = s.cfg.Weights["*"]
			}
			w[i] = x
		default:
			w[i] = n
		}
		total += w[i]
	}
	if b := s.cfg.noveltyBoost(); levers && b > 0 && total > 0 {
		var seen float64
		for _, d := range s.order {
			seen += s.recent[d.name]
		}
		if seen > 0 {
			boosted := 0.0
			for i, d := range s.order {
				if w[i] > 0 {
					deficit := max(0, 1-(s.recent[d.name]/seen)/(w[i]/total))
					w[i] *= 1 + b*deficit
				}
				boosted += w[i]
			}
			total = boosted
		}
	}
	return w, total
}

// TargetRecordWeight is a record's weight in its domain's size on a lake
// curated with a target sample: exp(β × target_similarity), the
// similarity clamped to ±8 nats so that one record cannot outweigh its
// domain (1 when β ≤ 0).
func TargetRecordWeight(beta float64, similarity float32) float64 {
	if beta <= 0 {
		return 1
	}
	return math.Exp(beta * float64(min(8, max(-8, similarity))))
}

// targetWeightOf is a record's weight in its domain's size.
func (s *Sampler) targetWeightOf(r *rec) float64 {
	if !s.targeted {
		return 1
	}
	return TargetRecordWeight(s.cfg.targetWeight(), r.tsim)
}

// retarget gives every record its target weight, once the sampler learns
// that the lake has a target sample.
func (s *Sampler) retarget() {
	for _, r := range s.pool[s.head:] {
		r.weight = s.targetWeightOf(r)
	}
	for _, d := range s.order {
		for _, r := range d.res.rs {
			r.weight = s.targetWeightOf(r)
		}
		for _, q := range d.queues {
			if q != nil {
				q.remass()
			}
		}
	}
}

// noteRecent moves the recent domain shares by one batch: an exponential
// moving average over about NoveltyExamples examples.
func (s *Sampler) noteRecent(picked []*rec) {
	if s.cfg.noveltyBoost() <= 0 || len(picked) == 0 {
		return
	}
	a := min(1, float64(len(picked))/float64(s.cfg.NoveltyExamples))
	for k, v := range s.recent {
		s.recent[k] = v * (1 - a)
	}
	for _, r := range picked {
		s.recent[r.domain] += a / float64(len(picked))
	}
}

func pick(rng *rand.Rand, w []float64, total float64) int {
	u := rng.Float64() * total
	last := -1
	for i, x := range w {
		if x <= 0 {
			continue
		}
		last = i
		if u < x {
			return i
		}
		u -= x
	}
	return last
}

// makeBatch makes the next batch, or returns nil when no record is
// eligible.
func (s *Sampler) makeBatch() *Batch {
	open, all, top := s.openStages()
	w, total := s.weights(open, all)
	if total <= 0 {
		return nil
	}
	t := s.progress()
	b := &Batch{
		Seq: s.batches, Stage: top, Competence: s.plan.competence(t),
		PlanVersion: s.plan.version,
	}
	clear(s.inBatch)
	bs := s.cfg.BatchSize
	nReplay := s.cfg.replayN()
	picked := make([]*rec, 0, bs)
	replay := make([]bool, 0, bs)
	nFresh := bs - nReplay
	draw := func() *rec {
		d := s.order[pick(s.rng, w, total)]
		// A stage in proportion to the records it has left in this pass:
		// the domain's open stages are drawn as one shuffled pass.
		rem := 0
		for st, q := range d.queues {
			if q != nil && (all || st < open) {
				rem += q.remaining()
			}
		}
		if rem == 0 {
			for st, q := range d.queues {
				if q != nil && q.live > 0 && (all || st < open) {
					q.newEpoch(s.cfg.Seed)
					rem += q.remaining()
				}
			}
		}
		u := s.rng.IntN(rem)
		var q *queue
		for st, x := range d.queues {
			if x == nil || (!all && st >= open) {
				continue
			}
			if r := x.remaining(); u < r {
				q = x
				break
			} else {
				u -= r
			}
		}
		return q.next(s.cfg.Seed)
	}
	for range nFresh {
		r := draw()
		picked = append(picked, r)
		replay = append(replay, false)
		s.inBatch[r.seq] = true
	}
	// Replay: uniform over the reservoir's eligible records not in the
	// batch; a slot it cannot fill takes a fresh record.
	resTotal := 0
	for _, d := range s.order {
		resTotal += len(d.res.rs)
	}
	for range nReplay {
		var r *rec
		if resTotal > 0 {
			for range 16 {
				j := s.rng.IntN(resTotal)
				var c *rec
				for _, d := range s.order {
					if j < len(d.res.rs) {
						c = d.res.rs[j]
						break
					}
					j -= len(d.res.rs)
				}
				if (all || int(c.stage) < open) && !s.inBatch[c.seq] {
					r = c
					break
				}
			}
		}
		if r == nil {
			r = draw()
			replay = append(replay, false)
		} else {
			replay = append(replay, true)
		}
		picked = append(picked, r)
		s.inBatch[r.seq] = true
	}
	b.Examples = make([]Example, len(picked))
	for i, r := range picked {
		e := s.example(r)
		e.Replay = replay[i]
		s.words = splitWords(s.words, r.text)
		e.Words = int32(len(s.words))
		e.ViewA, e.MaskedA, e.ViewB, e.MaskedB = s.vw.views(s.rng, s.words)
		b.Examples[i] = e
		if e.Replay {
			s.replayed++
		}
		s.emitted[r.domain]++
		s.entHist[entBin(r.wordEnt)]++
		s.lenHist[lenBin(r.lenWords)]++
	}
	if len(s.ring) == 0 { // the first batch: the newest records stand in
		n := min(s.cfg.NegativePool, len(s.pool)-s.head)
		s.ring = append(s.ring, s.pool[len(s.pool)-n:]...)
	}
	b.Negatives = s.negatives(picked)
	s.pushRing(picked)
	s.noteRecent(picked)
	s.batches++
	s.examples += int64(len(picked))
	s.updateEpoch(open, all, w)
	b.Epoch = s.epoch
	return b
}

func (s *Sampler) example(r *rec) Example {
	return Example{
		Topic: r.topic, Partition: r.partition, Offset: r.offset, ClusterID: r.cluster,
		Domain: r.domain, Text: r.text, Stage: r.rawStage, Difficulty: r.diff,
		CharEntropy: r.charEnt, WordEntropy: r.wordEnt, LengthWords: r.lenWords,
	}
}

// updateEpoch sets the epoch to the fewest passes any sampled queue (open,
// with records, of a domain of positive weight) has completed; it never
// goes down.
func (s *Sampler) updateEpoch(open int, all bool, w []float64) {
	lo := int64(-1)
	for i, d := range s.order {
		if w[i] <= 0 {
			continue
		}
		for st, q := range d.queues {
			if q == nil || q.live == 0 || (!all && st >= open) {
				continue
			}
			if lo < 0 || q.epoch < lo {
				lo = q.epoch
			}
		}
	}
	s.epoch = max(s.epoch, lo)
}

// negatives draws candidate negatives from the ring of recently emitted
// records: first of the batch's domains (harder), then of any; never of a
// cluster of the batch, never twice the same.
func (s *Sampler) negatives(batch []*rec) []Example {
	want := s.cfg.negatives()
	if want == 0 || len(s.ring) == 0 {
		return nil
	}
	clusters := make(map[string]bool, len(batch))
	domains := map[string]bool{}
	for _, r := range batch {
		clusters[r.cluster] = true
		domains[r.domain] = true
	}
	var out []Example
	for phase := range 2 {
		for try := 0; len(out) < want && try < 4*want; try++ {
			c := s.ring[s.rng.IntN(len(s.ring))]
			if clusters[c.cluster] || (phase == 0 && !domains[c.domain]) {
				continue
			}
			clusters[c.cluster] = true
			e := s.example(c)
			e.Words = int32(len(splitWords(s.words, c.text)))
			out = append(out, e)
		}
	}
	return out
}

// pushRing remembers the batch's records as candidate negatives.
func (s *Sampler) pushRing(batch []*rec) {
	n := s.cfg.NegativePool
	for _, r := range batch {
		if len(s.ring) < n {
			s.ring = append(s.ring, r)
			continue
		}
		s.ring[s.ringNext] = r
		s.ringNext = (s.ringNext + 1) % n
	}
}

// publish refreshes the status snapshot.
func (s *Sampler) publish() {
	open, all, top := s.openStages()
	comp := s.plan.competence(s.progress())
	var res int64
	for _, d := range s.order {
		res += int64(len(d.res.rs))
	}
	doms := make(map[string]int64, len(s.emitted))
	for k, v := range s.emitted {
		doms[k] = v
	}
	mix, base := map[string]float64{}, map[string]float64{}
	for _, x := range []struct {
		m      map[string]float64
		levers bool
	}{{mix, true}, {base, false}} {
		w, total := s.mixture(open, all, x.levers)
		for i, d := range s.order {
			if total > 0 && w[i] > 0 {
				x.m[d.name] = w[i] / total
			}
		}
	}
	st := Status{
		Window: s.window, PoolRecords: int64(len(s.pool) - s.head), ReservoirRecords: res,
		Batches: s.batches, Examples: s.examples, Replayed: s.replayed, Epoch: s.epoch,
		Stage: top, Competence: comp, PlanVersion: s.plan.version, Domains: doms,
		Drift: s.drift(), PollError: s.pollErr,
		Mixture: mix, BaseMixture: base, Targeted: s.targeted && s.cfg.targetWeight() > 0,
	}
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
}
