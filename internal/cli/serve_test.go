package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/ingest"
)

func getProbe(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	return res.StatusCode, body
}

// TestServeProbes: /healthz fails only for a degraded or failing stage,
// /readyz unless it is ok; both say why and since when.
func TestServeProbes(t *testing.T) {
	var now atomic.Pointer[health]
	addr := unusedLocalAddr(t)
	stop, err := serveHTTP(context.Background(), slog.New(slog.DiscardHandler), addr, newRegistry(), func() health { return *now.Load() })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		h               health
		healthz, readyz int
	}{
		{health{Status: healthStarting}, 200, 503},
		{health{Status: healthOK, Detail: map[string]int{"records": 3}}, 200, 200},
		{health{Status: healthDegraded, Error: "no fetch has succeeded for 2m0s", Since: &since}, 503, 503},
		{health{Status: healthFailing, Error: "fenced"}, 503, 503},
	} {
		now.Store(&c.h)
		for path, want := range map[string]int{"/healthz": c.healthz, "/readyz": c.readyz} {
			code, body := getProbe(t, "http://"+addr+path)
			if code != want || body["status"] != c.h.Status {
				t.Errorf("%s while %s: %d %v, want %d", path, c.h.Status, code, body, want)
			}
			if c.h.Error != "" && body["error"] != c.h.Error {
				t.Errorf("%s while %s: body %v does not say why", path, c.h.Status, body)
			}
			if c.h.Since != nil && body["since"] != "2025-01-02T03:04:05Z" {
				t.Errorf("%s while %s: body %v does not say since when", path, c.h.Status, body)
			}
		}
	}
}

func TestIngestHealth(t *testing.T) {
	since := time.Unix(1_700_000_000, 0)
	stall := &ingest.Stall{Reason: "no fetch has succeeded for 2m0s", Since: since, LastError: "fetch: connection refused"}
	for _, c := range []struct {
		st     ingest.Status
		status string
		err    string
	}{
		{ingest.Status{}, healthStarting, ""},
		{ingest.Status{Ready: true}, healthOK, ""},
		{ingest.Status{Ready: true, Stalled: stall}, healthDegraded, "no fetch has succeeded for 2m0s; last Kafka error: fetch: connection refused"},
		{ingest.Status{Stalled: stall}, healthDegraded, "no fetch has succeeded for 2m0s; last Kafka error: fetch: connection refused"},
		{ingest.Status{Ready: true, Stalled: stall, Error: "fenced"}, healthFailing, "fenced"},
	} {
		h := ingestHealth(c.st)
		if h.Status != c.status || h.Error != c.err || (c.status == healthDegraded) != (h.Since != nil && h.Since.Equal(since)) {
			t.Errorf("%+v: %+v, want %s %q", c.st, h, c.status, c.err)
		}
	}
}

// TestCurateProbes: curate answers /readyz once it has opened its state and
// listed the raw table.
func TestCurateProbes(t *testing.T) {
	addr := unusedLocalAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"curate", "--lake", t.TempDir(), "--listen", addr}, strings.NewReader(""), &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("curate not ready after 20s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := getProbe(t, "http://"+addr+"/healthz")
	if detail, _ := body["detail"].(map[string]any); code != 200 || body["status"] != healthOK || detail["ready"] != true {
		t.Errorf("/healthz of a ready curate: %d %v", code, body)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
}
