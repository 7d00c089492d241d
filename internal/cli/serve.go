package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Health statuses, from health.Status.
const (
	healthStarting = "starting" // running, not yet at work
	healthOK       = "ok"
	healthDegraded = "degraded" // running, making no progress
	healthFailing  = "failing"  // stopped by an error
)

// health is a stage's answer on /healthz and /readyz, as JSON.
type health struct {
	// Status is one of the health statuses.
	Status string `json:"status"`
	// Error says why the status is degraded or failing.
	Error string `json:"error,omitempty"`
	// Since is when a degraded stage last made progress.
	Since *time.Time `json:"since,omitempty"`
	// Detail is the stage's own snapshot.
	Detail any `json:"detail,omitempty"`
}

// code returns the HTTP status of h on /healthz (ready false) or /readyz:
// /healthz fails only when the stage is degraded or failing, /readyz unless
// it is ok.
func (h health) code(ready bool) int {
	switch {
	case h.Status == healthOK, h.Status == healthStarting && !ready:
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// serveHTTP serves /metrics from reg, and /healthz and /readyz from check,
// on addr until ctx is done. The listener is bound before it returns, so a
// bad address fails at start.
func serveHTTP(ctx context.Context, log *slog.Logger, addr string, reg *prometheus.Registry, check func() health) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	probe := func(ready bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := check()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(h.code(ready))
			_ = json.NewEncoder(w).Encode(h)
		}
	}
	mux.HandleFunc("GET /healthz", probe(false))
	mux.HandleFunc("GET /readyz", probe(true))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving /metrics, /healthz and /readyz", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
