package ingest

// This file holds the producer, the other end of the pipe: Produce reads
// records a line at a time (a file, stdin, a demo's generated stream) and
// produces them to a topic, as "thresher produce", the demo and the bench do.
//
// It uses franz-go's kgo client rather than kafka-go's Writer: on the real
// stream into the embedded broker kgo was about twice as fast (see
// BenchmarkProduce), it gives back-pressure on a single ordered Produce loop
// (kafka-go's Async mode buffers without bound, and its synchronous mode needs
// concurrent callers, which reorders records), and it is idempotent, so
// retries neither duplicate nor reorder records within a partition.
//
// Tuning: lingering 5 ms lets each partition's batch fill to the 1 MB default
// (Kafka's max.message.bytes) at full speed while keeping a trickle's latency
// low; the buffer (64 MiB or 256 Ki records) keeps several batches in flight
// per partition. Batches are not compressed: on a local broker compression
// costs more CPU than the bytes it saves, and the lake compresses anyway.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig configures Produce. A zero tuning field (ProgressEvery,
// Linger, MaxBufferedBytes, MaxBufferedRecords) means its default; see
// SetDefaults.
type ProduceConfig struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Security, SASL and TLS say how to reach a secured cluster, as in
	// Config; the zero value is PLAINTEXT.
	Security SecurityConfig
	SASL     SASLConfig
	TLS      TLSConfig
	// Topic is the topic produced to. It is created, with the broker's
	// default partition count, when it does not exist and the broker allows
	// it.
	Topic string
	// Format decides the record keys. With FormatJSON a line's key is its
	// first top-level "id" member when that is a string (unescaped) or a
	// number (its literal text), else it has none; with FormatText no line
	// has a key. Either way a line is produced as it is, valid or not: the
	// consumer judges it. Keyed records are partitioned with murmur2, as the
	// Java client and kcat -X partitioner=murmur2_random do; unkeyed records
	// go to batches spread evenly over partitions.
	Format Format
	// Progress, when not nil, receives a line every ProgressEvery:
	//
	//	produce: 12345 records, 98765 rec/s, 123.4 MB/s
	//
	// counting acknowledged records, with the rates since the previous line.
	// It is written from another goroutine, never after Produce returns.
	Progress io.Writer
	// ProgressEvery is the interval of the progress lines (default 1 s).
	ProgressEvery time.Duration
	// Linger is how long a partition's batch waits for more records before
	// it is sent (default 5 ms).
	Linger time.Duration
	// MaxBufferedBytes and MaxBufferedRecords bound the records handed to
	// the client and not yet acknowledged (defaults 64 MiB and 256 Ki);
	// reading waits while either bound is reached.
	MaxBufferedBytes   int
	MaxBufferedRecords int
}

// Produce defaults and fixed settings.
const (
	defaultProduceProgressEvery = time.Second
	defaultProduceLinger        = 5 * time.Millisecond
	defaultProduceBufferBytes   = 64 << 20
	defaultProduceBufferRecords = 256 << 10

	produceDialTimeout  = 5 * time.Second
	produceReachTimeout = 10 * time.Second
	produceDeliverLimit = 30 * time.Second
	produceFlushOnStop  = 5 * time.Second
	lineSlabSize        = 1 << 20
	// maxProduceRecordBytes bounds a record's key and value: a batch holding
	// one record must fit kgo's and Kafka's default 1,000,012-byte batch
	// limit (max.message.bytes), with room for the batch and record headers.
	maxProduceRecordBytes = 1_000_000
)

// SetDefaults fills every unset tuning field with its default.
func (c *ProduceConfig) SetDefaults() {
	normalizeSecurity(&c.Security, &c.SASL)
	if c.ProgressEvery == 0 {
		c.ProgressEvery = defaultProduceProgressEvery
	}
	if c.Linger == 0 {
		c.Linger = defaultProduceLinger
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = defaultProduceBufferBytes
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = defaultProduceBufferRecords
	}
}

