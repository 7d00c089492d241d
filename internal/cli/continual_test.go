package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/sample"
	"github.com/thresher-ml/thresher/train"
)

// continualTrainConfig is the trainer of TestContinualNewDomain: a small
// learner, the drift alert's figures every few steps, and the alert's
// windows set here, short enough for a test, rather than taken from the
// defaults. Pacing is off so that the curriculum opening stages does not
// move the domain mix by itself before the new domain arrives.
const continualTrainConfig = `health_every: 16
checkpoint_steps: 1000000
checkpoint_interval: 10m
drift_alert: 0.1
drift_alert_recent: 2s
drift_alert_trailing: 2m
learner:
  buckets: 4096
  embed_dim: 16
  hidden_dim: 32
  out_dim: 16
  queue_size: 128
  warmup_steps: 10
sampler:
  batch_size: 64
  poll: 100ms
  pacing: none
`

// continualHealthEvery is health_every of continualTrainConfig.
const continualHealthEvery = 16

// continualHistory is how long the trainer trains before the new domain
// arrives: the alert's trailing mix is the time-weighted mean of the mix
// so far, so a trailing mix of a few seconds would take the new domain in
// as fast as the recent one. Six recent time constants (drift_alert_recent
// 2s) leave it mostly the old mix when the recent one has moved.
const continualHistory = 12 * time.Second

var trainServingRE = regexp.MustCompile(`train: serving on http://(\S+)`)

