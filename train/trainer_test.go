package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/sampler"
)

// testServiceConfig is a deterministic service over lakeDir with a small
// learner.
func testServiceConfig(lakeDir string, maxSteps int64) ServiceConfig {
	l := smallLearnerConfig()
	l.QueueSize = 256
	l.WarmupSteps = 10
	return ServiceConfig{
		Lake: lakeDir, MaxSteps: maxSteps, Deterministic: true,
		CheckpointSteps: 10, HealthEvery: 10,
		Learner: l,
		Sampler: sampler.Config{BatchSize: 32, Poll: 20 * time.Millisecond},
	}
}

// copyLake copies the lake at src into a fresh folder.
func copyLake(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func openLake(t testing.TB, dir string) lake.Store {
	t.Helper()
	s, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runTrainer builds a trainer over cfg.Lake and runs it to the end.
func runTrainer(t *testing.T, cfg ServiceConfig) *Trainer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr, err := NewTrainer(ctx, cfg, openLake(t, cfg.Lake), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

func currentCheckpoint(t *testing.T, dir string) (*Checkpoint, string) {
	t.Helper()
	ck, key, err := NewCheckpointStore(openLake(t, dir), 3, nil).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ck, key
}

// TestTrainerRealLake runs the trainer on a lake curated from the first
// records of the real stream.
func TestTrainerRealLake(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer http.DefaultClient.CloseIdleConnections()
	src, _ := curatetest.Lake(t, 6000, 3000)

	t.Run("ready after resume", func(t *testing.T) {
		dir := copyLake(t, src)
		ctx := context.Background()
		tr, err := NewTrainer(ctx, testServiceConfig(dir, 0), openLake(t, dir), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		h := tr.Handler()
		if code, body := do(t, h, "GET", "/readyz", "", ""); code != 503 {
			t.Fatalf("/readyz before resume: %d %s", code, body)
		}
		if err := tr.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		if code, body := do(t, h, "GET", "/readyz", "", ""); code != 200 {
			t.Fatalf("/readyz after a fresh start: %d %s", code, body)
		}
		var st TrainerStatus
		_, body := do(t, h, "GET", "/v1/status", "", "")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if !st.Ready || st.CheckpointStep != -1 || st.ResumedFrom != "" || st.Step != 0 {
			t.Fatalf("status of a fresh trainer: %s", body)
		}
	})

	t.Run("deterministic resume", func(t *testing.T) {
		const n = 15
		whole, split := copyLake(t, src), copyLake(t, src)
		runTrainer(t, testServiceConfig(whole, 2*n))
		first := runTrainer(t, testServiceConfig(split, n))
		if st := first.Status(); st.Step != n || st.CheckpointStep != n {
			t.Fatalf("first half stopped at step %d, checkpoint %d", st.Step, st.CheckpointStep)
		}
		// The second half takes n steps from the first half's checkpoint:
		// a resume that lost the learner or the cursor would take 2n steps
		// or see other batches.
		cfg := testServiceConfig(split, 2*n)
		second, err := NewTrainer(context.Background(), cfg, openLake(t, split), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()
		steps := 0
		second.observe = func(StepStats) { steps++ }
		if err := second.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := second.Status().ResumedFrom; got != CheckpointKey(n) || steps != n {
			t.Fatalf("second half resumed from %q and took %d steps, want %s and %d", got, steps, CheckpointKey(n), n)
		}
		a, ka := currentCheckpoint(t, whole)
		b, kb := currentCheckpoint(t, split)
		if ka != CheckpointKey(2*n) || kb != ka {
			t.Fatalf("final checkpoints %s and %s", ka, kb)
		}
		if !bytes.Equal(a.Learner, b.Learner) {
			t.Fatalf("learner state differs after a stop and resume at step %d (%d vs %d bytes)", n, len(a.Learner), len(b.Learner))
		}
		if !bytes.Equal(a.Cursor, b.Cursor) {
			t.Fatalf("sampler cursor differs after a stop and resume at step %d", n)
		}
		if a.Meta.ExamplesSeen != b.Meta.ExamplesSeen || a.Meta.TokensSeen != b.Meta.TokensSeen || a.Meta.Batches != b.Meta.Batches {
			t.Fatalf("counters differ: %+v vs %+v", a.Meta, b.Meta)
		}
		if a.Meta.ExamplesSeen != 2*n*32 || a.Meta.TokensSeen < a.Meta.ExamplesSeen {
			t.Fatalf("counters: %+v", a.Meta)
		}
	})

	t.Run("stop on cancel", func(t *testing.T) {
		dir := copyLake(t, src)
		cfg := testServiceConfig(dir, 0)
		cfg.CheckpointSteps = 1000
		tr, err := NewTrainer(context.Background(), cfg, openLake(t, dir), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		ctx, cancel := context.WithCancel(context.Background())
		tr.observe = func(s StepStats) {
			if s.Step >= 7 {
				cancel()
			}
		}
		if err := tr.Run(ctx); err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
		ck, key := currentCheckpoint(t, dir)
		if ck.Meta.Step != tr.Learner().Steps() || key != CheckpointKey(ck.Meta.Step) || ck.Meta.Step < 7 {
			t.Fatalf("final checkpoint %s at step %d, learner at %d", key, ck.Meta.Step, tr.Learner().Steps())
		}
	})

	t.Run("learns", func(t *testing.T) {
		dir := copyLake(t, src)
		cfg := testServiceConfig(dir, 300)
		cfg.CheckpointSteps = 1000
		tr, err := NewTrainer(context.Background(), cfg, openLake(t, dir), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var stats []StepStats
		tr.observe = func(s StepStats) { stats = append(stats, s) }
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		mean := func(ss []StepStats, f func(StepStats) float64) float64 {
			var s float64
			for _, x := range ss {
				s += f(x)
			}
			return s / float64(len(ss))
		}
		loss := func(s StepStats) float64 { return s.Contrastive }
		acc := func(s StepStats) float64 { return s.Accuracy }
		early, late := stats[:30], stats[len(stats)-30:]
		t.Logf("contrastive loss %.3f -> %.3f, accuracy %.3f -> %.3f over %d steps",
			mean(early, loss), mean(late, loss), mean(early, acc), mean(late, acc), len(stats))
		if !(mean(late, loss) < 0.85*mean(early, loss)) {
			t.Errorf("contrastive loss did not fall: %.3f -> %.3f", mean(early, loss), mean(late, loss))
		}
		// The default views are disjoint halves of a record: telling which
		// half goes with which is hard at first, so the bar is a
		// threefold rise, not a fixed gain (with every curriculum stage open
		// from the start, the default, 300 steps reach about 0.06).
		if !(mean(late, acc) > 3*mean(early, acc) && mean(late, acc) > mean(early, acc)+0.03) {
			t.Errorf("accuracy did not rise: %.3f -> %.3f", mean(early, acc), mean(late, acc))
		}
		st := tr.Status()
		if st.Step != 300 || st.ExamplesSeen != 300*32 || st.TokensSeen <= st.ExamplesSeen || st.Health.Step == 0 ||
			st.Health.RankMe <= 1 || st.Health.Collapsed || st.Curriculum.PlanVersion < 1 || st.Drift.Window < 1 {
			b, _ := json.Marshal(st)
			t.Fatalf("status after training: %s", b)
		}
		// /v1/embed serves the weights of the final checkpoint.
		ck, _ := currentCheckpoint(t, dir)
		enc, err := LoadEncoder(ck.Learner)
		if err != nil {
			t.Fatal(err)
		}
		texts := []string{"the lord is my shepherd", "libc6-dev: GNU C Library development files", "a small dog"}
		body, _ := json.Marshal(EmbedRequest{Texts: texts})
		code, out := do(t, tr.Handler(), "POST", "/v1/embed", "application/json", string(body))
		if code != 200 {
			t.Fatalf("/v1/embed: %d %s", code, out)
		}
		var resp EmbedResponse
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatal(err)
		}
		want := enc.Embed(texts)
		for i := range texts {
			for j := range want[i] {
				if resp.Embeddings[i][j] != want[i][j] {
					t.Fatalf("/v1/embed differs from the checkpoint's encoder at text %d dim %d", i, j)
				}
			}
		}
	})

	t.Run("remote sampler", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := testServiceConfig(copyLake(t, src), 12)
		cfg.SetDefaults()
		smp, err := sampler.New(ctx, cfg.Sampler, openLake(t, cfg.Lake), nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- sampler.Serve(ctx, ln, smp, nil) }()
		cfg.SamplerAddr = ln.Addr().String()
		tr := runTrainer(t, cfg)
		st := tr.Status()
		if st.Step != 12 || st.ExamplesSeen != 12*32 || st.Lake.Sampler != cfg.SamplerAddr || st.Drift.Recent.DomainTV < 0 {
			b, _ := json.Marshal(st)
			t.Fatalf("status after training from a remote sampler: %s", b)
		}
		ck, _ := currentCheckpoint(t, cfg.Lake)
		if ck.Meta.Step != 12 || len(ck.Cursor) != 0 {
			t.Fatalf("checkpoint at step %d with a %d-byte cursor", ck.Meta.Step, len(ck.Cursor))
		}
		tr.Close()
		cancel()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		smp.Close()
	})

	t.Run("process kill -9 and SIGTERM", func(t *testing.T) {
		testKillAndTerm(t, src)
	})
}

// trainProc is a `thresher train` subprocess.
type trainProc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bytes.Buffer
	exited chan error
}

func startTrain(t *testing.T, bin string, args ...string) *trainProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"train"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &trainProc{cmd: cmd, stdout: new(bytes.Buffer), exited: make(chan error, 1)}
	cmd.Stdout = p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "train: serving on http://"); ok {
				addrc <- a
			}
			if testing.Verbose() && !strings.HasPrefix(sc.Text(), "train: step") {
				t.Log(sc.Text())
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case p.addr = <-addrc:
	case err := <-p.exited:
		t.Fatalf("train exited before serving: %v", err)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("train did not serve within a minute")
	}
	return p
}

func (p *trainProc) status(t *testing.T) (TrainerStatus, bool) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/v1/status")
	if err != nil {
		return TrainerStatus{}, false
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st TrainerStatus
	if resp.StatusCode != 200 || json.Unmarshal(data, &st) != nil {
		return TrainerStatus{}, false
	}
	return st, true
}

// waitReady polls /readyz until 200.
func (p *trainProc) waitReady(t *testing.T) TrainerStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if st, ok := p.status(t); ok {
					return st
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("not ready within a minute")
	return TrainerStatus{}
}

// verifyCheckpoints checks that every checkpoint object in the lake
// verifies and that CURRENT names the one a resume takes; it returns its
// step.
func verifyCheckpoints(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ckpt") {
			if _, err := ReadCheckpointFile(filepath.Join(dir, "checkpoints", e.Name())); err != nil {
				t.Fatalf("torn checkpoint in the lake: %v", err)
			}
		}
	}
	ck, key := currentCheckpoint(t, dir)
	if data, err := os.ReadFile(filepath.Join(dir, "checkpoints", "CURRENT")); err != nil || strings.TrimSpace(string(data)) != key {
		t.Fatalf("CURRENT holds %q (%v), resumable checkpoint is %s", data, err, key)
	}
	return ck.Meta.Step
}