// Validate reports every problem of the configuration at once, wrapping
// ErrConfig.
func (c *ProduceConfig) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if len(c.Brokers) == 0 {
		add("brokers: at least one host:port is required")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			add("brokers: an empty address is not host:port")
			break
		}
	}
	errs = append(errs, SecurityProblems(c.Security, c.SASL, c.TLS)...)
	if c.Topic == "" {
		add("topic: a topic is required")
	}
	if c.Format != FormatJSON && c.Format != FormatText {
		add("format: %v must be json or text", c.Format)
	}
	if c.ProgressEvery < 0 {
		add("progress_every: %v must not be negative", c.ProgressEvery)
	}
	if c.Linger < 0 {
		add("linger: %v must not be negative", c.Linger)
	}
	if c.MaxBufferedBytes < 0 {
		add("max_buffered_bytes: %d must not be negative", c.MaxBufferedBytes)
	}
	if c.MaxBufferedRecords < 0 {
		add("max_buffered_records: %d must not be negative", c.MaxBufferedRecords)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
}

// ProduceStats is what Produce did.
type ProduceStats struct {
	Records int64         // records acknowledged
	Bytes   int64         // value bytes of those records
	Elapsed time.Duration // from the call of Produce to its return
}

// Rate is acknowledged records per second of Elapsed.
func (s ProduceStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

// noBrokerError is the error of a Produce that found no broker: it reads as
// before ErrNoBroker existed and matches it with errors.Is.
type noBrokerError struct {
	msg string
	err error
}

func (e *noBrokerError) Error() string   { return e.msg }
func (e *noBrokerError) Unwrap() []error { return []error{ErrNoBroker, e.err} }

// Produce reads records a line at a time from r and produces them to
// cfg.Topic. Lines end with \n or \r\n; blank lines (spaces, tabs) are
// skipped; r may be gzip-compressed, which is detected by its magic bytes.
// Produce returns when every record it read is acknowledged by all in-sync
// replicas, when r fails, when a record is refused, or when ctx is done.
//
// The stats count what was acknowledged, also on error. The errors name what
// to fix: an error wrapping ErrConfig for an invalid cfg; one wrapping
// ErrAuthentication or ErrTLS when a broker refuses the credentials or the
// TLS handshake fails; one wrapping ErrNoBroker, naming the brokers, when
// none answers within 10 s; "input:
// line N is ... bytes" for a record larger than Kafka's default
// max.message.bytes (key and value over 1,000,000 bytes), after delivering
// the lines before it; ctx.Err() when ctx is done, after trying for up to 5 s
// to deliver what was read.
func Produce(ctx context.Context, cfg ProduceConfig, r io.Reader) (ProduceStats, error) {
	start := time.Now()
	stats, err := produce(ctx, cfg, r)
	stats.Elapsed = time.Since(start)
	return stats, err
}

func produce(ctx context.Context, cfg ProduceConfig, r io.Reader) (ProduceStats, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return ProduceStats{}, err
	}
	lines, err := newLineReader(r)
	if err != nil {
		return ProduceStats{}, err
	}
	defer lines.Close()
	sec, err := newClientSecurity(cfg.Security, cfg.SASL, cfg.TLS)
	if err != nil {
		return ProduceStats{}, err
	}
	cl, err := kgo.NewClient(append(sec.kgoOpts(),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.DialTimeout(produceDialTimeout),
		kgo.RecordDeliveryTimeout(produceDeliverLimit),
	)...)
	if err != nil {
		return ProduceStats{}, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	// Fail fast when no broker answers, naming them.
	pctx, cancel := context.WithTimeout(ctx, produceReachTimeout)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ProduceStats{}, ctx.Err()
		}
		if serr := sec.explain(ctx, cfg.Brokers, produceDialTimeout, err); serr != nil {
			return ProduceStats{}, serr
		}
		return ProduceStats{}, &noBrokerError{
			msg: fmt.Sprintf("no broker reachable at %s within %v: %v",
				strings.Join(cfg.Brokers, ","), produceReachTimeout, err),
			err: err,
		}
	}

	var (
		acked, ackedBytes atomic.Int64
		errOnce           sync.Once
		firstErr          error
		failed            = make(chan struct{})
	)
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() {
				firstErr = err
				close(failed)
			})
			return
		}
		acked.Add(1)
		ackedBytes.Add(int64(len(rec.Value)))
	}

	stopProgress := startProduceProgress(cfg.Progress, cfg.ProgressEvery, &acked, &ackedBytes)
	defer stopProgress()

	var (
		recs     []kgo.Record // records allocated in chunks
		readErr  error
		keyed    = cfg.Format == FormatJSON
		stopped  = ctx.Done()
		produced int64
	)
