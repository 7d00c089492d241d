package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// Errors.
var (
	// ErrNoBroker means no bootstrap broker answered at start.
	ErrNoBroker = errors.New("ingest: no broker reachable")
	// ErrFenced means a newer holder of a partition claimed the offsets this
	// member was about to commit (lake.ErrClaimed): the member gives the
	// partition up and goes on with its others.
	ErrFenced = errors.New("ingest: partition fenced by a newer holder")
	// ErrOffsetGap means offsets of a partition that the lake had not
	// consumed are no longer on the broker (on_gap: fail). The error names
	// the topic, the partition and the missing range.
	ErrOffsetGap = errors.New("ingest: offsets missing from the broker")
	// ErrOffsetsBackwards means the lake holds offsets a partition no longer
	// reaches, or the topic's id changed: the topic was deleted and
	// recreated. It stops ingest whatever on_gap says.
	ErrOffsetsBackwards = errors.New("ingest: partition offsets went backwards")
)

// Summary is what an Ingester did, as printed at exit.
type Summary struct {
	Records  int64         // valid records committed to raw
	DLQ      int64         // records committed to the DLQ
	Bytes    int64         // value bytes of both
	Segments int64         // raw segments committed
	Active   time.Duration // busy time: first to last fetch, plus the final commit
}

// Rate is records (valid and DLQ) per active second.
func (s Summary) Rate() float64 {
	if s.Active <= 0 {
		return 0
	}
	return float64(s.Records+s.DLQ) / s.Active.Seconds()
}

func (s Summary) String() string {
	return fmt.Sprintf("records=%d bytes=%d dlq=%d segments=%d active_s=%.2f rate=%.0f rec/s",
		s.Records, s.Bytes, s.DLQ, s.Segments, s.Active.Seconds(), s.Rate())
}

// Ingester is one member of an ingest consumer group. Create it with New, run
// it with Run; it is not reusable after Run returns.
type Ingester struct {
	cfg   Config
	store lake.Store
	log   *slog.Logger
	m     *metrics
	sec   *clientSecurity
	dial  *kafka.Dialer
	// transport carries the kafka.Client calls (offsets, metadata).
	transport *kafka.Transport
	admin     *kgo.Client // lists partition offsets; set while Run runs
	// partitionOpts are added to every partition client's options (tests
	// hook the client's polls with them).
	partitionOpts []kgo.Opt

	records, dlq, bytes, segments atomic.Int64
	// Active time: from the first fetch to the last, plus the longest
	// commit that started after the last fetch (the drain), so waiting for
	// data or for the idle timeout is not counted.
	firstFetch, lastFetch, drain atomic.Int64 // unix nanos; drain in ns
	// progress is the last time (unix nanos) the member was seen with its
	// partitions caught up, or Run's start: with lastFetch, what tells a
	// stalled member (Stall) from an idle one.
	progress atomic.Int64
	// started is set once a generation knows where each of its partitions
	// starts, and stays set.
	started atomic.Bool
	warns   *warnings

	mu    sync.Mutex
	gen   *generation // nil between generations
	fatal error

	idle   atomic.Bool
	stopFn context.CancelFunc

	compacting sync.Mutex // held by the partition compacting, if any
}

// generation is the state of one consumer-group generation of this member.
type generation struct {
	g      *kafka.Generation
	parts  map[topicPartition]*partition
	budget Budget      // the memory_limit shared among parts
	ready  atomic.Bool // every partition knows its position
}

type topicPartition struct {
	topic string
	part  int32
}

// New returns an Ingester for a validated configuration. Metrics are
// registered on reg (nil: not exported).
func New(cfg Config, store lake.Store, log *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sec, err := newClientSecurity(cfg.Security, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(cfg.DialTimeout)
	in := &Ingester{
		cfg: cfg, store: store, log: log, warns: newWarnings(log, WarnInterval),
		sec: sec, dial: sec.dialer(timeout), transport: sec.transport(timeout),
	}
	in.m = newMetrics(reg, in)
	return in, nil
}

// client returns a kafka-go client of the bootstrap brokers.
func (in *Ingester) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(in.cfg.Brokers...), Timeout: time.Duration(in.cfg.DialTimeout), Transport: in.transport}
}

