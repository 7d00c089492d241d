package ingest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// member is a `thresher ingest` child process.
type member struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	listen string
	done   chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startMember starts an ingest process; extra flags follow the common ones.
func startMember(t testing.TB, bin, addr, topic, group, lakeDir string, extra ...string) *member {
	t.Helper()
	m := &member{out: &bytes.Buffer{}, listen: freeAddr(t), done: make(chan error, 1)}
	args := append([]string{"ingest", "--brokers", addr, "--topic", topic, "--group", group,
		"--lake", lakeDir, "--listen", m.listen, "--session-timeout", "2s", "--roll-interval", "200ms",
		"--roll-records", "3000"}, extra...)
	m.cmd = exec.Command(bin, args...)
	m.cmd.Env = append(os.Environ(), "THRESHER_INGEST_HEARTBEAT_INTERVAL=300ms", "THRESHER_INGEST_REBALANCE_TIMEOUT=4s")
	m.cmd.Stdout = m.out
	var stderr io.Writer = io.Discard
	if testing.Verbose() {
		stderr = os.Stderr
	}
	m.cmd.Stderr = stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.done
		m.done <- nil
	})
	return m
}

// status reads the member's /healthz detail; ok is false while it does not answer.
func (m *member) status() (partitions []string, ok bool) {
	res, err := http.Get("http://" + m.listen + "/healthz")
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	var body struct {
		Detail struct {
			Partitions []string `json:"partitions"`
		} `json:"detail"`
	}
	if json.NewDecoder(res.Body).Decode(&body) != nil {
		return nil, false
	}
	return body.Detail.Partitions, res.StatusCode == http.StatusOK
}

// waitAssigned waits until the member holds at least one partition.
func (m *member) waitAssigned(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ps, ok := m.status(); ok && len(ps) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("member holds no partition after 30s; output: %s", m.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its error.
func (m *member) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("ingest did not exit within %v; output: %s", timeout, m.out)
		return nil
	}
}

// producer produces lines in small chunks, in the background.
func produceSlowly(t testing.TB, addr, topic string, lines [][]byte, chunk int, pause time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < len(lines); i += chunk {
			produce(t, addr, topic, lines[i:min(i+chunk, len(lines))], nil)
			time.Sleep(pause)
		}
	}()
	return &wg
}

// withFaults mixes a malformed value in every 97 lines.
func withFaults(lines [][]byte) [][]byte {
	out := make([][]byte, 0, len(lines)+len(lines)/97)
	for i, l := range lines {
		out = append(out, l)
		if i%97 == 0 {
			out = append(out, []byte(fmt.Sprintf(`{"id": "bad-%d"}`, i)))
		}
	}
	return out
}

// TestIngestKill9 kills ingest with SIGKILL at random moments while records
// are produced, restarts it each time, and checks that the lake ends exact.
func TestIngestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	lines := withFaults(realtest.CorpusLines(t, 40_000))
	const topic, parts = "crash", 4
	b := startBroker(t, topic, parts)
	dir := t.TempDir()
	prod := produceSlowly(t, b.Addr(), topic, lines, 2000, 150*time.Millisecond)

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	kills := 0
	for kills < 4 {
		m := startMember(t, bin, b.Addr(), topic, "crash-group", dir)
		// Kill it once it holds partitions, at a random moment of fetching,
		// decoding or committing. (Killing a member while its JoinGroup is
		// in flight trips a kfake bug: the dead member stays in the group
		// without a session timer, so its partitions are never reassigned.)
		m.waitAssigned(t)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-m.done
		m.done <- nil
		kills++
		t.Logf("kill %d: lake holds %d raw rows", kills, len(readLake(t, dir, topic).raw))
	}
	prod.Wait()
	m := startMember(t, bin, b.Addr(), topic, "crash-group", dir, "--exit-on-idle", "2s")
	if err := m.wait(t, 90*time.Second); err != nil {
		t.Fatalf("final run: %v; output: %s", err, m.out)
	}
	if !strings.Contains(m.out.String(), "ingest: records=") {
		t.Fatalf("no summary line: %q", m.out)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	if len(lc.raw) != 40_000 || len(lc.dlq) != len(lines)-40_000 {
		t.Fatalf("raw %d rows, dlq %d rows; want 40000 and %d", len(lc.raw), len(lc.dlq), len(lines)-40_000)
	}
}