loop:
	for {
		select {
		case <-stopped:
			break loop
		case <-failed:
			break loop
		default:
		}
		line, err := lines.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if len(recs) == 0 {
			recs = make([]kgo.Record, 1024)
		}
		rec := &recs[0]
		recs = recs[1:]
		rec.Value = line
		if keyed {
			rec.Key = jsonID(line)
		}
		if size := len(rec.Key) + len(rec.Value); size > maxProduceRecordBytes {
			readErr = fmt.Errorf("line %d is %d bytes, over the %d-byte record limit of Kafka's default max.message.bytes", lines.line, size, maxProduceRecordBytes)
			break
		}
		cl.Produce(ctx, rec, promise)
		produced++
	}

	// Deliver what was handed to the client; when stopping early, only
	// within bounds (the rest fails when the client closes).
	var failedEarly bool
	select {
	case <-failed:
		failedEarly = true
	default:
	}
	fctx, cancelFlush := context.Background(), context.CancelFunc(func() {})
	if failedEarly || ctx.Err() != nil || readErr != nil {
		fctx, cancelFlush = context.WithTimeout(fctx, produceFlushOnStop)
	}
	flushErr := cl.Flush(fctx)
	cancelFlush()
	stopProgress()

	st := ProduceStats{Records: acked.Load(), Bytes: ackedBytes.Load()}
	switch {
	case ctx.Err() != nil:
		return st, ctx.Err()
	case readErr != nil:
		return st, fmt.Errorf("input: %w", readErr)
	}
	select {
	case <-failed:
		return st, fmt.Errorf("topic %s: %w", cfg.Topic, firstErr)
	default:
	}
	switch {
	case flushErr != nil:
		return st, fmt.Errorf("delivering records: %w", flushErr)
	case st.Records != produced:
		return st, fmt.Errorf("%d of %d records acknowledged", st.Records, produced)
	}
	return st, nil
}

// startProduceProgress writes a progress line to w every interval until the
// returned function is called (which is safe to call more than once).
func startProduceProgress(w io.Writer, every time.Duration, acked, ackedBytes *atomic.Int64) func() {
	if w == nil || every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastN, lastB int64
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n, b := acked.Load(), ackedBytes.Load()
				s := now.Sub(last).Seconds()
				fmt.Fprintf(w, "produce: %d records, %.0f rec/s, %.1f MB/s\n",
					n, float64(n-lastN)/s, float64(b-lastB)/s/1e6)
				lastN, lastB, last = n, b, now
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// lineReader yields the non-blank lines of a possibly gzipped stream, without
// their line terminator (\n or \r\n). Each line is a fresh copy carved from a
// large slab, so producing it costs no allocation of its own. Gzip input is
// decompressed by a goroutine ahead of the reader (decompression is most of
// the work of reading), which Close stops.
type lineReader struct {
	line  int // number of the line last returned, counting blank ones
	br    *bufio.Reader
	slab  []byte
	long  []byte
	close func()
}

// newLineReader wraps r, decompressing it when it starts with gzip's magic
// bytes.
func newLineReader(r io.Reader) (*lineReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	lr := &lineReader{br: br, close: func() {}}
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip input: %w", err)
		}
		ra := newReadAhead(zr)
		lr.br = bufio.NewReaderSize(ra, 256<<10)
		lr.close = ra.close
	}
	return lr, nil
}

// Close stops decompressing ahead; it does not close the underlying reader.
func (l *lineReader) Close() { l.close() }

