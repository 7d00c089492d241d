package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// EmbedRequest is the body of POST /v1/embed.
type EmbedRequest struct {
	Texts []string `json:"texts"`
}

// EmbedResponse is the answer to POST /v1/embed: one L2-normalised vector
// per text, in request order, from the weights at Step. Weights says which
// weights answered: WeightsPromoted or WeightsCurrent (also when promoted
// ones were asked for and none is promoted yet; the X-Thresher-Weights
// header says the same).
//
// With ?features=hybrid each text's answer is its hybrid representation
// (Encoder.EmbedHybrid): Embeddings holds the scaled dense parts and
// Sparse the lexical parts (column indexes below SparseDim, values), so
// that the concatenation of the two has unit length; a sparse-dense
// vector as hybrid search engines take it.
type EmbedResponse struct {
	Embeddings [][]float32 `json:"embeddings"`
	Sparse     []Sparse    `json:"sparse,omitempty"`
	Dim        int         `json:"dim"`
	SparseDim  int         `json:"sparse_dim,omitempty"`
	Features   string      `json:"features"`
	Layer      string      `json:"layer"`
	Step       int64       `json:"step"`
	Weights    string      `json:"weights"`
}

// Values of ?features= on /v1/embed and of EmbedResponse.Features.
const (
	FeaturesEncoder = "encoder" // the dense embedding
	FeaturesHybrid  = "hybrid"  // the dense embedding joined with the stream's TF-IDF
)

// Values of ?weights= on /v1/embed and of EmbedResponse.Weights.
const (
	WeightsPromoted = "promoted"
	WeightsCurrent  = "current"
	// WeightsHeader is the response header naming the weights that answered.
	WeightsHeader = "X-Thresher-Weights"
)

// errorBody is every error answer: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

// Handler returns the trainer's HTTP API:
//
//	GET  /healthz     200 while the process is alive and Run has not failed, else 503
//	GET  /readyz      200 once the trainer has resumed from CURRENT (or decided
//	                  to start fresh), 503 before
//	GET  /metrics     Prometheus metrics of the registerer given to NewTrainer
//	                  (when it is also a Gatherer, like *prometheus.Registry)
//	GET  /v1/status   TrainerStatus as JSON
//	POST /v1/embed    EmbedRequest -> EmbedResponse from the promoted checkpoint's
//	                  weights (?weights=promoted, the default), or the live ones
//	                  (?weights=current); the live ones while none is promoted;
//	                  ?features=encoder (the default) or hybrid; ?layer=output (the
//	                  default: Embed), bag, hidden or bag+hidden (EmbedLayer; the
//	                  representation thresher eval probes by default is DefaultLayer)
//	POST /v1/classify ClassifyRequest -> ClassifyResponse from the newest
//	                  adapter head of a task (see Trainer.Classify)
//
// /v1/embed answers 400 for malformed JSON, unknown fields, an empty list or
// an empty text or an unknown ?weights=, ?features= or ?layer= value; 405 for another method; 413 for a body over
// MaxEmbedBytes, more than MaxEmbedTexts texts or a text over MaxTextBytes;
// 415 for a Content-Type that cannot carry JSON (application/json, none,
// text/plain and curl -d's application/x-www-form-urlencoded are read as
// JSON); 503 before the
// trainer is ready. Every error body is {"error": "..."}.
func (t *Trainer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", t.handleHealthz)
	mux.HandleFunc("/readyz", t.handleReadyz)
	if g, ok := t.reg.(prometheus.Gatherer); ok {
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/v1/status", t.handleStatus)
	mux.HandleFunc("/v1/embed", t.handleEmbed)
	mux.HandleFunc("/v1/classify", t.handleClassify)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

// onlyMethod answers 405 unless r uses one of the methods.
func onlyMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method %s not allowed; use %s", r.Method, allow)
	return false
}

func (t *Trainer) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if !onlyMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	if err := t.failure(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failing", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (t *Trainer) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if !onlyMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	if !t.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "resuming from " + CurrentKey})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "resumed_from": t.Status().ResumedFrom})
}

func (t *Trainer) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !onlyMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, t.Status())
}

