package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/thresher-ml/thresher/internal/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// kafka-go's shared transport keeps idle connections and a
		// reaper per process.
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go/protocol.(*Conn).Close"),
	)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// produceKafkaGo writes msgs with kafka-go and fails the test on error.
func produceKafkaGo(t *testing.T, addr, topic string, msgs []kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(addr),
		Topic:                  topic,
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		AllowAutoTopicCreation: true,
		Transport:              tr,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("kafka-go close: %v", err)
	}
}

// consumeKafkaGo reads every partition of topic from the start to its end
// offset with kafka-go and returns "key=value" strings.
func consumeKafkaGo(t *testing.T, addr, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	var out []string
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", addr, topic, p.ID)
		if err != nil {
			t.Fatalf("dial leader %d: %v", p.ID, err)
		}
		first, last, err := pc.ReadOffsets()
		if err != nil {
			t.Fatalf("offsets %d: %v", p.ID, err)
		}
		if _, err := pc.Seek(first, kafka.SeekAbsolute); err != nil {
			t.Fatalf("seek: %v", err)
		}
		for off := first; off < last; {
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			batch := pc.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, string(m.Key)+"="+string(m.Value))
				off = m.Offset + 1
			}
			if err := batch.Close(); err != nil {
				t.Fatalf("batch partition %d: %v", p.ID, err)
			}
		}
		pc.Close()
	}
	sort.Strings(out)
	return out
}