func (l *lineReader) next() ([]byte, error) {
	for {
		line, err := l.br.ReadSlice('\n')
		if len(line) > 0 {
			l.line++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			l.long = append(l.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = l.br.ReadSlice('\n')
				l.long = append(l.long, line...)
			}
			line = l.long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(line) == 0 && err != nil {
			return nil, err
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if blankLine(line) {
			if err != nil {
				return nil, err
			}
			continue
		}
		return l.copy(line), nil
	}
}

func (l *lineReader) copy(line []byte) []byte {
	if len(line) > len(l.slab) {
		if len(line) > lineSlabSize/4 {
			return append([]byte(nil), line...)
		}
		l.slab = make([]byte, lineSlabSize)
	}
	n := copy(l.slab, line)
	out := l.slab[:n:n]
	l.slab = l.slab[n:]
	return out
}

// blankLine reports whether a line holds only spaces, tabs and carriage
// returns. (Unlike blank, it judges a whole line, not a text value.)
func blankLine(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// readAhead reads r in a goroutine, a few blocks ahead of its reader.
type readAhead struct {
	blocks chan []byte // filled blocks; closed after the last
	free   chan []byte // emptied blocks, to refill
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	err    error  // r's final error, set before blocks is closed
	block  []byte // the block being read from, and
	cur    []byte // its unread part
}

func newReadAhead(r io.Reader) *readAhead {
	const depth, size = 4, 256 << 10
	ra := &readAhead{
		blocks: make(chan []byte, depth),
		free:   make(chan []byte, depth+1),
		done:   make(chan struct{}),
	}
	for i := 0; i < depth+1; i++ {
		ra.free <- make([]byte, size)
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(ra.blocks)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
			n, err := fill(r, buf[:cap(buf)])
			if n > 0 {
				select {
				case ra.blocks <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				ra.err = err
				return
			}
		}
	}()
	return ra
}

// fill reads into buf until it is full or r fails, returning r's error as
// is (io.EOF at the end).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(ra.cur) == 0 {
		if ra.block != nil {
			ra.free <- ra.block
			ra.block = nil
		}
		b, ok := <-ra.blocks
		if !ok {
			return 0, ra.err
		}
		ra.block, ra.cur = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

func (ra *readAhead) close() {
	ra.once.Do(func() { close(ra.done) })
	ra.wg.Wait()
}

// jsonID returns the record key of a JSON line: the value of the first
// top-level "id" member when the line is a JSON object and that value is a
// string (unescaped) or a number (its literal text), else nil. It scans only
// as far as that member and validates nothing beyond what it reads, so it
// costs a fraction of decoding the line; an unescaped string id is returned
// as a subslice of line.
//
// Its helpers are named id* to keep them apart from the Decoder's, which
// validate strictly what these only skip.
func jsonID(line []byte) []byte {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipWS(line, i)
		if i >= len(line) || line[i] != '"' {
			return nil
		}
		kEnd, kEsc := idScanString(line, i)
		if kEnd < 0 {
			return nil
		}
		isID := false
		if kEsc {
			var k string
			isID = json.Unmarshal(line[i:kEnd], &k) == nil && k == "id"
		} else {
			isID = kEnd-i == 4 && line[i+1] == 'i' && line[i+2] == 'd'
		}
		i = skipWS(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return nil
		}
		i = skipWS(line, i+1)
		if i >= len(line) {
			return nil
		}
		if isID {
			switch c := line[i]; {
			case c == '"':
				end, esc := idScanString(line, i)
				if end < 0 {
					return nil
				}
				if !esc {
					return line[i+1 : end-1 : end-1]
				}
				var s string
				if json.Unmarshal(line[i:end], &s) != nil {
					return nil
				}
				return []byte(s)
			case c == '-' || (c >= '0' && c <= '9'):
				end := idScanNumber(line, i)
				return line[i:end:end]
			default:
				return nil
			}
		}
		if i = idSkipValue(line, i); i < 0 {
			return nil
		}
		i = skipWS(line, i)
		if i >= len(line) || line[i] != ',' {
			return nil
		}
		i++
	}
}

// idScanString returns the index after the string starting at b[i] == '"'
// and whether it holds escapes, or -1 when it is unterminated.
func idScanString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j++
		}
	}
	return -1, esc
}

// idScanNumber returns the index after the number-like run starting at b[i].
func idScanNumber(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// idSkipValue returns the index after the JSON value starting at b[i], or -1.
func idSkipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := idScanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			case '"':
				end, _ := idScanString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
