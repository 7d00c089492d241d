package train

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// smallLearnerConfig is a learner small enough for tests under -race.
func smallLearnerConfig() Config {
	return Config{Buckets: 1 << 12, EmbedDim: 16, HiddenDim: 32, OutDim: 16, QueueSize: 64, HealthSample: 64, Workers: 1, Seed: 7}
}

// handlerTrainer returns a trainer with a learner and no sampler, enough to
// serve the HTTP API.
func handlerTrainer(t testing.TB, ready bool) *Trainer {
	t.Helper()
	cfg := ServiceConfig{Lake: "unused", Learner: smallLearnerConfig()}
	cfg.SetDefaults()
	cfg.MaxEmbedBytes, cfg.MaxEmbedTexts, cfg.MaxTextBytes = 4096, 4, 256
	l, err := NewLearner(cfg.Learner)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := newTrainerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trainer{cfg: cfg, learner: l, reg: reg, metrics: m, started: time.Now(), run: runState{ckptStep: -1, drift: newDriftTracker()}}
	tr.st.CheckpointStep = -1
	tr.ready.Store(ready)
	return tr
}

func do(t testing.TB, h http.Handler, method, path, contentType, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestServiceEndpoints(t *testing.T) {
	tr := handlerTrainer(t, false)
	h := tr.Handler()
	if code, body := do(t, h, "GET", "/healthz", "", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := do(t, h, "GET", "/readyz", "", ""); code != 503 {
		t.Fatalf("/readyz before resume: %d %s", code, body)
	}
	if code, body := do(t, h, "POST", "/v1/embed", "application/json", `{"texts":["a"]}`); code != 503 || !strings.Contains(body, `"error"`) {
		t.Fatalf("/v1/embed before resume: %d %s", code, body)
	}
	tr.ready.Store(true)
	if code, body := do(t, h, "GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("/readyz after resume: %d %s", code, body)
	}
	code, body := do(t, h, "GET", "/v1/status", "", "")
	if code != 200 {
		t.Fatalf("/v1/status: %d %s", code, body)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/v1/status is not JSON: %v: %s", err, body)
	}
	for _, k := range []string{"step", "examples_seen", "tokens_seen", "checkpoint_step", "lake", "curriculum", "losses",
		"accuracy", "lr", "health", "drift", "ready", "started_at", "uptime_s", "examples_per_s", "tokens_per_s", "promoted"} {
		if _, ok := st[k]; !ok {
			t.Errorf("/v1/status lacks %q: %s", k, body)
		}
	}
	if code, body := do(t, h, "POST", "/v1/status", "", ""); code != 405 || !strings.Contains(body, "not allowed") {
		t.Fatalf("POST /v1/status: %d %s", code, body)
	}
	code, body = do(t, h, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, series := range []string{"thresher_train_step ", "thresher_train_examples_total", "thresher_train_tokens_total",
		"thresher_train_checkpoint_step", "thresher_train_ready", "thresher_train_collapse_total", "thresher_train_rankme",
		"thresher_train_drift_domain_tv", "thresher_train_checkpoint_failures_total", "thresher_train_drift_alert ", "thresher_train_drift_mix_tv",
		"thresher_train_drift_alerts_total"} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

func TestEmbedHandler(t *testing.T) {
	tr := handlerTrainer(t, true)
	h := tr.Handler()
	code, body := do(t, h, "POST", "/v1/embed", "application/json; charset=utf-8", `{"texts":["the quick brown fox","a lazy dog"]}`)
	if code != 200 {
		t.Fatalf("happy path: %d %s", code, body)
	}
	var resp EmbedResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Embeddings) != 2 || resp.Dim != 16 || len(resp.Embeddings[0]) != 16 {
		t.Fatalf("response shape: %d vectors, dim %d", len(resp.Embeddings), resp.Dim)
	}
	want := tr.Embed([]string{"the quick brown fox", "a lazy dog"})
	for i, v := range resp.Embeddings {
		var norm float64
		for j, x := range v {
			norm += float64(x) * float64(x)
			if x != want[i][j] {
				t.Fatalf("embedding %d differs from Learner.Embed at %d: %v != %v", i, j, x, want[i][j])
			}
		}
		if math.Abs(norm-1) > 1e-4 {
			t.Fatalf("embedding %d has norm^2 %v", i, norm)
		}
	}

	// The hybrid representation: the scaled dense part and the lexical
	// part, together of unit length, as Learner.EmbedHybrid gives them.
	tr.learner.Step([]Example{{Text: "the quick brown fox", ViewA: "quick fox", ViewB: "brown fox"}, {Text: "a lazy dog", ViewA: "lazy dog", ViewB: "a dog"}})
	code, body = do(t, h, "POST", "/v1/embed?features=hybrid&weights=current", "application/json", `{"texts":["the quick brown fox"]}`)
	var hr EmbedResponse
	if err := json.Unmarshal([]byte(body), &hr); code != 200 || err != nil {
		t.Fatalf("hybrid: %d %s (%v)", code, body, err)
	}
	wantHs, err := tr.learner.EmbedHybrid([]string{"the quick brown fox"}, LayerOutput)
	if err != nil {
		t.Fatal(err)
	}
	wantH := wantHs[0]
	if hr.Features != FeaturesHybrid || hr.SparseDim != tr.learner.Config().LexBuckets || len(hr.Sparse) != 1 ||
		len(hr.Sparse[0].Idx) != 7 || len(hr.Embeddings[0]) != 16 {
		t.Fatalf("hybrid response shape: %s", body)
	}
	var hn float64
	for j, x := range hr.Embeddings[0] {
		if x != wantH.Dense[j] {
			t.Fatalf("hybrid dense part differs at %d", j)
		}
		hn += float64(x) * float64(x)
	}
	for j, x := range hr.Sparse[0].Val {
		if x != wantH.Lex.Val[j] || hr.Sparse[0].Idx[j] != wantH.Lex.Idx[j] {
			t.Fatalf("hybrid lexical part differs at %d", j)
		}
		hn += float64(x) * float64(x)
	}
	if math.Abs(hn-1) > 1e-4 {
		t.Fatalf("hybrid vector has norm^2 %v", hn)
	}
	if code, body := do(t, h, "POST", "/v1/embed?features=tfidf", "application/json", `{"texts":["a"]}`); code != 400 || !strings.Contains(body, "use encoder (default) or hybrid") {
		t.Fatalf("unknown features: %d %s", code, body)
	}
	// Another layer: EmbedLayer's rows, for the encoder and the hybrid.
	code, body = do(t, h, "POST", "/v1/embed?features=hybrid&layer=bag%2Bhidden&weights=current", "application/json", `{"texts":["a lazy dog"]}`)
	var lr EmbedResponse
	if err := json.Unmarshal([]byte(body), &lr); code != 200 || err != nil || lr.Layer != LayerBagHidden || lr.Dim != 16+32 {
		t.Fatalf("hybrid bag+hidden: %d %s (%v)", code, body, err)
	}
	if code, body := do(t, h, "POST", "/v1/embed?layer=top", "application/json", `{"texts":["a"]}`); code != 400 || !strings.Contains(body, "use one of output, bag") {
		t.Fatalf("unknown layer: %d %s", code, body)
	}

	// curl -d sends its default form Content-Type: the body is still JSON.
	if code, body := do(t, h, "POST", "/v1/embed", "application/x-www-form-urlencoded", `{"texts": ["a dog"]}`); code != 200 {
		t.Fatalf("curl -d style request: %d %s", code, body)
	}
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, method, ctype, body string
		code                      int
		msg                       string
	}{
		{"bad JSON", "POST", "application/json", `{"texts": [`, 400, "bad JSON"},
		{"not an object", "POST", "application/json", `["a"]`, 400, "bad JSON"},
		{"texts not strings", "POST", "application/json", `{"texts": [1, 2]}`, 400, "bad JSON"},
		{"unknown field", "POST", "application/json", `{"texts": ["a"], "x": 1}`, 400, "unknown field"},
		{"trailing data", "POST", "application/json", `{"texts": ["a"]} {}`, 400, "after the request"},
		{"missing texts", "POST", "application/json", `{}`, 400, "missing"},
		{"null texts", "POST", "application/json", `{"texts": null}`, 400, "missing"},
		{"empty list", "POST", "application/json", `{"texts": []}`, 400, "empty"},
		{"too many texts", "POST", "application/json", `{"texts": ["a","b","c","d","e"]}`, 413, "more than the 4"},
		{"text too long", "POST", "application/json", `{"texts": ["` + long + `"]}`, 413, "texts[0] is 300 bytes"},
		{"body too large", "POST", "application/json", `{"texts": ["` + strings.Repeat("y", 5000) + `"]}`, 413, "over 4096 bytes"},
		{"wrong method", "GET", "", "", 405, "not allowed"},
		{"wrong content type", "POST", "multipart/form-data; boundary=x", `{"texts": ["a"]}`, 415, "not application/json"},
		{"empty body", "POST", "application/json", ``, 400, "bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, h, tt.method, "/v1/embed", tt.ctype, tt.body)
			if code != tt.code {
				t.Fatalf("code %d, want %d: %s", code, tt.code, body)
			}
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.msg) {
				t.Fatalf("body %q does not say %q (%v)", body, tt.msg, err)
			}
		})
	}
}

