package train

import (
	"bytes"
	"context"
	"encoding/json"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/lake"
)

// classifyLake is a lake with checkpoints of two different small encoders
// (steps 10 and 20) and a trainer serving it.
type classifyLake struct {
	store lake.Store
	tr    *Trainer
	h     http.Handler
	encs  map[int64]*Encoder
}

func newClassifyLake(t testing.TB) *classifyLake {
	t.Helper()
	ctx := context.Background()
	store := lake.NewMem()
	ckpts := NewCheckpointStore(store, 10, nil)
	cl := &classifyLake{store: store, encs: map[int64]*Encoder{}}
	for i, step := range []int64{10, 20} {
		cfg := smallLearnerConfig()
		cfg.Seed += uint64(i) + 1 // neither is the trainer's own learner
		l, err := NewLearner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ckpts.Save(ctx, &Checkpoint{Meta: CheckpointMeta{Step: step}, Learner: blob}); err != nil {
			t.Fatal(err)
		}
		cl.encs[step] = l.Encoder()
	}
	cl.tr = handlerTrainer(t, true)
	cl.tr.ckpts = ckpts
	cl.h = http.HandlerFunc(cl.tr.handleClassify)
	return cl
}

// head trains a head of kind on the wordnet sample under the encoder of
// step, names it task and stores it under step's key.
func (cl *classifyLake) head(t testing.TB, task string, step int64, enc *Encoder, kind HeadKind) *Head {
	t.Helper()
	data, _ := headData(t, enc, step, 8)
	data.Task = task
	h, err := TrainHead(context.Background(), HeadConfig{Kind: kind, Hidden: 16, MaxEpochs: 4, WeightDecays: []float64{0}}, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveHead(context.Background(), cl.store, h); err != nil {
		t.Fatal(err)
	}
	return h
}

func (cl *classifyLake) classify(t testing.TB, body string) (int, ClassifyResponse, string) {
	t.Helper()
	code, out := do(t, cl.h, "POST", "/v1/classify", "application/json", body)
	var resp ClassifyResponse
	if code == 200 {
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("200 answer is not a ClassifyResponse: %v: %s", err, out)
		}
	}
	return code, resp, out
}

// offline is what the head predicts for texts with its own encoder.
func offline(t testing.TB, h *Head, enc *Encoder, texts []string) []Prediction {
	t.Helper()
	cls, err := h.Bind(enc)
	if err != nil {
		t.Fatal(err)
	}
	return cls.Classify(texts)
}

func samePredictions(t testing.TB, got, want []Prediction) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d predictions, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Label != want[i].Label || len(got[i].Scores) != len(want[i].Scores) {
			t.Fatalf("prediction %d: %s, want %s", i, got[i].Label, want[i].Label)
		}
		for k, v := range want[i].Scores {
			if got[i].Scores[k] != v {
				t.Fatalf("prediction %d: score of %s %v, want %v", i, k, got[i].Scores[k], v)
			}
		}
	}
}

