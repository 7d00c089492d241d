package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a thresher child process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan error
}

func startProc(t testing.TB, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.stdout
	var stderr io.Writer = p.stderr
	if testing.Verbose() {
		stderr = io.MultiWriter(p.stderr, os.Stderr)
	}
	p.cmd.Stderr = stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t, syscall.SIGKILL) })
	return p
}

// stop signals the process and returns its exit error; a second stop
// returns the first one's result.
func (p *proc) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of %v; stderr:\n%s", p.cmd.Args[1], sig, p.stderr)
		return nil
	}
}

var brokerListeningRE = regexp.MustCompile(`broker listening on (\S+)`)

// startBrokerProc runs `thresher broker` on addr with its state in dataDir
// and waits until it accepts connections.
func startBrokerProc(t testing.TB, bin, addr, dataDir, topic string, partitions int) *proc {
	t.Helper()
	p := startProc(t, bin, nil, "broker", "--addr", addr, "--data", dataDir, "--topic", topic,
		"--partitions", strconv.Itoa(partitions), "--group-min-session-timeout", "1s")
	deadline := time.Now().Add(15 * time.Second)
	for !brokerListeningRE.MatchString(p.stdout.String()) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("broker exited: %v; stderr:\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not listening after 15s; stderr:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// probeBody is the JSON of /healthz and /readyz.
type probeBody struct {
	Status string     `json:"status"`
	Error  string     `json:"error"`
	Since  *time.Time `json:"since"`
	Detail struct {
		Ready      bool     `json:"ready"`
		Partitions []string `json:"partitions"`
	} `json:"detail"`
}

// probe GETs path on addr; code is 0 when the server does not answer.
func probe(addr, path string) (code int, body probeBody) {
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, body
	}
	defer res.Body.Close()
	if json.NewDecoder(res.Body).Decode(&body) != nil {
		return 0, body
	}
	return res.StatusCode, body
}

// waitProbes polls /healthz and /readyz until both answer the codes wanted
// and /healthz the status wanted, and returns /healthz's body.
func waitProbes(t testing.TB, addr string, healthz, readyz int, status string, within time.Duration, logs *syncBuffer) probeBody {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		hc, hb := probe(addr, "/healthz")
		rc, _ := probe(addr, "/readyz")
		if hc == healthz && rc == readyz && hb.Status == status {
			return hb
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: /healthz %d %+v, /readyz %d; want %d %q and %d; ingest log:\n%s",
				within, hc, hb, rc, healthz, status, readyz, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricLine returns the sample line of a metric without labels.
func metricLine(t testing.TB, addr, name string) string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return sc.Text()
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// lakeOffsets returns how many offsets the raw table accounts for.
func lakeOffsets(t testing.TB, store lake.Store, topic string, partitions int) int64 {
	t.Helper()
	var n int64
	for p := range partitions {
		next, _, err := lake.NextOffset(context.Background(), store, schemas.TableRaw, topic, int32(p))
		if err != nil {
			t.Fatal(err)
		}
		n += next
	}
	return n
}

// TestIngestBrokerRestart stops `thresher broker --data` three times while
// `thresher ingest` lands a stream that keeps flowing, and starts it again
// on the same address and data: ingest reconnects on its own and the lake
// ends exact. During the last outage, longer than the stall timeout,
// /healthz and /readyz report the member degraded (503, saying why and
// since when) and its gauge says so; both are 200 again once the broker is
// back. The Kafka errors of the outages are logged at WARN, a few lines in
// all rather than one per retry.
func TestIngestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	began := time.Now()
	lines := realtest.CorpusLines(t, 20_000)
	const topic, parts = "restart", 4
	addr, dataDir, lakeDir := freeAddr(t), t.TempDir(), t.TempDir()
	store := openLake(t, lakeDir)

	b := startBrokerProc(t, bin, addr, dataDir, topic, parts)
	listen := freeAddr(t)
	// The broker keeps the group's members across a restart, and the client
	// rejoins as a new member, so the group waits for the old one's session
	// to expire: a short session makes that quick. The stall timeout is
	// short so that an outage of a second degrades the member.
	in := startProc(t, bin, []string{"THRESHER_INGEST_HEARTBEAT_INTERVAL=300ms", "THRESHER_INGEST_STALL_TIMEOUT=1s"},
		"ingest", "--brokers", addr, "--topic", topic, "--group", "restart-group", "--lake", lakeDir,
		"--listen", listen, "--session-timeout", "2s", "--roll-interval", "200ms", "--roll-records", "2000")

	// The producer writes the stream in small chunks, retrying a chunk the
	// broker did not take (a retry may land records twice in Kafka; the lake
	// must hold every offset once all the same).
	var produced atomic.Int64
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{},
			BatchSize: 500, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll,
			MaxAttempts: 2, WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 100 * time.Millisecond}
		defer w.Close()
		// About 2,500 records a second: the stream outlasts the restarts.
		const chunk = 250
		for i := 0; i < len(lines); i += chunk {
			msgs := make([]kafka.Message, 0, chunk)
			for _, l := range lines[i:min(i+chunk, len(lines))] {
				msgs = append(msgs, kafka.Message{Value: l})
			}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := w.WriteMessages(ctx, msgs...)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			produced.Add(int64(len(msgs)))
			time.Sleep(100 * time.Millisecond)
		}
	}()

	waitProbes(t, listen, http.StatusOK, http.StatusOK, "ok", 30*time.Second, in.stderr)
	// flowing waits until the lake has grown by a few segments: the member
	// holds its partitions and records flow.
	flowing := func() int64 {
		t.Helper()
		from := lakeOffsets(t, store, topic, parts)
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := lakeOffsets(t, store, topic, parts)
			if n >= from+500 {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lake holds %d offsets, not growing past %d; ingest log:\n%s", n, from, in.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for restart := 1; restart <= 3; restart++ {
		landed := flowing()
		if err := b.stop(t, syscall.SIGTERM); err != nil {
			t.Fatalf("broker stop: %v; stderr:\n%s", err, b.stderr)
		}
		stopped := time.Now()
		t.Logf("restart %d: broker stopped with %d records produced, %d landed", restart, produced.Load(), landed)
		if restart < 3 {
			time.Sleep(300 * time.Millisecond)
		} else {
			h := waitProbes(t, listen, http.StatusServiceUnavailable, http.StatusServiceUnavailable, "degraded", 20*time.Second, in.stderr)
			if !strings.Contains(h.Error, "no fetch has succeeded") || h.Since == nil ||
				h.Since.After(time.Now()) || h.Since.Before(stopped.Add(-5*time.Second)) {
				t.Errorf("degraded /healthz should say why and since when (the broker stopped at %v): %+v", stopped, h)
			}
			t.Logf("degraded after %v: %s (since %v)", time.Since(stopped).Round(time.Millisecond), h.Error, h.Since)
			if got := metricLine(t, listen, "thresher_ingest_degraded"); got != "thresher_ingest_degraded 1" {
				t.Errorf("while degraded: %q", got)
			}
		}
		b = startBrokerProc(t, bin, addr, dataDir, topic, parts)
		if restart == 3 {
			waitProbes(t, listen, http.StatusOK, http.StatusOK, "ok", 30*time.Second, in.stderr)
			t.Logf("healthy %v after the broker came back", time.Since(stopped).Round(time.Millisecond))
			if got := metricLine(t, listen, "thresher_ingest_degraded"); got != "thresher_ingest_degraded 0" {
				t.Errorf("after the outage: %q", got)
			}
		}
	}
	<-prodDone

	hwm := endOffsets(t, addr, topic, parts)
	var total int64
	for _, h := range hwm {
		total += h
	}
	deadline := time.Now().Add(30 * time.Second)
	for lakeOffsets(t, store, topic, parts) < total {
		if time.Now().After(deadline) {
			t.Fatalf("the lake holds %d of %d offsets; ingest log:\n%s", lakeOffsets(t, store, topic, parts), total, in.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Caught up with nothing to fetch, the member is idle and stays
	// healthy past the stall timeout.
	deadline = time.Now().Add(20 * time.Second)
	for metricLine(t, listen, "thresher_ingest_idle") != "thresher_ingest_idle 1" {
		if time.Now().After(deadline) {
			t.Fatalf("not idle 20s after landing everything; ingest log:\n%s", in.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	if code, h := probe(listen, "/healthz"); code != http.StatusOK || h.Status != "ok" {
		t.Errorf("idle member, 1.5s past the stall timeout: /healthz %d %+v", code, h)
	}
	if err := in.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("ingest: %v; stderr:\n%s", err, in.stderr)
	}
	lc := readLake(t, lakeDir, topic)
	checkExact(t, lc, hwm)
	if int64(len(lc.raw)) != total || total < int64(len(lines)) {
		t.Fatalf("raw holds %d rows; Kafka holds %d records of the %d produced", len(lc.raw), total, len(lines))
	}
	texts := map[string]bool{}
	for _, r := range lc.raw {
		texts[r.Text] = true
	}
	for _, want := range textsOf(t, lines) {
		if !texts[want] {
			t.Fatalf("a produced record is not in the lake: %q", want)
		}
	}

	// Kafka errors are at WARN, the client's own included, and a few lines
	// say it all: per kind, the first, one an interval, one at exit.
	var warns, refused int
	kinds := map[string]int{}
	for _, l := range strings.Split(in.stderr.String(), "\n") {
		if !strings.Contains(l, "level=WARN") {
			continue
		}
		warns++
		if strings.Contains(l, "connection refused") {
			refused++
		}
		if m := regexp.MustCompile(`msg="?([a-z ]+)`).FindStringSubmatch(l); m != nil {
			kinds[m[1]]++
		}
	}
	t.Logf("%d WARN lines over 3 outages: %v", warns, kinds)
	if refused == 0 || kinds["kafka"]+kinds["kafka reader"] == 0 {
		t.Errorf("no WARN line from the Kafka client says the broker refused connections:\n%s", in.stderr)
	}
	perKind := 2 + int(time.Since(began)/ingest.WarnInterval)
	if kinds["consumer group"] > perKind || warns > 20 {
		t.Errorf("%d WARN lines (%d of them \"consumer group\", at most %d expected) for three short outages: the log is flooded:\n%s",
			warns, kinds["consumer group"], perKind, in.stderr)
	}
}

// endOffsets returns the end offset of every partition of topic, through a
// connection of its own (kafka-go's default transport may still hold one to
// the broker that was stopped).
func endOffsets(t testing.TB, addr, topic string, partitions int) map[int32]int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 10 * time.Second}
	return listEnds(t, c, topic, partitions)
}
