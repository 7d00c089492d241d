package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/sampler"
)

var (
	servingRE = regexp.MustCompile(`sample: serving batches on (\S+)`)
	metricsRE = regexp.MustCompile(`serving /metrics[^"]*"? addr=(\S+)`)
)

// TestSampleCommand serves a real curated lake with `thresher sample`,
// reads batches over Arrow IPC and checks them against a sampler in the
// process, then scrapes the metrics and stops the command.
func TestSampleCommand(t *testing.T) {
	dir, store := curatetest.Lake(t, 6000, 3000)
	cfgFile := filepath.Join(t.TempDir(), "sample.yaml")
	if err := os.WriteFile(cfgFile, []byte("batch_size: 99\nreplay_ratio: 0.25\nnegatives: 8\nmixture: temperature\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sample", "--lake", dir, "--listen", "127.0.0.1:0", "--config", cfgFile,
			"--seed", "3", "--batch-size", "24", "--metrics", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	var addr, maddr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" || maddr == "" {
		select {
		case code := <-done:
			t.Fatalf("sample exited early with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sample did not report its addresses: %s", stderr.String())
		}
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		if m := metricsRE.FindStringSubmatch(stderr.String()); m != nil {
			maddr = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, err := sampler.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := sampler.Config{Seed: 3, BatchSize: 24, ReplayRatio: 0.25, Negatives: 8, Mixture: sampler.MixtureTemperature}
	cfg.SetDefaults()
	local, err := sampler.New(ctx, cfg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for i := range 5 {
		got, err := r.Next(rctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := local.Next(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != int64(i) || len(got.Examples) != 24 || len(got.Negatives) != 8 {
			t.Fatalf("batch %d: seq %d, %d examples, %d negatives", i, got.Seq, len(got.Examples), len(got.Negatives))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batch %d from the command differs from an in-process sampler's", i)
		}
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"thresher_sampler_batches_total", "thresher_sampler_window 2", `thresher_sampler_drift{measure="domain_tv"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sample did not stop")
	}
	if !strings.Contains(stdout.String(), "sample: batches=") {
		t.Errorf("no summary on stdout: %q", stdout.String())
	}
}

func TestSampleBadConfiguration(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("batch_size: -3\nmixture: zipf\npacing: sideways\nreplay_ratio: 3\nmask_token: \"a b\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(t.TempDir(), "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("batchsize: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"sample"}, []string{"lake: a lake folder is required", "listen: an address"}},
		{[]string{"sample", "--lake", t.TempDir(), "--listen", "nonsense", "--config", bad},
			[]string{"listen: \"nonsense\"", "batch_size: -3", "mixture: \"zipf\"", "pacing: \"sideways\"", "replay_ratio: 3", "mask_token"}},
		{[]string{"sample", "--lake", t.TempDir(), "--listen", "127.0.0.1:0", "--config", unknown}, []string{"field batchsize not found"}},
		{[]string{"sample", "--lake", t.TempDir(), "--listen", "127.0.0.1:0", "--batch-size", "-1"}, []string{"batch_size: -1"}},
		{[]string{"sample", "--frobnicate"}, []string{"flag provided but not defined"}},
		{[]string{"sample", "--lake", t.TempDir(), "--listen", "127.0.0.1:0", "extra"}, []string{"unexpected arguments"}},
	}
	for _, c := range cases {
		code, _, stderr := run(t, c.args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, ExitUsage, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not say %q:\n%s", c.args, w, stderr)
			}
		}
	}
}