// tempFiles lists the temporary files in the lake's checkpoints/ folder:
// objects being written, or left by a process killed while writing them.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func testKillAndTerm(t *testing.T, src string) {
	bin := realtest.Binary(t)
	dir := copyLake(t, src)
	// A model big enough that writing a checkpoint takes a while, so that
	// kills land in the middle of some.
	conf := filepath.Join(t.TempDir(), "train.yaml")
	yaml := `checkpoint_steps: 3
health_every: 5
learner:
  buckets: 65536
  embed_dim: 32
  hidden_dim: 64
  out_dim: 32
  queue_size: 512
  workers: 1
sampler:
  batch_size: 32
  poll: 20ms
`
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--lake", dir, "--listen", "127.0.0.1:0", "--config", conf, "--progress", "0"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	committed := int64(-1) // the step CURRENT names before each start
	var kills, midCheckpoint int
	for round := 0; round < 6; round++ {
		tempsBefore := len(tempFiles(t, dir))
		p := startTrain(t, bin, args...)
		st := p.waitReady(t)
		if st.CheckpointStep != committed {
			t.Fatalf("round %d: resumed at checkpoint_step %d, the last complete checkpoint was %d", round, st.CheckpointStep, committed)
		}
		if committed >= 0 && (st.ResumedFrom != CheckpointKey(committed) || st.Step < committed) {
			t.Fatalf("round %d: resumed from %q at step %d, want %s", round, st.ResumedFrom, st.Step, CheckpointKey(committed))
		}
		// Let it train until it reports a new checkpoint, then for a random
		// while longer, then kill it without warning.
		seen := st.CheckpointStep
		var until time.Time
		for deadline := time.Now().Add(time.Minute); until.IsZero() || time.Now().Before(until); {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no new checkpoint within a minute", round)
			}
			if s, ok := p.status(t); ok {
				if s.Step < seen {
					t.Fatalf("round %d: step %d went back past checkpoint %d", round, s.Step, seen)
				}
				if s.CheckpointStep > committed && until.IsZero() {
					until = time.Now().Add(time.Duration(rng.IntN(800)) * time.Millisecond)
				}
				seen = max(seen, s.CheckpointStep)
			}
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
		if round%2 == 1 {
			// Every other round, wait for the next checkpoint write to begin
			// (a new temporary file in checkpoints/) and kill it there.
			stale := map[string]bool{}
			for _, n := range tempFiles(t, dir) {
				stale[n] = true
			}
		wait:
			for deadline := time.Now().Add(30 * time.Second); ; {
				for _, n := range tempFiles(t, dir) {
					if !stale[n] {
						break wait
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: no checkpoint write began within 30 s", round)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		kills++
		if len(tempFiles(t, dir)) > tempsBefore {
			midCheckpoint++
		}
		cur := verifyCheckpoints(t, dir)
		if cur < seen {
			t.Fatalf("round %d: CURRENT names step %d, but checkpoint %d was reported written", round, cur, seen)
		}
		if cur <= committed {
			t.Fatalf("round %d: CURRENT still at %d after a new checkpoint was reported", round, cur)
		}
		committed = cur
	}
	t.Logf("%d kills, %d of them left a partly written object behind (killed while writing)", kills, midCheckpoint)

	// SIGTERM: a final checkpoint, exit 0.
	p := startTrain(t, bin, args...)
	p.waitReady(t)
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("train after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		t.Fatal("train did not exit within a minute of SIGTERM")
	}
	cur := verifyCheckpoints(t, dir)
	var step, ckStep int64
	line := strings.TrimSpace(p.stdout.String())
	if _, err := fmt.Sscanf(line, "train: step=%d", &step); err != nil {
		t.Fatalf("final line %q: %v", line, err)
	}
	if i := strings.Index(line, "checkpoint_step="); i < 0 {
		t.Fatalf("final line %q lacks checkpoint_step", line)
	} else if _, err := fmt.Sscanf(line[i:], "checkpoint_step=%d", &ckStep); err != nil {
		t.Fatal(err)
	}
	if cur != step || ckStep != step || step <= committed {
		t.Fatalf("after SIGTERM: CURRENT at %d, stopped at step %d (checkpoint %d), previous checkpoint %d", cur, step, ckStep, committed)
	}
	// Six kills, some mid-write, and as many resumes: the history holds
	// every step up to CURRENT's exactly once.
	if got := historySteps(t, openLake(t, dir)); !slices.Equal(got, stepsUpTo(step)) {
		t.Fatalf("history after kills and resumes: %d rows for %d steps: %v", len(got), step, got)
	}
}

// BenchmarkTrainerLoop measures the whole service loop (sampler, learner,
// metrics, health, checkpoints every 1000 steps or 60 s) with the default
// configuration (batch 256) on a lake of the first 20k records of the real
// stream, in-batch negatives only and with queues of 1k (DefaultQueueSize),
// 4k and 16k keys:
//
//	go test -run '^$' -bench TrainerLoop -benchtime 100x ./train/ | tee bench.txt
//	benchstat bench.txt
//
// b.N is the number of optimiser steps. peak_rss_MB is the process's VmHWM
// so far (it includes the lake built first and earlier sub-benchmarks).
func BenchmarkTrainerLoop(b *testing.B) {
	src, _ := curatetest.Lake(b, 20000, 10000)
	for _, q := range []int{-1, 1024, 4096, 16384} {
		b.Run(fmt.Sprintf("queue=%d", q), func(b *testing.B) {
			cfg := ServiceConfig{Lake: copyLake(b, src), MaxSteps: int64(b.N)}
			cfg.Learner.QueueSize = q
			ctx := context.Background()
			tr, err := NewTrainer(ctx, cfg, openLake(b, cfg.Lake), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Resume(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			began := time.Now()
			if err := tr.Run(ctx); err != nil {
				b.Fatal(err)
			}
			el := time.Since(began).Seconds()
			b.StopTimer()
			st := tr.Status()
			b.ReportMetric(float64(st.ExamplesSeen)/el, "examples/s")
			b.ReportMetric(float64(st.TokensSeen)/el, "tokens/s")
			b.ReportMetric(st.Losses.Contrastive, "final_loss")
			b.ReportMetric(peakRSSMB(), "peak_rss_MB")
		})
	}
}

// peakRSSMB returns the process's VmHWM in MiB.
func peakRSSMB() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(rest, &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkTrainProcess runs `thresher train` with the default
// configuration (batch 256) and the sub-benchmark's queue size (-1: in-batch
// negatives only) as a process on a lake of the first 20k records of the real
// stream, b.N steps, and reports what it prints at exit: examples/s and
// tokens/s of the whole loop (sampler, learner, metrics, health and the
// final checkpoint) and the process's peak RSS (VmHWM):
//
//	go test -run '^$' -bench TrainProcess -benchtime 200x ./train/
func BenchmarkTrainProcess(b *testing.B) {
	bin := realtest.Binary(b)
	src, _ := curatetest.Lake(b, 20000, 10000)
	for _, q := range []int{-1, 1024, 4096, 16384} {
		b.Run(fmt.Sprintf("queue=%d", q), func(b *testing.B) {
			conf := filepath.Join(b.TempDir(), "train.yaml")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("learner:\n  queue_size: %d\n", q)), 0o644); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(bin, "train", "--lake", copyLake(b, src), "--config", conf, "--max-steps", fmt.Sprint(b.N), "--progress", "0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("%v: %s", err, stderr.String())
			}
			var exps, toks, rss float64
			for _, f := range strings.Fields(string(out)) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "examples_per_s":
					fmt.Sscan(v, &exps)
				case "tokens_per_s":
					fmt.Sscan(v, &toks)
				case "peak_rss_mb":
					fmt.Sscan(v, &rss)
				}
			}
			if exps == 0 {
				b.Fatalf("no figures in %q", out)
			}
			b.ReportMetric(exps, "examples/s")
			b.ReportMetric(toks, "tokens/s")
			b.ReportMetric(rss, "peak_rss_MB")
		})
	}
}