// TestContinualNewDomain runs a new domain arriving while the services
// run. The embedded broker, thresher ingest and thresher curate start on an
// empty topic; the bundled sample without one domain is produced and
// curated, and thresher train starts on it. Then, with all of them still
// running, the withheld domain's records are produced into the live topic:
// within a minute they must reach the trainer (its domain mix on
// /v1/status names them) and raise the domain-mix drift alert
// (thresher_train_drift_alert 1, thresher_train_drift_alerts_total up),
// the alert naming that domain first among those that moved; then every
// service stops cleanly.
func TestContinualNewDomain(t *testing.T) {
	const topic, withheld = "records", "religion"
	began := time.Now()
	// ingest and curate set the process's soft memory limit unless
	// GOMEMLIMIT is set; in a test binary that limit would cover the other
	// services and the tests after this one too.
	t.Setenv("GOMEMLIMIT", "off")
	t.Setenv("THRESHER_CURATE_POLL", "100ms")

	before, after := splitSample(t, withheld)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfgFile, []byte(continualTrainConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	lakeDir := filepath.Join(dir, "lake")

	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ingestSvc := startCommand(t, "ingest", "--brokers", b.Addr(), "--topic", topic, "--group", "continual", "--lake", lakeDir,
		"--roll-interval", "200ms")
	curateSvc := startCommand(t, "curate", "--lake", lakeDir, "--window-records", "2000", "--listen", "127.0.0.1:0")
	services := []*runningCommand{ingestSvc, curateSvc}
	curateAddr := curateSvc.address(t, metricsRE)

	// Everything but the withheld domain is produced, ingested, curated
	// and trained on.
	producing := time.Now()
	produceTo(t, b.Addr(), topic, before.Bytes())
	produced := time.Now()
	n := int64(bytes.Count(before.Bytes(), []byte("\n")))
	pollUntil(t, services, 2*time.Minute, "every record curated", func() (bool, string) {
		p := curateProgress(t, curateAddr)
		return p.Total == n, fmt.Sprintf("curate: %+v, want total %d", p, n)
	})
	window := curateProgress(t, curateAddr).Window // committed before the total
	curated := time.Now()
	// The trainer starts on them: its first batch takes in every window,
	// so the domain mix it trains on is steady from the start.
	trainSvc := startCommand(t, "train", "--lake", lakeDir, "--listen", "127.0.0.1:0", "--config", cfgFile, "--progress", "0")
	services = append(services, trainSvc)
	trainAddr := trainSvc.address(t, trainServingRE)
	var st train.TrainerStatus
	pollUntil(t, services, time.Minute, "the trainer on every window, the alert down", func() (bool, string) {
		st = trainerStatus(t, trainAddr)
		// A few figures of the mix; the alert down.
		return st.Lake.Window >= window && st.Health.Step >= 3*continualHealthEvery && st.UptimeS >= continualHistory.Seconds() &&
			!st.Drift.Mix.Alert, fmt.Sprintf("status %+v", st)
	})
	for _, m := range st.Drift.Mix.Moves {
		if m.Domain == withheld {
			t.Fatalf("the trainer saw %s before it was produced: %+v", withheld, st.Drift.Mix)
		}
	}
	alerts := trainerMetric(t, trainAddr, "thresher_train_drift_alerts_total")
	t.Logf("before: %d records produced at %v in %v, curated %v later; trainer at step %d %v later, window %d, mix tv %.3f, %v alerts so far",
		n, producing.Sub(began).Round(time.Millisecond), produced.Sub(producing).Round(time.Millisecond), curated.Sub(produced).Round(time.Millisecond),
		st.Step, time.Since(curated).Round(time.Millisecond), st.Lake.Window, st.Drift.Mix.TV, alerts)

	// The withheld domain flows into the live topic.
	produceTo(t, b.Addr(), topic, after.Bytes())
	arrived := time.Now()
	var reached time.Duration
	pollUntil(t, services, time.Minute, withheld+" trained on and the drift alert up", func() (bool, string) {
		st = trainerStatus(t, trainAddr)
		if reached == 0 {
			for _, m := range st.Drift.Mix.Moves {
				if m.Domain == withheld && m.Recent > 0 {
					reached = time.Since(arrived)
				}
			}
		}
		on := trainerMetric(t, trainAddr, "thresher_train_drift_alert")
		total := trainerMetric(t, trainAddr, "thresher_train_drift_alerts_total")
		seen := "not in the trainer's mix"
		if reached > 0 {
			seen = fmt.Sprintf("in the trainer's mix after %v", reached)
		}
		return reached > 0 && on == 1 && total > alerts && st.Drift.Mix.Alert,
			fmt.Sprintf("%s %s; drift_alert %v, drift_alerts_total %v (was %v); mix %+v", withheld, seen, on, total, alerts, st.Drift.Mix)
	})
	// The alert is the new domain's doing: it moved most.
	if m := st.Drift.Mix.Moves; len(m) == 0 || m[0].Domain != withheld || m[0].Recent <= m[0].Trailing {
		t.Errorf("the alert does not name %s first among the domains that moved: %+v", withheld, st.Drift.Mix)
	}
	t.Logf("after: %s in the trainer's mix %v and the alert up %v after it was produced: %+v",
		withheld, reached.Round(time.Millisecond), st.Drift.Mix.Since.Sub(arrived).Round(time.Millisecond), st.Drift.Mix)

	// Stopped in the reverse order of the pipeline.
	stopping := time.Now()
	for _, s := range slices.Backward(services) {
		if code := s.stop(t); code != ExitOK {
			t.Errorf("%s: exit %d\n%s", s.name, code, s.stderr.String())
		}
	}
	if !strings.Contains(trainSvc.stdout.String(), "train: step=") {
		t.Errorf("train printed no summary: %q", trainSvc.stdout.String())
	}
	t.Logf("ran in %v, stopping took %v", time.Since(began).Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
}

// splitSample splits the bundled sample into the records of every domain
// but one and the records of that one.
func splitSample(t *testing.T, domain string) (others, withheld *bytes.Buffer) {
	t.Helper()
	rc, err := sample.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	others, withheld = &bytes.Buffer{}, &bytes.Buffer{}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct {
			Domain string `json:"domain"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		w := others
		if r.Domain == domain {
			w = withheld
		}
		w.Write(sc.Bytes())
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if withheld.Len() == 0 {
		t.Fatalf("the sample has no domain %q", domain)
	}
	return others, withheld
}

// runningCommand is a service, a long-lived command, running in the
// process. It is stopped when the test ends, before the test's temporary
// folders are removed.
type runningCommand struct {
	name           string
	stdout, stderr lockedBuffer
	cancel         context.CancelFunc
	done           chan struct{}
	code           int // exit code, once done is closed
}

func startCommand(t *testing.T, args ...string) *runningCommand {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningCommand{name: args[0], cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.code = Run(ctx, args, strings.NewReader(""), &s.stdout, &s.stderr)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// exited reports whether the service has stopped by itself.
func (s *runningCommand) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop stops the service and returns its exit code.
func (s *runningCommand) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.code
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop\n%s", s.name, s.stderr.String())
		return -1
	}
}

// address waits for the service to log the address it serves on.
func (s *runningCommand) address(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	var addr string
	pollUntil(t, []*runningCommand{s}, 30*time.Second, s.name+" serving", func() (bool, string) {
		if m := re.FindStringSubmatch(s.stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != "", ""
	})
	return addr
}

// pollUntil polls cond until it holds, failing the test at the deadline
// (with cond's last word) or when a service exits.
func pollUntil(t *testing.T, services []*runningCommand, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range services {
			if s.exited() {
				t.Fatalf("%s: %s exited with %d\n%s", what, s.name, s.code, s.stderr.String())
			}
		}
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// produceTo produces JSON Lines to the topic with thresher produce.
func produceTo(t *testing.T, brokers, topic string, lines []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	args := []string{"produce", "--brokers", brokers, "--topic", topic, "--progress-every", "0", "-"}
	if code := Run(ctx, args, bytes.NewReader(lines), &out, &errb); code != ExitOK {
		t.Fatalf("produce: exit %d: %s", code, errb.String())
	}
}

func httpJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func curateProgress(t *testing.T, addr string) curate.Progress {
	t.Helper()
	var h struct {
		Detail curate.Progress `json:"detail"`
	}
	httpJSON(t, "http://"+addr+"/healthz", &h)
	return h.Detail
}

func trainerStatus(t *testing.T, addr string) train.TrainerStatus {
	t.Helper()
	var st train.TrainerStatus
	httpJSON(t, "http://"+addr+"/v1/status", &st)
	return st
}

// trainerMetric reads an unlabelled metric from the trainer's /metrics.
func trainerMetric(t *testing.T, addr, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the trainer's metrics", name)
	return 0
}