// consumeKgo reads every record of topic up to the end offsets with franz-go.
func consumeKgo(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func messages(n int) ([]kafka.Message, []string) {
	msgs := make([]kafka.Message, n)
	want := make([]string, n)
	for i := range msgs {
		k, v := fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"id":"k%04d","text":"record %d"}`, i, i)
		msgs[i] = kafka.Message{Key: []byte(k), Value: []byte(v)}
		want[i] = k + "=" + v
	}
	sort.Strings(want)
	return msgs, want
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestBrokerKafkaGoRoundTrip(t *testing.T) {
	b := start(t, broker.Config{Partitions: 3, Topics: []string{"records"}})
	msgs, want := messages(1000)
	produceKafkaGo(t, b.Addr(), "records", msgs)
	equal(t, consumeKafkaGo(t, b.Addr(), "records"), want)

	recs := consumeKgo(t, b.Addr(), "records", len(msgs))
	parts := map[int32]int{}
	for _, r := range recs {
		parts[r.Partition]++
	}
	if len(parts) != 3 {
		t.Errorf("records landed in partitions %v, want all 3 used", parts)
	}
}

func TestBrokerAutoCreatesTopics(t *testing.T) {
	b := start(t, broker.Config{Partitions: 2})
	msgs, want := messages(10)
	produceKafkaGo(t, b.Addr(), "fresh", msgs)
	equal(t, consumeKafkaGo(t, b.Addr(), "fresh"), want)
	if err := b.CreateTopic("fresh", 2); err != nil {
		t.Errorf("auto-created topic should have the default 2 partitions: %v", err)
	}
}

func TestBrokerCreateTopic(t *testing.T) {
	b := start(t, broker.Config{Partitions: 2, Topics: []string{"a"}})
	if err := b.CreateTopic("a", 2); err != nil {
		t.Errorf("existing topic, same count: %v", err)
	}
	if err := b.CreateTopic("a", 5); err == nil {
		t.Error("existing topic, other count: want an error")
	}
	if err := b.CreateTopic("b", 6); err != nil {
		t.Fatalf("new topic: %v", err)
	}
	if err := b.CreateTopic("b", 6); err != nil {
		t.Errorf("second create: %v", err)
	}
	if err := b.CreateTopic("bad topic", 1); err == nil {
		t.Error("invalid name: want an error")
	}
}

func TestBrokerListensOnRequestedAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	b := start(t, broker.Config{Addr: addr})
	if b.Addr() != addr || b.ListenAddr() != addr {
		t.Fatalf("Addr %q ListenAddr %q, want %q", b.Addr(), b.ListenAddr(), addr)
	}

	_, err = broker.Start(broker.Config{Addr: addr})
	if !errors.Is(err, broker.ErrAddrInUse) {
		t.Fatalf("second broker on %s: got %v, want ErrAddrInUse", addr, err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address", err)
	}
}

func TestBrokerAdvertise(t *testing.T) {
	b := start(t, broker.Config{Addr: "0.0.0.0:0"})
	_, port, _ := net.SplitHostPort(b.ListenAddr())
	if want := net.JoinHostPort("127.0.0.1", port); b.Addr() != want {
		t.Fatalf("wildcard listen: Addr %q, want %q", b.Addr(), want)
	}
	// Clients follow the advertised address from metadata.
	msgs, want := messages(5)
	produceKafkaGo(t, b.Addr(), "t", msgs)
	equal(t, consumeKafkaGo(t, b.Addr(), "t"), want)

	b2 := start(t, broker.Config{Advertise: "localhost"})
	_, port, _ = net.SplitHostPort(b2.ListenAddr())
	if want := net.JoinHostPort("localhost", port); b2.Addr() != want {
		t.Fatalf("Advertise host: Addr %q, want %q", b2.Addr(), want)
	}
}

func TestBrokerConfigValidate(t *testing.T) {
	err := broker.Config{Addr: "nope", Partitions: -1, Topics: []string{"ok", "b/ad"}}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, s := range []string{"addr", "partitions", "b/ad"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := broker.Start(broker.Config{Partitions: -2}); err == nil {
		t.Error("Start with a bad config: want an error")
	}
}

func TestBrokerDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := broker.Config{Addr: addr, Partitions: 3, Topics: []string{"records"}, DataDir: dir, Logger: testLogger(t)}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	msgs, want := messages(500)
	produceKafkaGo(t, b.Addr(), "records", msgs[:300])
	b.Close()

	b, err = broker.Start(cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b.Close()
	produceKafkaGo(t, b.Addr(), "records", msgs[300:])
	equal(t, consumeKafkaGo(t, b.Addr(), "records"), want)
	b.Close()

	// A third start, now with more partitions configured: the topic keeps
	// its three and every record.
	cfg.Partitions = 5
	b, err = broker.Start(cfg)
	if err != nil {
		t.Fatalf("second restart: %v", err)
	}
	defer b.Close()
	equal(t, consumeKafkaGo(t, b.Addr(), "records"), want)
	if err := b.CreateTopic("records", 3); err != nil {
		t.Errorf("topic should keep 3 partitions: %v", err)
	}
}

// kcat returns kcat's path, skipping the test when it is missing (failing it
// on CI, where it must be installed).
func kcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat not found on PATH; CI must install it (Debian package kcat)")
		}
		t.Skip("kcat not found on PATH; install the kcat package to run the interop test")
	}
	return p
}

func runKcat(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestBrokerKcat checks librdkafka interop both ways, and that kcat with
// Java's murmur2 partitioner and kafka-go's Murmur2Balancer place a key in
// the same partition.
func TestBrokerKcat(t *testing.T) {
	kcat(t)
	b := start(t, broker.Config{Partitions: 4, Topics: []string{"fromkcat", "fromgo"}})

	var in bytes.Buffer
	var want []string
	for i := 0; i < 200; i++ {
		k, v := fmt.Sprintf("id-%03d", i), fmt.Sprintf(`{"id":"id-%03d","text":"kcat %d"}`, i, i)
		fmt.Fprintf(&in, "%s\t%s\n", k, v)
		want = append(want, k+"="+v)
	}
	sort.Strings(want)
	runKcat(t, in.Bytes(), "-b", b.Addr(), "-t", "fromkcat", "-P", "-K", "\t",
		"-X", "partitioner=murmur2_random")
	equal(t, consumeKafkaGo(t, b.Addr(), "fromkcat"), want)

	msgs, wantGo := messages(200)
	produceKafkaGo(t, b.Addr(), "fromgo", msgs)
	out := runKcat(t, nil, "-b", b.Addr(), "-t", "fromgo", "-C", "-e", "-q", "-f", "%k=%s\t%p\n")
	var got []string
	goPart := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv, p, _ := strings.Cut(line, "\t")
		got = append(got, kv)
		k, _, _ := strings.Cut(kv, "=")
		goPart[k] = p
	}
	sort.Strings(got)
	equal(t, got, wantGo)

	// Same keys through kcat's murmur2: same partitions.
	in.Reset()
	for _, m := range msgs {
		fmt.Fprintf(&in, "%s\t%s\n", m.Key, m.Value)
	}
	runKcat(t, in.Bytes(), "-b", b.Addr(), "-t", "fromkcat2", "-P", "-K", "\t",
		"-X", "partitioner=murmur2_random")
	out = runKcat(t, nil, "-b", b.Addr(), "-t", "fromkcat2", "-C", "-e", "-q", "-f", "%k %p\n")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, p, _ := strings.Cut(line, " ")
		if goPart[k] != p {
			t.Fatalf("key %s: kcat murmur2 partition %s, kafka-go Murmur2Balancer partition %s", k, p, goPart[k])
		}
	}
}