// FuzzEmbedHandler checks that no request body makes the handler panic or
// answer anything but 2xx or 4xx, and that every answer is JSON.
func FuzzEmbedHandler(f *testing.F) {
	for _, s := range []string{
		`{"texts":["hello world"]}`, `{"texts":[]}`, `{"texts":null}`, `{}`, `[]`, `null`, ``, `{"texts":["a","b","c","d","e"]}`,
		`{"texts":["\u0000\ud800"]}`, `{"texts":[""]}`, `{"texts":["a"]}{"texts":["b"]}`, "{\"texts\":[\"\xff\xfe\"]}",
		`{"texts":[` + strings.Repeat(`"x",`, 100) + `"x"]}`, `{"texts":["` + strings.Repeat("long ", 100) + `"]}`,
	} {
		f.Add(s, "application/json")
	}
	f.Add(`{"texts":["a"]}`, "text/plain")
	f.Add(`{"texts":["a"]}`, "")
	f.Add(`{"texts":["a"]}`, "application/json; charset=\"")
	tr := handlerTrainer(f, true)
	h := tr.Handler()
	f.Fuzz(func(t *testing.T, body, ctype string) {
		req := httptest.NewRequest("POST", "/v1/embed", bytes.NewReader([]byte(body)))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("code %d for %q (%q): %s", rec.Code, body, ctype, rec.Body.String())
		}
		out, _ := io.ReadAll(rec.Body)
		if !json.Valid(out) {
			t.Fatalf("answer is not JSON: %q", out)
		}
		if rec.Code == 200 {
			var resp EmbedResponse
			if err := json.Unmarshal(out, &resp); err != nil || len(resp.Embeddings) == 0 {
				t.Fatalf("200 without embeddings: %s", out)
			}
		}
	})
}