// TestClassifyHandler serves heads from a lake: the answer equals the
// head's offline predictions under its own checkpoint's encoder, a head of
// a newer checkpoint and a rewritten head are picked up, and a head whose
// checkpoint is gone or holds another encoder is refused.
func TestClassifyHandler(t *testing.T) {
	cl := newClassifyLake(t)
	texts := []string{"a large wild animal of the cat family", "the act of writing a letter", "an instrument for measuring time"}
	body := func(task string) string {
		b, _ := json.Marshal(ClassifyRequest{Task: task, Texts: texts})
		return string(b)
	}

	// A head trained on step 10's encoder is served with that encoder, not
	// the trainer's current weights (here another seed).
	h10 := cl.head(t, "lex", 10, cl.encs[10], HeadLinear)
	code, resp, out := cl.classify(t, body("lex"))
	if code != 200 {
		t.Fatalf("classify: %d %s", code, out)
	}
	if resp.Task != "lex" || resp.CheckpointStep != 10 {
		t.Fatalf("response task %q step %d", resp.Task, resp.CheckpointStep)
	}
	samePredictions(t, resp.Predictions, offline(t, h10, cl.encs[10], texts))
	if _, err := h10.Bind(cl.tr.learner.Encoder()); err == nil {
		t.Fatal("the trainer's current encoder is the head's: the test proves nothing")
	}

	// A head of a newer checkpoint wins.
	h20 := cl.head(t, "lex", 20, cl.encs[20], HeadLinear)
	_, resp, _ = cl.classify(t, body("lex"))
	if resp.CheckpointStep != 20 {
		t.Fatalf("newer head: step %d", resp.CheckpointStep)
	}
	samePredictions(t, resp.Predictions, offline(t, h20, cl.encs[20], texts))

	// The same key rewritten with another head is reloaded.
	h20b := cl.head(t, "lex", 20, cl.encs[20], HeadMLP)
	_, resp, _ = cl.classify(t, body("lex"))
	samePredictions(t, resp.Predictions, offline(t, h20b, cl.encs[20], texts))
	var m dto.Metric
	if err := cl.tr.metrics.classifyTexts.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != float64(3*len(texts)) {
		t.Errorf("thresher_train_classify_texts_total %v after three answers of %d texts", got, len(texts))
	}

	// A head whose checkpoint holds another encoder is refused.
	bad := cl.head(t, "mismatch", 20, cl.encs[10], HeadLinear)
	code, _, out = cl.classify(t, body("mismatch"))
	if code != http.StatusConflict || !strings.Contains(out, "trained on another encoder") || !strings.Contains(out, bad.Meta.EncoderHash) {
		t.Fatalf("mismatched head: %d %s", code, out)
	}
	// A head whose checkpoint retention deleted is refused.
	gone := cl.head(t, "gone", 30, cl.encs[10], HeadLinear)
	code, _, out = cl.classify(t, body("gone"))
	if code != http.StatusConflict || !strings.Contains(out, CheckpointKey(gone.Meta.Step)) || !strings.Contains(out, "deleted") {
		t.Fatalf("head of a deleted checkpoint: %d %s", code, out)
	}
	// A corrupt head object answers 500 and does not crash.
	if err := cl.store.Replace(context.Background(), HeadKey(40, "torn"), []byte("THRHEAD\x00 torn")); err != nil {
		t.Fatal(err)
	}
	if code, _, out = cl.classify(t, body("torn")); code != 500 || !strings.Contains(out, "corrupt head") {
		t.Fatalf("torn head: %d %s", code, out)
	}

	long := strings.Repeat("x", 300)
	tests := []struct {
		name, method, ctype, body string
		code                      int
		msg                       string
	}{
		{"unknown task", "POST", "application/json", `{"task": "nope", "texts": ["a"]}`, 404, `no head for the task "nope"`},
		{"bad JSON", "POST", "application/json", `{"task": "lex", "texts": [`, 400, "bad JSON"},
		{"unknown field", "POST", "application/json", `{"task": "lex", "texts": ["a"], "x": 1}`, 400, "unknown field"},
		{"trailing data", "POST", "application/json", `{"task": "lex", "texts": ["a"]} {}`, 400, "after the request"},
		{"missing task", "POST", "application/json", `{"texts": ["a"]}`, 400, `missing "task"`},
		{"bad task", "POST", "application/json", `{"task": "../lex", "texts": ["a"]}`, 400, "not a task name"},
		{"missing texts", "POST", "application/json", `{"task": "lex"}`, 400, `missing "texts"`},
		{"empty list", "POST", "application/json", `{"task": "lex", "texts": []}`, 400, "empty"},
		{"too many texts", "POST", "application/json", `{"task": "lex", "texts": ["a","b","c","d","e"]}`, 413, "more than the 4"},
		{"text too long", "POST", "application/json", `{"task": "lex", "texts": ["` + long + `"]}`, 413, "texts[0] is 300 bytes"},
		{"body too large", "POST", "application/json", `{"task": "lex", "texts": ["` + strings.Repeat("y", 5000) + `"]}`, 413, "over 4096 bytes"},
		{"wrong method", "GET", "", "", 405, "not allowed"},
		{"wrong content type", "POST", "multipart/form-data; boundary=x", `{"task": "lex", "texts": ["a"]}`, 415, "not application/json"},
		{"empty body", "POST", "application/json", ``, 400, "bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, cl.h, tt.method, "/v1/classify", tt.ctype, tt.body)
			if code != tt.code {
				t.Fatalf("code %d, want %d: %s", code, tt.code, body)
			}
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.msg) {
				t.Fatalf("body %q does not say %q (%v)", body, tt.msg, err)
			}
		})
	}

	// Without a lake the handler answers 503.
	bare := handlerTrainer(t, true)
	if code, out := do(t, http.HandlerFunc(bare.handleClassify), "POST", "/v1/classify", "", body("lex")); code != 503 {
		t.Fatalf("no lake: %d %s", code, out)
	}
}