func (t *Trainer) handleEmbed(w http.ResponseWriter, r *http.Request) {
	if !onlyMethod(w, r, http.MethodPost) {
		return
	}
	if !jsonContent(w, r) {
		return
	}
	want := r.URL.Query().Get("weights")
	if want == "" {
		want = WeightsPromoted
	}
	if want != WeightsPromoted && want != WeightsCurrent {
		writeError(w, http.StatusBadRequest, "weights=%q: use %s (default) or %s", truncate(want, 32), WeightsPromoted, WeightsCurrent)
		return
	}
	feats := r.URL.Query().Get("features")
	if feats == "" {
		feats = FeaturesEncoder
	}
	layer := r.URL.Query().Get("layer")
	if layer == "" {
		layer = LayerOutput
	}
	if !slices.Contains(Layers, layer) {
		writeError(w, http.StatusBadRequest, "layer=%q: use one of %s", truncate(layer, 32), strings.Join(Layers, ", "))
		return
	}
	if feats != FeaturesEncoder && feats != FeaturesHybrid {
		writeError(w, http.StatusBadRequest, "features=%q: use %s (default) or %s", truncate(feats, 32), FeaturesEncoder, FeaturesHybrid)
		return
	}
	if !t.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not ready: the trainer is resuming from its checkpoint")
		return
	}
	var req EmbedRequest
	const usage = `want {"texts": ["...", ...]}`
	if !t.decodeRequest(w, r, &req, usage) || !t.checkTexts(w, req.Texts, usage) {
		return
	}
	enc, hyb, step := t.learner.EmbedLayer, t.learner.EmbedHybrid, t.step.Load()
	cfg := t.learner.Config()
	served := WeightsCurrent
	if p := t.promotedEncoder(); p != nil && want == WeightsPromoted {
		enc, hyb, step, served, cfg = p.enc.EmbedLayer, p.enc.EmbedHybrid, p.step, WeightsPromoted, p.enc.Config()
	}
	w.Header().Set(WeightsHeader, served)
	resp := EmbedResponse{Features: feats, Layer: layer, Step: step, Weights: served}
	var vecs [][]float32
	if feats == FeaturesHybrid {
		hs, _ := hyb(req.Texts, layer) // the layer was checked above
		for _, h := range hs {
			vecs = append(vecs, h.Dense)
			resp.Sparse = append(resp.Sparse, h.Lex)
		}
		resp.SparseDim = cfg.LexBuckets
	} else {
		vecs, _ = enc(req.Texts, layer)
	}
	for i, v := range vecs {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				writeError(w, http.StatusInternalServerError, "embedding of texts[%d] is not finite", i)
				return
			}
		}
	}
	dim := 0
	if len(vecs) > 0 {
		dim = len(vecs[0])
	}
	t.metrics.embedTexts.Add(float64(len(vecs)))
	resp.Embeddings, resp.Dim = vecs, dim
	writeJSON(w, http.StatusOK, resp)
}

// decodeRequest reads r's body, at most MaxEmbedBytes, as one JSON object
// into dst (unknown fields refused); on failure it answers 413 or 400 and
// returns false. want ends the 400 message.
func (t *Trainer) decodeRequest(w http.ResponseWriter, r *http.Request, dst any, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, t.cfg.MaxEmbedBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = terr
			if err == nil {
				err = errors.New("data after the request object")
			}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", t.cfg.MaxEmbedBytes)
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON: %v; %s", err, want)
		return false
	}
	return true
}

// checkTexts answers 400 or 413 and returns false when texts are missing,
// empty, too many, too long or not UTF-8. want ends the message of a
// missing "texts".
func (t *Trainer) checkTexts(w http.ResponseWriter, texts []string, want string) bool {
	lim := &t.cfg
	switch {
	case texts == nil:
		writeError(w, http.StatusBadRequest, "missing \"texts\": %s", want)
		return false
	case len(texts) == 0:
		writeError(w, http.StatusBadRequest, "\"texts\" is empty: give 1 to %d texts", lim.MaxEmbedTexts)
		return false
	case len(texts) > lim.MaxEmbedTexts:
		writeError(w, http.StatusRequestEntityTooLarge, "%d texts, more than the %d allowed per request", len(texts), lim.MaxEmbedTexts)
		return false
	}
	for i, s := range texts {
		if len(s) > lim.MaxTextBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "texts[%d] is %d bytes, more than %d", i, len(s), lim.MaxTextBytes)
			return false
		}
		if !utf8.ValidString(s) {
			writeError(w, http.StatusBadRequest, "texts[%d] is not valid UTF-8", i)
			return false
		}
	}
	return true
}

// jsonContent answers 415 and returns false unless r's Content-Type, when
// set, is one a JSON body comes with (curl's default form type included).
func jsonContent(w http.ResponseWriter, r *http.Request) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/plain" && mt != "application/x-www-form-urlencoded") {
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type %q is not application/json", truncate(ct, 64))
			return false
		}
	}
	return true
}
