package ingest

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// WarnInterval is how often, at most, a line of one kind of Kafka error is
// logged while the error repeats (see Ingester's Kafka error logging).
const WarnInterval = 30 * time.Second

// Stall says why a running member is degraded: it has made no progress for
// longer than Config.StallTimeout.
type Stall struct {
	// Reason is a sentence for people.
	Reason string `json:"reason"`
	// Since is the last moment the member was known to progress: its last
	// successful fetch, or the last time its partitions were seen caught
	// up (or its start, when neither happened).
	Since time.Time `json:"since"`
	// LastError is the latest Kafka error, if any was seen since then.
	LastError string `json:"last_error,omitempty"`
}

// stall returns why the member is degraded at now, or nil when it is not:
// no fetch has returned records and its assigned partitions have not been
// seen caught up for StallTimeout. A member without a generation for that
// long (its coordinator is unreachable) is degraded as well; one holding a
// generation with no partition, or whose partitions are all caught up, is
// not.
func (in *Ingester) stall(now time.Time) *Stall {
	last := max(in.progress.Load(), in.lastFetch.Load())
	if last == 0 { // Run has not started
		return nil
	}
	since := time.Unix(0, last)
	idle := now.Sub(since)
	if idle <= time.Duration(in.cfg.StallTimeout) {
		return nil
	}
	in.mu.Lock()
	gen := in.gen
	in.mu.Unlock()
	st := &Stall{Since: since}
	if gen == nil {
		st.Reason = fmt.Sprintf("no fetch has succeeded for %s and the member holds no consumer group generation (is the group coordinator reachable?)", idle.Round(time.Second))
	} else {
		st.Reason = fmt.Sprintf("no fetch has succeeded for %s while its %d assigned partitions are not known to be caught up", idle.Round(time.Second), len(gen.parts))
	}
	if msg, at := in.warns.lastError(); !at.IsZero() && !at.Before(since) {
		st.LastError = msg
	}
	return st
}

// warnings logs Kafka errors at WARN without flooding the log while a broker
// is down: the first error of a kind is logged at once, the next ones of that
// kind are counted, and the count is logged, with the latest of them, once
// per interval. A kind is a fixed string (the client's message format), so
// there are few.
type warnings struct {
	log   *slog.Logger
	every time.Duration

	mu     sync.Mutex
	kinds  map[string]*warnKind
	last   string
	lastAt time.Time
}

type warnKind struct {
	logged time.Time // when a line of this kind was last written
	count  int       // errors since then not yet written
	msg    string    // the latest of them
	args   []any
}

func newWarnings(log *slog.Logger, every time.Duration) *warnings {
	return &warnings{log: log, every: every, kinds: map[string]*warnKind{}}
}

// warn records one error of kind: msg and args are what a line says.
func (w *warnings) warn(now time.Time, kind, msg string, args ...any) {
	w.mu.Lock()
	w.last, w.lastAt = msg, now
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "err" {
			w.last = msg + ": " + err.Error()
		}
	}
	k := w.kinds[kind]
	if k == nil {
		k = &warnKind{}
		w.kinds[kind] = k
	}
	if !k.logged.IsZero() && now.Sub(k.logged) < w.every {
		k.count++
		k.msg, k.args = msg, args
		w.mu.Unlock()
		return
	}
	if k.count > 0 {
		args = append(args[:len(args):len(args)], "repeated", k.count+1, "over", now.Sub(k.logged).Round(time.Second))
	}
	k.logged, k.count = now, 0
	w.mu.Unlock()
	w.log.Warn(msg, args...)
}

// flush writes the count of every kind whose unwritten errors are an
// interval old, or of every kind with unwritten errors when all is set.
func (w *warnings) flush(now time.Time, all bool) {
	type line struct {
		msg  string
		args []any
	}
	var out []line
	w.mu.Lock()
	for _, k := range w.kinds {
		if k.count == 0 || (!all && now.Sub(k.logged) < w.every) {
			continue
		}
		args := append(k.args[:len(k.args):len(k.args)], "repeated", k.count, "over", now.Sub(k.logged).Round(time.Second))
		out = append(out, line{k.msg, args})
		k.logged, k.count = now, 0
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].msg < out[j].msg })
	for _, l := range out {
		w.log.Warn(l.msg, l.args...)
	}
}

// lastError returns the latest error recorded and when.
func (w *warnings) lastError() (string, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.lastAt
}

// kafkaLogger returns a kafka-go error logger writing through in.warns; each
// message format is a kind of its own.
func (in *Ingester) kafkaLogger(prefix string, args ...any) kafka.Logger {
	return kafka.LoggerFunc(func(format string, a ...any) {
		in.warns.warn(time.Now(), prefix+format, prefix+fmt.Sprintf(format, a...), args...)
	})
}