// CheckBrokers dials every bootstrap broker, through TLS and SASL when
// configured. It returns nil once one answers; else an error wrapping
// ErrAuthentication or ErrTLS when a broker refused the credentials or the
// TLS handshake failed (saying which), or one wrapping ErrNoBroker when none
// answers within the dial timeout.
func (in *Ingester) CheckBrokers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(in.cfg.DialTimeout))
	defer cancel()
	var errs []error
	for _, b := range in.cfg.Brokers {
		conn, err := in.dial.DialContext(ctx, "tcp", b)
		if err == nil {
			_, err = conn.ApiVersions()
			conn.Close()
		}
		if err == nil {
			return nil
		}
		if serr := in.sec.explain(ctx, []string{b}, time.Duration(in.cfg.DialTimeout), err); serr != nil {
			return serr
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return fmt.Errorf("%w (tried %v): %w", ErrNoBroker, in.cfg.Brokers, errors.Join(errs...))
}

// Summary returns what the Ingester has done so far.
func (in *Ingester) Summary() Summary {
	s := Summary{
		Records: in.records.Load(), DLQ: in.dlq.Load(), Bytes: in.bytes.Load(),
		Segments: in.segments.Load(),
	}
	if f, l := in.firstFetch.Load(), in.lastFetch.Load(); f != 0 && l >= f {
		s.Active = time.Duration(l-f) + time.Duration(in.drain.Load())
	}
	return s
}

// Status is a snapshot for /healthz and /readyz.
type Status struct {
	Generation int32    `json:"generation"`
	Member     string   `json:"member,omitempty"`
	Partitions []string `json:"partitions"`
	Idle       bool     `json:"idle"`
	Records    int64    `json:"records"`
	DLQ        int64    `json:"dlq"`
	// Ready is true once the member has joined a generation and knows
	// where each of its partitions starts; it stays true across
	// rebalances.
	Ready bool `json:"ready"`
	// Stalled, when set, says why the member is degraded (Stall).
	Stalled *Stall `json:"stalled,omitempty"`
	// Error is the fatal error Run stops with.
	Error string `json:"error,omitempty"`
}

// Status returns the member's current state.
func (in *Ingester) Status() Status {
	stall := in.stall(time.Now())
	in.mu.Lock()
	defer in.mu.Unlock()
	st := Status{Idle: in.idle.Load(), Records: in.records.Load(), DLQ: in.dlq.Load(), Partitions: []string{},
		Ready: in.started.Load(), Stalled: stall}
	if in.fatal != nil {
		st.Error = in.fatal.Error()
	}
	if in.gen != nil {
		st.Generation, st.Member = in.gen.g.ID, in.gen.g.MemberID
		for tp := range in.gen.parts {
			st.Partitions = append(st.Partitions, tp.topic+"/"+strconv.Itoa(int(tp.part)))
		}
		sort.Strings(st.Partitions)
	}
	return st
}

// Run joins the group and ingests until ctx is done, a fatal error occurs,
// or (with ExitOnIdle) the member has been idle long enough. On the way out
// it stops fetching, commits every open segment, and leaves the group. It
// returns nil on a clean stop.
func (in *Ingester) Run(ctx context.Context) error {
	cfg := in.cfg
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     cfg.Group,
		Brokers:                cfg.Brokers,
		Dialer:                 in.dial,
		Topics:                 cfg.Topics,
		SessionTimeout:         time.Duration(cfg.SessionTimeout),
		HeartbeatInterval:      time.Duration(cfg.HeartbeatInterval),
		RebalanceTimeout:       time.Duration(cfg.RebalanceTimeout),
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		Timeout:                time.Duration(cfg.DialTimeout),
		ErrorLogger:            in.kafkaLogger("kafka: "),
	})
	if err != nil {
		return fmt.Errorf("ingest: consumer group: %w", err)
	}
	if in.admin, err = in.newClient(); err != nil {
		cg.Close()
		return fmt.Errorf("ingest: kafka client: %w", err)
	}
	defer in.admin.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	in.stopFn = stop
	in.progress.Store(time.Now().UnixNano())
	defer func() { in.warns.flush(time.Now(), true) }()
	defer in.transport.CloseIdleConnections()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in.watchIdle(runCtx, stop)
	}()

	for {
		g, err := cg.Next(runCtx)
		if err != nil {
			if runCtx.Err() != nil {
				break
			}
			in.warns.warn(time.Now(), "consumer group", "consumer group", "err", err)
			continue
		}
		in.m.rebalances.Inc()
		gen := &generation{g: g, parts: map[topicPartition]*partition{}}
		for topic, as := range g.Assignments {
			for _, a := range as {
				tp := topicPartition{topic, int32(a.ID)}
				gen.parts[tp] = &partition{in: in, gen: gen, topic: topic, id: int32(a.ID)}
			}
		}
		gen.budget = BudgetFor(cfg, len(gen.parts))
		in.log.Info("joined generation", "generation", g.ID, "member", g.MemberID, "partitions", len(gen.parts),
			"fetch_bytes", gen.budget.FetchBytes, "roll_bytes", gen.budget.RollBytes)
		in.mu.Lock()
		in.gen = gen
		in.mu.Unlock()
		in.m.assigned.Set(float64(len(gen.parts)))
		g.Start(func(gctx context.Context) { in.runGeneration(gctx, gen) })
	}
	// Closing the group ends the generation: its partitions stop fetching,
	// commit what they hold, and only then does the member leave the group.
	cg.Close()
	wg.Wait()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.gen = nil
	return in.fatal
}

// fail records a fatal error and stops Run.
func (in *Ingester) fail(err error) {
	in.mu.Lock()
	if in.fatal == nil {
		in.fatal = err
	}
	in.mu.Unlock()
	in.log.Error("ingest stopping", "err", err)
	if in.stopFn != nil {
		in.stopFn()
	}
}