// TestIngestTwoMembers runs two processes in one group: they split the
// partitions; one is killed and the other takes its partitions over.
func TestIngestTwoMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	lines := realtest.CorpusLines(t, 30_000)
	const topic, parts = "pair", 4
	b := startBroker(t, topic, parts)
	dir := t.TempDir()
	produce(t, b.Addr(), topic, lines[:10_000], nil)

	a := startMember(t, bin, b.Addr(), topic, "pair-group", dir)
	c := startMember(t, bin, b.Addr(), topic, "pair-group", dir, "--exit-on-idle", "3s")
	deadline := time.Now().Add(30 * time.Second)
	for {
		pa, oka := a.status()
		pc, okc := c.status()
		if oka && okc && len(pa) > 0 && len(pc) > 0 && len(pa)+len(pc) == parts {
			all := append(append([]string(nil), pa...), pc...)
			sort.Strings(all)
			if strings.Join(all, ",") != "pair/0,pair/1,pair/2,pair/3" {
				t.Fatalf("members hold %v and %v", pa, pc)
			}
			t.Logf("split: %v | %v", pa, pc)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions were not split between the members: %v %v", pa, pc)
		}
		time.Sleep(100 * time.Millisecond)
	}
	prod := produceSlowly(t, b.Addr(), topic, lines[10_000:], 2000, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	prod.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for {
		pc, ok := c.status()
		if ok && len(pc) == parts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivor did not take over every partition: %v", pc)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.wait(t, 60*time.Second); err != nil {
		t.Fatalf("survivor: %v; output %s", err, c.out)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	if len(lc.raw) != len(lines) {
		t.Fatalf("raw holds %d rows, want %d", len(lc.raw), len(lines))
	}
}

// TestIngestSIGTERM stops ingest with SIGTERM mid-stream: it must commit
// what it read, print its summary and exit 0; a restart finishes the rest.
func TestIngestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	lines := realtest.CorpusLines(t, 20_000)
	const topic, parts = "term", 2
	b := startBroker(t, topic, parts)
	dir := t.TempDir()
	prod := produceSlowly(t, b.Addr(), topic, lines, 1000, 100*time.Millisecond)
	m := startMember(t, bin, b.Addr(), topic, "term-group", dir, "--roll-interval", "1m")
	time.Sleep(1200 * time.Millisecond)
	// The service exposes its metrics while it runs.
	res, err := http.Get("http://" + m.listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"thresher_ingest_assigned_partitions 2", "thresher_ingest_lag_records{partition=\"0\",topic=\"term\"}",
		"thresher_ingest_commit_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := m.wait(t, 30*time.Second); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0; output %s", err, m.out)
	}
	var records int
	sc := bufio.NewScanner(m.out)
	for sc.Scan() {
		fmt.Sscanf(sc.Text(), "ingest: records=%d", &records)
	}
	if records == 0 || records != len(readLake(t, dir, topic).raw) {
		t.Fatalf("summary says %d records, lake holds %d (roll interval 1m: only the SIGTERM flush commits)",
			records, len(readLake(t, dir, topic).raw))
	}
	prod.Wait()
	m2 := startMember(t, bin, b.Addr(), topic, "term-group", dir, "--exit-on-idle", "1s")
	if err := m2.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
}

// TestIngestFromKcat uses kcat, an independent librdkafka producer.
func TestIngestFromKcat(t *testing.T) {
	kcat := realtest.Tool(t, "kcat", "apt-get install kcat")
	lines := realtest.CorpusLines(t, 5000)
	const topic = "kcat"
	b := startBroker(t, topic, 3)
	cmd := exec.Command(kcat, "-P", "-b", b.Addr(), "-t", topic, "-z", "snappy")
	cmd.Stdin = bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v: %s", err, out)
	}
	dir := t.TempDir()
	if _, err := runIngest(t, testConfig(b.Addr(), topic, dir), openLake(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, 3))
	checkTexts(t, lc.raw, lines)
}

// TestIngestPausedMember pauses one of two members (SIGSTOP) for longer than
// the session timeout while records keep flowing, so the group hands its
// partitions to the other, then resumes it (SIGCONT): the paused member
// wakes with open spans of partitions that are no longer its own. Every
// offset must land exactly once, with no overlapping segments, and both
// members must exit 0 (the woken one gives its stale partitions up; it
// does not fail, nor take the new owner down).
func TestIngestPausedMember(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	lines := withFaults(realtest.CorpusLines(t, 30_000))
	const topic, parts = "paused", 4
	b := startBroker(t, topic, parts)
	dir := t.TempDir()
	produce(t, b.Addr(), topic, lines[:4000], nil)

	// Long spans (1 s) so the paused member holds open ones; the session
	// times out 2 s after the pause.
	a := startMember(t, bin, b.Addr(), topic, "paused-group", dir, "--roll-interval", "1s", "--roll-records", "100000")
	c := startMember(t, bin, b.Addr(), topic, "paused-group", dir, "--roll-interval", "1s", "--roll-records", "100000")
	waitSplit(t, a, c, parts)
	prod := produceSlowly(t, b.Addr(), topic, lines[4000:], 1000, 100*time.Millisecond)
	time.Sleep(700 * time.Millisecond) // a holds open spans now
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Wait until c has taken every partition over and committed past
	// where a stopped, then wake a.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pc, ok := c.status(); ok && len(pc) == parts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running member did not take the paused member's partitions over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	prod.Wait()
	// Both drain and exit once the group is caught up.
	for _, m := range []*member{a, c} {
		if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for name, m := range map[string]*member{"paused": a, "running": c} {
		if err := m.wait(t, 30*time.Second); err != nil {
			t.Fatalf("%s member: %v; output %s", name, err, m.out)
		}
	}
	// A last member finishes what the two left (they were stopped, not
	// drained to the end of the topic).
	f := startMember(t, bin, b.Addr(), topic, "paused-group", dir, "--exit-on-idle", "1s")
	if err := f.wait(t, 60*time.Second); err != nil {
		t.Fatalf("final member: %v; output %s", err, f.out)
	}
	lc := readLake(t, dir, topic)
	checkResolved(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	if len(lc.raw) != 30_000 || len(lc.dlq) != len(lines)-30_000 {
		t.Fatalf("raw %d rows, dlq %d rows; want 30000 and %d", len(lc.raw), len(lc.dlq), len(lines)-30_000)
	}
}

// waitSplit waits until two members hold every partition between them.
func waitSplit(t testing.TB, a, c *member, parts int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pa, oka := a.status()
		pc, okc := c.status()
		if oka && okc && len(pa) > 0 && len(pc) > 0 && len(pa)+len(pc) == parts {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions were not split between the members: %v %v", pa, pc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