// TestClassifyConcurrent classifies from several goroutines while a newer
// head appears (run under -race).
func TestClassifyConcurrent(t *testing.T) {
	cl := newClassifyLake(t)
	cl.head(t, "lex", 10, cl.encs[10], HeadLinear)
	done := make(chan struct{}, 4)
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				code, out := do(t, cl.h, "POST", "/v1/classify", "application/json", `{"task": "lex", "texts": ["a cat", "a dog"]}`)
				if code != 200 {
					t.Errorf("classify: %d %s", code, out)
					return
				}
			}
		}()
	}
	cl.head(t, "lex", 20, cl.encs[20], HeadLinear)
	for range 4 {
		<-done
	}
	if _, resp, _ := cl.classify(t, `{"task": "lex", "texts": ["a cat"]}`); resp.CheckpointStep != 20 {
		t.Fatalf("after the new head: step %d", resp.CheckpointStep)
	}
}

// FuzzClassifyHandler checks that no request body makes the handler panic
// or answer anything but 2xx or 4xx, and that every answer is JSON.
func FuzzClassifyHandler(f *testing.F) {
	for _, s := range []string{
		`{"task":"lex","texts":["hello world"]}`, `{"task":"lex","texts":[]}`, `{"task":"lex","texts":null}`, `{}`, `[]`, `null`, ``,
		`{"task":"lex","texts":["a","b","c","d","e"]}`, `{"task":"nope","texts":["a"]}`, `{"task":"../x","texts":["a"]}`,
		`{"task":"lex","texts":["\u0000\ud800"]}`, `{"task":"lex","texts":[""]}`, `{"task":"lex","texts":["a"]}{"texts":["b"]}`,
		"{\"task\":\"lex\",\"texts\":[\"\xff\xfe\"]}", `{"task":1,"texts":["a"]}`, `{"task":"` + strings.Repeat("l", 200) + `","texts":["a"]}`,
	} {
		f.Add(s, "application/json")
	}
	f.Add(`{"task":"lex","texts":["a"]}`, "text/plain")
	f.Add(`{"task":"lex","texts":["a"]}`, "")
	f.Add(`{"task":"lex","texts":["a"]}`, "application/json; charset=\"")
	cl := newClassifyLake(f)
	cl.head(f, "lex", 10, cl.encs[10], HeadLinear)
	f.Fuzz(func(t *testing.T, body, ctype string) {
		req := httptest.NewRequest("POST", "/v1/classify", bytes.NewReader([]byte(body)))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		cl.h.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("code %d for %q (%q): %s", rec.Code, body, ctype, rec.Body.String())
		}
		out, _ := io.ReadAll(rec.Body)
		if !json.Valid(out) {
			t.Fatalf("answer is not JSON: %q", out)
		}
		if rec.Code == 200 {
			var resp ClassifyResponse
			if err := json.Unmarshal(out, &resp); err != nil || len(resp.Predictions) == 0 || resp.CheckpointStep != 10 {
				t.Fatalf("200 without predictions: %s", out)
			}
		}
	})
}