// runGeneration runs every assigned partition until the generation ends.
func (in *Ingester) runGeneration(gctx context.Context, gen *generation) {
	defer func() {
		in.mu.Lock()
		if in.gen == gen {
			in.gen = nil
		}
		in.mu.Unlock()
		in.m.assigned.Set(0)
	}()
	var wg sync.WaitGroup
	var readyWG sync.WaitGroup
	for _, p := range gen.parts {
		wg.Add(1)
		readyWG.Add(1)
		pctx, stop := context.WithCancel(gctx)
		p.stop = stop
		go func() {
			defer wg.Done()
			defer stop()
			err := p.run(pctx, readyWG.Done)
			switch {
			case errors.Is(err, ErrFenced):
				// Another member holds the partition now: leave it to
				// that member, keep the others.
				in.m.fenced.WithLabelValues(p.topic).Inc()
				in.log.Warn("partition given up", "topic", p.topic, "partition", p.id, "err", err)
			case err != nil:
				in.fail(fmt.Errorf("%s/%d: %w", p.topic, p.id, err))
			}
		}()
	}
	readyWG.Wait()
	gen.ready.Store(true)
	in.started.Store(true)
	wg.Wait()
	for _, p := range gen.parts {
		in.m.lag.DeleteLabelValues(p.topic, strconv.Itoa(int(p.id)))
	}
	// A generation must not end before its context does, or kafka-go would
	// end it for every member; wait for the end when partitions gave up early.
	<-gctx.Done()
}

// watchIdle tracks whether the member is idle and stops it after ExitOnIdle.
func (in *Ingester) watchIdle(ctx context.Context, stop func()) {
	client := in.client()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var since time.Time
	var sinceGen *generation
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		in.warns.flush(time.Now(), false)
		in.mu.Lock()
		gen := in.gen
		in.mu.Unlock()
		idle := false
		if gen != nil && gen.ready.Load() {
			var own bool
			own, idle = in.caughtUp(ctx, client, gen)
			if own {
				in.progress.Store(time.Now().UnixNano())
			}
		}
		in.idle.Store(idle)
		if idle {
			in.m.idle.Set(1)
		} else {
			in.m.idle.Set(0)
		}
		if !idle || gen != sinceGen {
			since, sinceGen = time.Time{}, gen
			if !idle {
				continue
			}
		}
		if since.IsZero() {
			since = time.Now()
		}
		if in.cfg.ExitOnIdle > 0 && time.Since(since) >= time.Duration(in.cfg.ExitOnIdle) {
			in.log.Info("idle, draining", "for", time.Since(since).Round(time.Millisecond))
			stop()
			return
		}
	}
}

// caughtUp reports whether this member's partitions are consumed to their
// high watermarks (own), and whether every partition of the subscribed
// topics is (all): the others by what the lake holds, so a partition whose
// owner died and whose session has not yet expired is not caught up.
func (in *Ingester) caughtUp(ctx context.Context, client *kafka.Client, gen *generation) (own, all bool) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: in.cfg.Topics})
	if err != nil {
		return false, false
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return false, false
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return false, false
	}
	own, others := true, true
	for topic, ps := range offs.Topics {
		for _, po := range ps {
			if po.Error != nil {
				return false, false
			}
			tp := topicPartition{topic, int32(po.Partition)}
			if p, ok := gen.parts[tp]; ok {
				p.hwm.Store(po.LastOffset)
				pos := p.next.Load()
				in.m.lag.WithLabelValues(topic, strconv.Itoa(po.Partition)).Set(float64(max(po.LastOffset-pos, 0)))
				if pos < po.LastOffset {
					own = false
				}
				continue
			}
			if po.LastOffset <= po.FirstOffset {
				continue // empty partition
			}
			next, ok, err := in.lakeNext(ctx, topic, int32(po.Partition))
			if err != nil || !ok || next < po.LastOffset {
				others = false
			}
		}
	}
	return own, own && others
}

// partition consumes one assigned partition for one generation.
type partition struct {
	in    *Ingester
	gen   *generation
	topic string
	id    int32

	next atomic.Int64 // the next offset to read
	hwm  atomic.Int64

	dlqNext int64 // offsets below are already in the DLQ table

	rawEnc  *lake.Encoder[schemas.Raw]
	dlqEnc  *lake.Encoder[schemas.DLQ]
	gapsEnc *lake.Encoder[schemas.Gap]

	// The claim chain, owned by the committer after resume (see commit):
	// point is the first offset of the next span to claim, cuts the claims
	// made before this member's spans reached them (other writers' and its
	// own takeover), which its segments must follow, and carry the rows
	// read but not yet up to the next cut.
	owner string
	point int64
	cuts  []lake.Claim
	carry *piece

	compacted time.Time          // the last compaction of the partition
	stop      context.CancelFunc // ends run when the partition is fenced
}

// span is a sealed segment of a partition: every offset from first to last.
// A gap span holds no records: the broker no longer had its offsets, and it
// commits as a row of the gaps table.
type span struct {
	first, last int64
	gap         bool
	raw, dlq    arrow.RecordBatch // dlq is nil when the span has no malformed record
	dlqReasons  map[string]int64
	bytes       int64
}

// lakeNext returns where the lake has a partition resume: after the last
// offset its raw and gaps segments account for, and false when it holds
// neither.
func (in *Ingester) lakeNext(ctx context.Context, topic string, part int32) (int64, bool, error) {
	rawNext, rok, err := lake.NextOffset(ctx, in.store, schemas.TableRaw, topic, part)
	if err != nil {
		return 0, false, err
	}
	gapNext, gok, err := lake.NextOffset(ctx, in.store, schemas.TableGaps, topic, part)
	if err != nil {
		return 0, false, err
	}
	switch {
	case rok && gok:
		return max(rawNext, gapNext), true, nil
	case gok:
		return gapNext, true, nil
	}
	return rawNext, rok, nil
}

