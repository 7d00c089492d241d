package ingest

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// logLines returns a logger writing "LEVEL msg key=value..." lines to buf.
func logLines(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// TestWarnings: a kind of error repeated for a whole outage is one line at
// once, then one line an interval with the count, at WARN.
func TestWarnings(t *testing.T) {
	var buf bytes.Buffer
	w := newWarnings(logLines(&buf), 30*time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	refused := errors.New("dial tcp 127.0.0.1:9092: connect: connection refused")
	for i := range 1000 { // 10 s of errors, 100 a second
		w.warn(t0.Add(time.Duration(i)*10*time.Millisecond), "consumer group", "consumer group", "err", refused)
	}
	for i := range 3 {
		w.warn(t0.Add(time.Duration(i)*time.Second), "fetch", "fetch", "partition", i, "err", refused)
	}
	w.flush(t0.Add(10*time.Second), false) // within the interval: nothing
	w.flush(t0.Add(31*time.Second), false)
	w.warn(t0.Add(32*time.Second), "consumer group", "consumer group", "err", refused) // counted
	w.warn(t0.Add(62*time.Second), "fetch", "fetch", "partition", 3, "err", refused)   // an interval after the last line: written
	w.warn(t0.Add(63*time.Second), "fetch", "fetch", "partition", 0, "err", refused)
	w.flush(t0.Add(64*time.Second), true) // at exit: every count

	want := []string{
		`level=WARN msg="consumer group" err="dial tcp 127.0.0.1:9092: connect: connection refused"`,
		`level=WARN msg=fetch partition=0 err="dial tcp 127.0.0.1:9092: connect: connection refused"`,
		`level=WARN msg="consumer group" err="dial tcp 127.0.0.1:9092: connect: connection refused" repeated=999 over=31s`,
		`level=WARN msg=fetch partition=2 err="dial tcp 127.0.0.1:9092: connect: connection refused" repeated=2 over=31s`,
		`level=WARN msg=fetch partition=3 err="dial tcp 127.0.0.1:9092: connect: connection refused"`,
		`level=WARN msg="consumer group" err="dial tcp 127.0.0.1:9092: connect: connection refused" repeated=1 over=33s`,
		`level=WARN msg=fetch partition=0 err="dial tcp 127.0.0.1:9092: connect: connection refused" repeated=1 over=2s`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if msg, at := w.lastError(); msg != "fetch: "+refused.Error() || !at.Equal(t0.Add(63*time.Second)) {
		t.Errorf("last error %q at %v", msg, at)
	}
}

// TestKafkaLogger: kafka-go's error logger writes at WARN, one kind per
// message format whatever its arguments.
func TestKafkaLogger(t *testing.T) {
	var buf bytes.Buffer
	in := &Ingester{warns: newWarnings(logLines(&buf), time.Hour)}
	l := in.kafkaLogger("kafka reader: ", "topic", "t")
	for off := range 50 {
		l.Printf("the kafka reader got an unknown error reading partition %d of %s at offset %d: %v", 1, "t", off, "unexpected EOF")
	}
	in.kafkaLogger("kafka: ").Printf("Failed to join group %s: %v", "g", "connection refused")
	want := "level=WARN msg=\"kafka reader: the kafka reader got an unknown error reading partition 1 of t at offset 0: unexpected EOF\" topic=t\n" +
		"level=WARN msg=\"kafka: Failed to join group g: connection refused\"\n"
	if buf.String() != want {
		t.Fatalf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestStall: a member is degraded when neither a fetch nor a caught-up
// check has shown progress for the stall timeout.
func TestStall(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}, Group: "g", Lake: t.TempDir(),
		StallTimeout: Duration(time.Minute)}
	cfg.SetDefaults()
	in, err := New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	if s := in.stall(now); s != nil {
		t.Fatalf("before Run: %+v", s)
	}
	in.progress.Store(now.Add(-2 * time.Minute).UnixNano())
	s := in.stall(now)
	if s == nil || !strings.Contains(s.Reason, "no fetch has succeeded for 2m0s and the member holds no consumer group generation") ||
		!s.Since.Equal(now.Add(-2*time.Minute)) || s.LastError != "" {
		t.Fatalf("no generation for 2m: %+v", s)
	}
	in.gen = &generation{g: &kafka.Generation{}, parts: map[topicPartition]*partition{{"t", 0}: nil, {"t", 1}: nil}}
	in.warns.warn(now.Add(-3*time.Minute), "fetch", "fetch", "err", errors.New("old"))
	if s := in.stall(now); s == nil || !strings.Contains(s.Reason, "its 2 assigned partitions are not known to be caught up") || s.LastError != "" {
		t.Fatalf("partitions behind for 2m, error older than the stall: %+v", s)
	}
	in.warns.warn(now.Add(-time.Minute), "fetch", "fetch", "err", errors.New("connection refused"))
	if s := in.stall(now); s == nil || s.LastError != "fetch: connection refused" {
		t.Fatalf("partitions behind, with an error since: %+v", s)
	}
	in.lastFetch.Store(now.Add(-59 * time.Second).UnixNano())
	if s := in.stall(now); s != nil {
		t.Fatalf("a fetch 59s ago: %+v", s)
	}
	in.lastFetch.Store(0)
	in.progress.Store(now.Add(-time.Second).UnixNano()) // caught up a second ago
	if s := in.stall(now); s != nil {
		t.Fatalf("caught up a second ago: %+v", s)
	}
}
