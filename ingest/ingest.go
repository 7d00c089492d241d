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
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

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
	g     *kafka.Generation
	parts map[topicPartition]*partition
	ready atomic.Bool // every partition knows its position
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
		in.log.Info("joined generation", "generation", g.ID, "member", g.MemberID, "partitions", len(gen.parts))
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
			next, ok, err := lake.NextOffset(ctx, in.store, schemas.TableRaw, topic, int32(po.Partition))
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

	rawEnc *lake.Encoder[schemas.Raw]
	dlqEnc *lake.Encoder[schemas.DLQ]

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
type span struct {
	first, last int64
	raw, dlq    arrow.RecordBatch // dlq is nil when the span has no malformed record
	dlqReasons  map[string]int64
	bytes       int64
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
	dlqNext, dok, err := lake.NextOffset(ctx, in.store, schemas.TableDLQ, p.topic, p.id)
	if err != nil {
		return 0, err
	}
	if dok {
		p.dlqNext = dlqNext
	}
	var start int64
	if len(live) > 0 {
		last := live[len(live)-1].Range.Last
		if last == math.MaxInt64 {
			return 0, fmt.Errorf("lake: %s/%d: segment ends at the last possible offset", p.topic, p.id)
		}
		start = last + 1
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
	client := in.client()
	req := kafka.FirstOffsetOf(int(p.id))
	if in.cfg.StartFrom == "latest" {
		req = kafka.LastOffsetOf(int(p.id))
	}
	for {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{p.topic: {req}}})
		if err == nil {
			for _, po := range offs.Topics[p.topic] {
				if po.Error != nil {
					err = po.Error
					break
				}
				if in.cfg.StartFrom == "latest" {
					return po.LastOffset, nil
				}
				return po.FirstOffset, nil
			}
			if err == nil {
				err = errors.New("no offsets in the answer")
			}
		}
		in.warns.warn(time.Now(), "list offsets", "list offsets", "topic", p.topic, "partition", p.id, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
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
	in.log.Debug("partition start", "topic", p.topic, "partition", p.id, "offset", start)

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       cfg.Brokers,
		Topic:         p.topic,
		Partition:     int(p.id),
		Dialer:        in.dial,
		MinBytes:      1,
		MaxBytes:      int(cfg.FetchMaxBytes),
		MaxWait:       time.Duration(cfg.FetchMaxWait),
		QueueCapacity: 4096,
		ErrorLogger:   in.kafkaLogger("kafka reader: ", "topic", p.topic, "partition", p.id),
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return err
	}

	// Spans are committed in order by one committer, so encoding overlaps
	// fetching and decoding; the unbuffered hand-off bounds memory to the
	// open span plus the one being committed.
	// Malformed records below the DLQ's resume point were committed by an
	// earlier run; after this, p.dlqNext belongs to the committer.
	dlqSkip := p.dlqNext
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

	dec := NewDecoder(cfg.DecoderConfig())
	raw, dlq := NewRawBuilder(memory.DefaultAllocator), NewDLQBuilder(memory.DefaultAllocator)
	defer raw.Release()
	defer dlq.Release()
	// The open span: offsets first..last, rows in raw and dlq.
	first, last := start, start-1
	reasons := map[string]int64{}
	var bytes int64
	// roll ends when the open span is RollInterval old; it is gctx while
	// the span is empty.
	roll := struct {
		ctx    context.Context
		cancel context.CancelFunc
	}{gctx, func() {}}
	defer func() { roll.cancel() }()
	seal := func() bool {
		roll.cancel()
		roll.ctx, roll.cancel = gctx, func() {}
		if last < first {
			return true
		}
		s := &span{first: first, last: last, raw: raw.NewRecordBatch(), dlqReasons: reasons, bytes: bytes}
		if dlq.Len() > 0 {
			s.dlq = dlq.NewRecordBatch()
		}
		first, reasons, bytes = last+1, map[string]int64{}, 0
		select {
		case commits <- s:
			return true
		case err := <-commitErr:
			s.release()
			commitErr <- err
			return false
		}
	}
	for {
		m, err := r.FetchMessage(roll.ctx)
		if err != nil {
			if gctx.Err() != nil {
				break
			}
			if roll.ctx.Err() != nil { // the span is RollInterval old
				if !seal() {
					break
				}
				continue
			}
			in.warns.warn(time.Now(), "fetch", "fetch", "topic", p.topic, "partition", p.id, "err", err)
			select {
			case <-gctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		now := time.Now().UnixNano()
		in.firstFetch.CompareAndSwap(0, now)
		in.lastFetch.Store(now)
		if last < first && roll.ctx == gctx {
			roll.ctx, roll.cancel = context.WithTimeout(gctx, time.Duration(cfg.RollInterval))
		}
		meta := Meta{Topic: p.topic, Partition: p.id, Offset: m.Offset, Timestamp: m.Time, Key: m.Key}
		if len(meta.Key) == 0 {
			meta.Key = nil
		}
		rec, reason := dec.Decode(m.Value)
		if reason == "" {
			raw.Append(meta, rec)
		} else if m.Offset >= dlqSkip {
			dlq.Append(meta, m.Value, reason)
			reasons[reason]++
		}
		bytes += int64(len(m.Value))
		last = m.Offset
		p.next.Store(m.Offset + 1)
		if m.HighWaterMark > 0 {
			p.hwm.Store(m.HighWaterMark)
		}
		if raw.Len()+dlq.Len() >= cfg.RollRecords || raw.Bytes()+dlq.Bytes() >= int(cfg.RollBytes) {
			if !seal() {
				break
			}
		}
	}
	seal()
	close(commits)
	return <-commitErr
}

func (s *span) release() {
	s.raw.Release()
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
			if c, held = p.cuts[0], true; pc.last < c.Last {
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