// resume reads the partition's position from the lake and takes the
// partition over (lake.Takeover): from here on, a member that held it
// before cannot commit a span this member has not claimed the same way.
func (p *partition) resume(ctx context.Context) (int64, error) {
	in := p.in
	live, _, err := lake.PartitionSegments(ctx, in.store, schemas.TableRaw, p.topic, p.id)
	if err != nil {
		return 0, err
	}
	gapNext, gok, err := lake.NextOffset(ctx, in.store, schemas.TableGaps, p.topic, p.id)
	if err != nil {
		return 0, err
	}
	dlqNext, dok, err := lake.NextOffset(ctx, in.store, schemas.TableDLQ, p.topic, p.id)
	if err != nil {
		return 0, err
	}
	if dok {
		p.dlqNext = dlqNext
	}
	// The lake ends after its last raw or gaps segment.
	var start int64
	if len(live) > 0 || gok {
		if len(live) > 0 {
			last := live[len(live)-1].Range.Last
			if last == math.MaxInt64 {
				return 0, fmt.Errorf("lake: %s/%d: segment ends at the last possible offset", p.topic, p.id)
			}
			start = last + 1
		}
		if gok {
			start = max(start, gapNext)
		}
	} else if first, claimed, err := lake.FirstClaim(ctx, in.store, p.topic, p.id); err != nil {
		return 0, err
	} else if claimed {
		// Nothing committed, but an earlier holder claimed where it
		// started: the chain of claims begins there.
		start = first
	} else if start, err = p.brokerStart(ctx); err != nil {
		return 0, err
	}
	owner := fmt.Sprintf("%016x", rand.Uint64())
	if p.gen != nil && p.gen.g != nil {
		owner = fmt.Sprintf("%s/generation=%d/%s", p.gen.g.MemberID, p.gen.g.ID, owner)
	}
	cuts, err := lake.Takeover(ctx, in.store, p.topic, p.id, start, owner)
	if err != nil {
		return 0, err
	}
	p.owner, p.point, p.cuts, p.compacted = owner, start, cuts, time.Now()
	if len(cuts) > 1 {
		in.log.Info("partition taken over with claimed spans in flight", "topic", p.topic, "partition", p.id,
			"offset", start, "claimed_to", cuts[len(cuts)-2].Last)
	}
	return start, nil
}

// brokerStart asks the broker where a partition with nothing in the lake
// starts: its earliest or latest offset (StartFrom).
func (p *partition) brokerStart(ctx context.Context) (int64, error) {
	in := p.in
	b, err := p.bounds(ctx)
	if err != nil {
		return 0, err
	}
	if in.cfg.StartFrom == "latest" {
		return b.end, nil
	}
	return b.start, nil
}

// logBounds are a partition's log start offset and its end offset (the
// high watermark).
type logBounds struct{ start, end int64 }

// bounds lists the partition's log start and end offsets, retrying until
// the broker answers or ctx ends.
func (p *partition) bounds(ctx context.Context) (logBounds, error) {
	for {
		b, err := p.in.listBounds(ctx, p.topic, p.id)
		if err == nil {
			return b, nil
		}
		p.in.warns.warn(time.Now(), "list offsets", "list offsets", "topic", p.topic, "partition", p.id, "err", err)
		select {
		case <-ctx.Done():
			return logBounds{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// listBounds asks the partition's leader for its earliest and latest
// offsets, uncommitted records included.
func (in *Ingester) listBounds(ctx context.Context, topic string, part int32) (logBounds, error) {
	var b logBounds
	for _, ts := range []int64{-2, -1} { // earliest, latest
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = part
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(ctx, time.Duration(in.cfg.DialTimeout))
		resp, err := req.RequestWith(ctx, in.admin)
		cancel()
		if err != nil {
			return b, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return b, errors.New("no offsets in the answer")
		}
		po := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(po.ErrorCode); err != nil {
			return b, err
		}
		if ts == -2 {
			b.start = po.Offset
		} else {
			b.end = po.Offset
		}
	}
	return b, nil
}

// checkPosition compares the position next with the partition's log: it
// returns the missing range when next is below the log start (ok false when
// nothing is missing), and an error wrapping ErrOffsetsBackwards when next
// is beyond the log end.
func (p *partition) checkPosition(ctx context.Context, next int64) (missing lake.Range, ok bool, err error) {
	b, err := p.bounds(ctx)
	if err != nil {
		return lake.Range{}, false, err
	}
	if next > b.end {
		return lake.Range{}, false, fmt.Errorf("%w: %s partition %d: the lake holds offsets up to %d but the partition ends at %d "+
			"(was the topic deleted and recreated?); move the partition's raw, dlq and gaps segments away to ingest it again",
			ErrOffsetsBackwards, p.topic, p.id, next-1, b.end)
	}
	if next < b.start {
		return lake.Range{First: next, Last: b.start - 1}, true, nil
	}
	return lake.Range{}, false, nil
}

// gapError is the error of on_gap: fail.
func (p *partition) gapError(r lake.Range) error {
	return fmt.Errorf("%w: %s partition %d: offsets %d-%d (%d records) are no longer on the broker (retention or "+
		"DeleteRecords removed them before the lake held them); set on_gap: record to land the range in the gaps table and go on",
		ErrOffsetGap, p.topic, p.id, r.First, r.Last, r.Len())
}

// run consumes the partition until gctx is done, then commits what it holds.
// ready is called once the start position is known.
func (p *partition) run(gctx context.Context, ready func()) error {
	in := p.in
	cfg := in.cfg
	start, err := p.resume(gctx)
	if err != nil {
		ready()
		if gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("resume from lake: %w", err)
	}
	p.next.Store(start)
	ready()
	if p.rawEnc, err = lake.NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion); err != nil {
		return err
	}
	if p.dlqEnc, err = lake.NewEncoder[schemas.DLQ](schemas.TableDLQ, schemas.DLQVersion); err != nil {
		return err
	}
	if p.gapsEnc, err = lake.NewEncoder[schemas.Gap](schemas.TableGaps, schemas.GapsVersion); err != nil {
		return err
	}
	in.log.Debug("partition start", "topic", p.topic, "partition", p.id, "offset", start)

	// Spans are committed in order by one committer, so encoding overlaps
	// fetching and decoding; the unbuffered hand-off bounds memory to the
	// open span plus the one being committed.
	// Malformed records below the DLQ's resume point were committed by an
	// earlier run; after this, p.dlqNext belongs to the committer.
	commits := make(chan *span)
	commitErr := make(chan error, 1)
	go func() {
		var err error
		for s := range commits {
			if err == nil {
				err = p.commit(gctx, s)
			}
			s.release()
		}
		commitErr <- err
	}()
	o := &openSpan{p: p, commits: commits, commitErr: commitErr, gctx: gctx, dlqSkip: p.dlqNext,
		first: start, last: start - 1, reasons: map[string]int64{}}
	o.roll.ctx, o.roll.cancel = gctx, func() {}
	o.raw, o.dlq = NewRawBuilder(memory.DefaultAllocator), NewDLQBuilder(memory.DefaultAllocator)
	defer o.raw.Release()
	defer o.dlq.Release()
	defer func() { o.roll.cancel() }()
	o.dec = NewDecoder(cfg.DecoderConfig())

	err = p.consume(gctx, o)
	o.seal()
	close(commits)
	if cerr := <-commitErr; cerr != nil {
		return cerr
	}
	if gctx.Err() != nil && errors.Is(err, gctx.Err()) {
		return nil
	}
	return err
}

// openSpan is the span a partition is filling, rows in raw and dlq: offsets
// first..last (none while last < first).
type openSpan struct {
	p         *partition
	gctx      context.Context
	commits   chan<- *span
	commitErr chan error
	dec       *Decoder
	raw       *RawBuilder
	dlq       *DLQBuilder
	dlqSkip   int64 // malformed records below are in the DLQ already

	first, last int64
	reasons     map[string]int64
	bytes       int64
	// roll ends when the open span is RollInterval old; it is gctx while
	// the span is empty.
	roll struct {
		ctx    context.Context
		cancel context.CancelFunc
	}
}

// seal hands the open span, if it holds any offset, to the committer. It
// returns false when the committer has failed.
func (o *openSpan) seal() bool {
	o.roll.cancel()
	o.roll.ctx, o.roll.cancel = o.gctx, func() {}
	if o.last < o.first {
		return true
	}
	s := &span{first: o.first, last: o.last, raw: o.raw.NewRecordBatch(), dlqReasons: o.reasons, bytes: o.bytes}
	if o.dlq.Len() > 0 {
		s.dlq = o.dlq.NewRecordBatch()
	}
	o.first, o.reasons, o.bytes = o.last+1, map[string]int64{}, 0
	return o.send(s)
}

// skipGap seals the open span, then hands the committer the gap r, which
// must follow it.
func (o *openSpan) skipGap(r lake.Range) bool {
	if !o.seal() {
		return false
	}
	o.first, o.last = r.Last+1, r.Last
	return o.send(&span{first: r.First, last: r.Last, gap: true})
}

func (o *openSpan) send(s *span) bool {
	select {
	case o.commits <- s:
		return true
	case err := <-o.commitErr:
		s.release()
		o.commitErr <- err
		return false
	}
}

// add appends a fetched record to the open span: a valid one to raw, a
// malformed one to the DLQ, a transaction marker to neither; its offset
// joins the span either way. It returns false when the committer has failed.
func (o *openSpan) add(r *kgo.Record) bool {
	p := o.p
	cfg := p.in.cfg
	if o.last < o.first && o.roll.ctx == o.gctx {
		o.roll.ctx, o.roll.cancel = context.WithTimeout(o.gctx, time.Duration(cfg.RollInterval))
	}
	// Offsets between the last record and this one (records of aborted
	// transactions, compacted ones) are in the span too: it ends here.
	o.last = r.Offset
	p.next.Store(r.Offset + 1)
	if r.Attrs.IsControl() {
		return true
	}
	meta := Meta{Topic: p.topic, Partition: p.id, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Headers: r.Headers}
	if len(meta.Key) == 0 {
		meta.Key = nil
	}
	rec, reason := o.dec.Decode(r.Value)
	if reason == "" {
		o.raw.Append(meta, rec)
	} else if r.Offset >= o.dlqSkip {
		o.dlq.Append(meta, r.Value, reason)
		o.reasons[reason]++
	}
	o.bytes += int64(len(r.Value))
	if o.raw.Len()+o.dlq.Len() >= cfg.RollRecords || o.raw.Bytes()+o.dlq.Bytes() >= p.gen.budget.RollBytes {
		return o.seal()
	}
	return true
}

// errCommitFailed stops consume; the committer's error is the one returned.
var errCommitFailed = errors.New("ingest: commit failed")

// consume reads the partition into o until gctx ends or an error stops it.
// Before reading, and again whenever the broker says the position is out of
// range, it checks the position against the partition's log: missing
// offsets are a gap (on_gap), a position beyond the end an error.
func (p *partition) consume(gctx context.Context, o *openSpan) error {
	in := p.in
	for gctx.Err() == nil {
		next := p.next.Load()
		missing, gap, err := p.checkPosition(gctx, next)
		if err != nil {
			return err
		}
		if gap {
			if in.cfg.OnGap != OnGapRecord {
				return p.gapError(missing)
			}
			in.log.Warn("offsets missing from the broker, recording a gap", "topic", p.topic, "partition", p.id,
				"first", missing.First, "last", missing.Last)
			if !o.skipGap(missing) {
				return errCommitFailed
			}
			next = missing.Last + 1
			p.next.Store(next)
		}
		cl, err := in.newPartitionClient(p.topic, p.id, next, p.gen.budget.FetchBytes)
		if err != nil {
			return err
		}
		err = p.fetch(gctx, cl, o, next)
		cl.Close()
		if !errors.Is(err, errRecheck) {
			return err
		}
		select { // a broker that keeps saying out of range without a gap
		case <-gctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// errRecheck makes consume check the position against the log again.
var errRecheck = errors.New("ingest: offset out of range")

// fetch reads from cl, positioned at from, into o until gctx ends (nil), the
// broker reports the position out of range (errRecheck) or an error stops it.
func (p *partition) fetch(gctx context.Context, cl *kgo.Client, o *openSpan, from int64) error {
	in := p.in
	checked := false // the first record's offset has been checked
	for {
		fs := cl.PollFetches(o.roll.ctx)
		// Records first: a poll may return some just as the span's
		// interval or the generation ends, and none may be dropped once
		// a later one is in the span.
		var stop error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.HighWatermark > 0 {
				p.hwm.Store(fp.HighWatermark)
			}
			if len(fp.Records) == 0 || stop != nil {
				return
			}
			now := time.Now().UnixNano()
			in.firstFetch.CompareAndSwap(0, now)
			in.lastFetch.Store(now)
			recs := fp.Records
			if !checked {
				checked = true
				if recs[0].Offset != from {
					// Offsets were skipped: legitimately (aborted or
					// compacted records), or because the log start moved
					// between the check and the client's first fetch.
					b, err := p.bounds(gctx)
					switch {
					case err != nil:
						stop = err
						return
					case b.start > from:
						stop = errRecheck
						return
					}
				}
			}
			for _, r := range recs {
				if !o.add(r) {
					stop = errCommitFailed
					return
				}
			}
		})
		if stop != nil {
			return stop
		}
		failed := false
		fs.EachError(func(_ string, _ int32, e error) {
			switch {
			case stop != nil:
			case errors.Is(e, kerr.OffsetOutOfRange):
				in.log.Debug("fetch offset out of range, checking the log", "topic", p.topic, "partition", p.id)
				stop = errRecheck
			case errors.Is(e, kerr.UnknownTopicID):
				stop = fmt.Errorf("%w: %s partition %d: the topic's id changed while it was consumed (was it deleted and recreated?)",
					ErrOffsetsBackwards, p.topic, p.id)
			case errors.Is(e, context.Canceled), errors.Is(e, context.DeadlineExceeded):
				// The poll's context ended: handled below.
			default:
				// Errors the client does not retry itself (authorization,
				// a corrupt batch): said, and tried again shortly.
				in.warns.warn(time.Now(), "fetch", "fetch", "topic", p.topic, "partition", p.id, "err", e)
				failed = true
			}
		})
		switch {
		case stop != nil:
			return stop
		case gctx.Err() != nil:
			return nil
		case o.roll.ctx.Err() != nil: // the span is RollInterval old
			if !o.seal() {
				return errCommitFailed
			}
		case failed:
			select {
			case <-gctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func (s *span) release() {
	if s.raw != nil {
		s.raw.Release()
	}
	if s.dlq != nil {
		s.dlq.Release()
	}
}

// commit writes a span to the lake along the partition's chain of claims.
//
// Every span starts at the chain's point. While claims made before this
// member reached them (cuts) lie ahead, the rows are cut exactly at their
// ends, carrying rows over to the next span when they fall short; beyond
// them, the member claims [point, last] of the span (lake.PutClaim, a
// put-if-absent) before anything of it becomes visible. Each piece is then
// written: the DLQ segment first, then the raw segment, which is the commit
// point of the piece (it is written even when it holds no rows). A crash
// between the two leaves DLQ rows that the redo skips, so neither table
// ever holds a record twice.
//
// A claim another owner holds means a newer holder took the partition over
// (lake.Takeover walked past this member's claims): the member is fenced,
// drops what it holds of the partition and stops reading it (ErrFenced).
// Two holders of a claim cut the same range and so write the same keys:
// the put-if-absent keeps one, and a segment already there is not an error.
// The position is kept in memory, so a commit lists nothing.
func (p *partition) commit(pctx context.Context, s *span) error {
	in := p.in
	// The lake is written even when the generation has ended: the records
	// were consumed and their commit is what lets the next owner resume.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(pctx), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	pc := pieceOf(s)
	if pc.gap && (p.carry != nil || len(p.cuts) > 0 && p.cuts[0].Owner != p.owner) {
		// An earlier holder claimed offsets of the gap: it may still write
		// them, from records it read before they went, as a raw segment of
		// exactly its claimed range, which no gaps segment may overlap.
		c := p.cuts[0]
		return fmt.Errorf("%w: %s partition %d: offsets %d-%d are no longer on the broker, and an earlier holder of the partition "+
			"claimed offsets %d-%d without committing them; they cannot be recorded as a gap", ErrOffsetGap, p.topic, p.id, s.first, s.last, c.First, c.Last)
	}
	if p.carry != nil {
		pc, p.carry = p.carry.join(pc), nil
	}
	if pc.first != p.point {
		pc.release()
		return fmt.Errorf("ingest: span starts at offset %d, the partition's claims at %d", pc.first, p.point)
	}
	for pc != nil {
		c, held := lake.Claim{Range: lake.Range{First: p.point, Last: pc.last}, Owner: p.owner}, false
		if len(p.cuts) > 0 {
			c, held = p.cuts[0], true
			switch {
			case pc.gap && c.Owner == p.owner:
				// This member's takeover claim (the last cut) starts the
				// gap: no one else may write from it, so the gap is
				// recorded whole.
				c.Last = max(c.Last, pc.last)
			case pc.last < c.Last:
				p.carry = pc // the claimed span ends further on
				return nil
			}
		}
		head, tail := pc.split(c.Last)
		if !held {
			if err := lake.PutClaim(ctx, in.store, p.topic, p.id, c); err != nil {
				head.release()
				tail.release()
				if errors.Is(err, lake.ErrClaimed) {
					if p.stop != nil {
						p.stop()
					}
					return fmt.Errorf("%w: %w", ErrFenced, err)
				}
				return fmt.Errorf("claim offsets %d-%d: %w", c.First, c.Last, err)
			}
		}
		err := p.write(ctx, head)
		head.release()
		if err != nil {
			tail.release()
			return err
		}
		if held {
			p.cuts = p.cuts[1:]
		}
		p.point, pc = c.Last+1, tail
	}
	in.m.commitSecs.Observe(time.Since(t0).Seconds())
	if took := time.Since(t0); t0.UnixNano() > in.lastFetch.Load() && int64(took) > in.drain.Load() {
		in.drain.Store(int64(took))
	}
	// Group offsets follow the lake; they only serve as a lag signal, so a
	// failure (for instance after the generation ended) is harmless.
	if p.gen != nil && p.gen.g != nil {
		if err := p.gen.g.CommitOffsets(map[string]map[int]int64{p.topic: {int(p.id): p.point}}); err != nil {
			in.log.Debug("group offset commit", "err", err)
		}
	}
	p.maybeCompact(pctx)
	return nil
}

// write puts the segments of one claimed piece: DLQ, then raw. A segment
// already in the lake was written by another holder of the same claim,
// with the same records: it is left as it is and not counted again.
func (p *partition) write(ctx context.Context, pc *piece) error {
	if pc.gap {
		return p.writeGap(ctx, pc)
	}
	in := p.in
	nraw, ndlq := numRows(pc.raw), numRows(pc.dlq)
	if ndlq > 0 {
		data, err := p.dlqEnc.Encode(pc.dlq...)
		if err != nil {
			return fmt.Errorf("encode dlq segment: %w", err)
		}
		r := lake.Range{First: max(pc.first, p.dlqNext), Last: pc.last}
		err = in.store.Put(ctx, lake.SegmentKey(schemas.TableDLQ, p.topic, p.id, r), data)
		switch {
		case err == nil:
			in.m.segments.WithLabelValues(schemas.TableDLQ).Inc()
		case errors.Is(err, lake.ErrExist):
			ndlq = 0
		default:
			return fmt.Errorf("commit dlq segment: %w", err)
		}
		p.dlqNext = pc.last + 1
	}
	data, err := p.rawEnc.Encode(pc.raw...)
	if err != nil {
		return fmt.Errorf("encode raw segment: %w", err)
	}
	r := lake.Range{First: pc.first, Last: pc.last}
	if err := in.store.Put(ctx, lake.SegmentKey(schemas.TableRaw, p.topic, p.id, r), data); err != nil {
		if errors.Is(err, lake.ErrExist) {
			in.log.Debug("segment already committed by another holder of its claim", "topic", p.topic, "partition", p.id,
				"first", pc.first, "last", pc.last)
			return nil
		}
		return fmt.Errorf("commit raw segment: %w", err)
	}
	in.m.segments.WithLabelValues(schemas.TableRaw).Inc()
	for reason, n := range pc.reasons {
		in.m.dlq.WithLabelValues(p.topic, reason).Add(float64(n))
	}
	in.m.records.WithLabelValues(p.topic).Add(float64(nraw))
	in.m.bytes.WithLabelValues(p.topic).Add(float64(pc.bytes))
	in.records.Add(nraw)
	in.dlq.Add(ndlq)
	in.bytes.Add(pc.bytes)
	in.segments.Add(1)
	in.log.Debug("committed", "topic", p.topic, "partition", p.id, "first", pc.first, "last", pc.last,
		"records", nraw, "dlq", ndlq)
	return nil
}

// maybeCompact compacts the partition when CompactInterval has passed since
// the last time. It runs in the committer, between two commits of the
// partition, so it never races them; one partition of the member compacts
// at a time (a merge holds up to CompactTargetSize in memory), and the end
// of the generation interrupts it (each merge is atomic, the next
// compaction finishes it). A failure is logged, not fatal.
func (p *partition) maybeCompact(ctx context.Context) {
	in := p.in
	every := time.Duration(*in.cfg.CompactInterval)
	if every <= 0 || time.Since(p.compacted) < every || ctx.Err() != nil || !in.compacting.TryLock() {
		return
	}
	defer in.compacting.Unlock()
	p.compacted = time.Now()
	st, err := lake.CompactPartition(ctx, in.store, p.topic, p.id, int64(in.cfg.CompactTargetSize))
	in.m.compacted.Add(float64(st.Replaced))
	if err != nil {
		level := slog.LevelWarn
		if ctx.Err() != nil {
			level = slog.LevelDebug // the generation ended meanwhile
		}
		in.log.Log(ctx, level, "compaction", "topic", p.topic, "partition", p.id, "err", err)
		return
	}
	if st.Written > 0 || st.Deleted > 0 {
		in.log.Info("compacted", "topic", p.topic, "partition", p.id, "merged", st.Written, "replaced", st.Replaced,
			"deleted", st.Deleted, "took", time.Since(p.compacted).Round(time.Millisecond))
	}
}

// writeGap puts a claimed gap piece as one row of the gaps table, in a
// segment named by the missing range.
func (p *partition) writeGap(ctx context.Context, pc *piece) error {
	in := p.in
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.GapsSchema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(p.topic)
	b.Field(1).(*array.Int32Builder).Append(p.id)
	b.Field(2).(*array.Int64Builder).Append(pc.first)
	b.Field(3).(*array.Int64Builder).Append(pc.last)
	b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Now().UnixMilli()))
	b.Field(5).(*array.StringBuilder).Append(schemas.GapRetention)
	rec := b.NewRecordBatch()
	defer rec.Release()
	data, err := p.gapsEnc.Encode(rec)
	if err != nil {
		return fmt.Errorf("encode gaps segment: %w", err)
	}
	r := lake.Range{First: pc.first, Last: pc.last}
	if err := in.store.Put(ctx, lake.SegmentKey(schemas.TableGaps, p.topic, p.id, r), data); err != nil {
		if errors.Is(err, lake.ErrExist) {
			return nil // another holder of its claim recorded it
		}
		return fmt.Errorf("commit gaps segment: %w", err)
	}
	in.m.segments.WithLabelValues(schemas.TableGaps).Inc()
	in.m.gaps.WithLabelValues(p.topic, strconv.Itoa(int(p.id))).Inc()
	in.log.Warn("recorded a gap: offsets the broker no longer had", "topic", p.topic, "partition", p.id,
		"first", pc.first, "last", pc.last, "records", r.Len())
	return nil
}

// newClient returns a franz-go client of the configured brokers, through
// TLS and SASL when configured; extra options come last. Every franz-go
// client of an Ingester comes from here.
func (in *Ingester) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(in.cfg.Brokers...),
		kgo.DialTimeout(time.Duration(in.cfg.DialTimeout)),
		kgo.WithLogger(kgoLogger{in}),
		kgo.DisableClientMetrics(),
	}
	opts = append(opts, in.sec.kgoOpts()...)
	return kgo.NewClient(append(opts, extra...)...)
}

// newPartitionClient returns a client that consumes one partition from the
// exact offset at: with the configured isolation and wait, fetches of
// fetchBytes (the partition's share of the budget), the transaction markers
// kept (their offsets belong to spans), and no reset when the offset is out
// of range (the fetch reports it instead). A batch larger than fetchBytes
// still comes whole: the broker returns the first batch of a fetch complete,
// and the client accepts it up to the largest fetch or value plus 1MiB.
func (in *Ingester) newPartitionClient(topic string, partition int32, at int64, fetchBytes int32, extra ...kgo.Opt) (*kgo.Client, error) {
	cfg := in.cfg
	isolation := kgo.ReadCommitted()
	if cfg.Isolation == IsolationReadUncommitted {
		isolation = kgo.ReadUncommitted()
	}
	opts := []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(at)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(isolation),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(fetchBytes),
		kgo.FetchMaxPartitionBytes(fetchBytes),
		kgo.FetchMaxWait(time.Duration(cfg.FetchMaxWait)),
		kgo.BrokerMaxReadBytes(int32(max(max(cfg.FetchMaxBytes, cfg.MaxValueBytes)+1<<20, 100<<20))),
	}
	opts = append(opts, in.partitionOpts...)
	return in.newClient(append(opts, extra...)...)
}

// kgoLogger routes franz-go's log: its errors and warnings at WARN through
// in.warns (each message a kind of its own), the rest at DEBUG.
type kgoLogger struct{ in *Ingester }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.in.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level <= kgo.LogLevelWarn {
		l.in.warns.warn(time.Now(), "kafka: "+msg, "kafka: "+msg, keyvals...)
		return
	}
	l.in.log.Debug("kafka: "+msg, keyvals...)
}
