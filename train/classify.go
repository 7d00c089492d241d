package train

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/thresher-ml/thresher/internal/lake"
)

// ClassifyRequest is the body of POST /v1/classify.
type ClassifyRequest struct {
	Task  string   `json:"task"`
	Texts []string `json:"texts"`
}

// ClassifyResponse is the answer to POST /v1/classify: one prediction per
// text, in request order, from the newest head of the task, applied to the
// embeddings of the encoder of the checkpoint at CheckpointStep (the one the
// head was trained on, not necessarily the trainer's current weights).
type ClassifyResponse struct {
	Task           string       `json:"task"`
	CheckpointStep int64        `json:"checkpoint_step"`
	Predictions    []Prediction `json:"predictions"`
}

// maxCachedEncoders bounds the checkpoint encoders kept for classification
// (each holds its embedding table: 64 MiB at the defaults).
const maxCachedEncoders = 2

// adapterCache keeps the heads and encoders POST /v1/classify has loaded.
type adapterCache struct {
	mu       sync.Mutex
	heads    map[string]*cachedHead // by task
	encoders []cachedEncoder        // most recently used first
}

type cachedHead struct {
	key string
	crc uint32 // the object's trailing checksum: a replaced head reloads
	cls *Classifier
}

type cachedEncoder struct {
	key  string // checkpoint key
	enc  *Encoder
	hash string
}

func (t *Trainer) adapters() *adapterCache {
	t.adaptersOnce.Do(func() { t.adapterCache = &adapterCache{heads: map[string]*cachedHead{}} })
	return t.adapterCache
}

// classifyError is a failure with the HTTP status it answers.
type classifyError struct {
	code int
	err  error
}

func (e *classifyError) Error() string { return e.err.Error() }
func (e *classifyError) Unwrap() error { return e.err }

func classifyErr(code int, format string, args ...any) error {
	return &classifyError{code: code, err: fmt.Errorf(format, args...)}
}

// Classify returns the predictions of the newest head of task in the
// trainer's lake (HeadKey objects under checkpoints/, the highest step
// wins) for the texts, embedded by the encoder of the checkpoint the head
// was trained on. Heads and encoders are cached; a head object that
// changes (a newer step, or the same key rewritten) is reloaded on the next
// call. Errors wrap ErrNoHead (no head for the task), ErrHeadMismatch (the
// checkpoint under the head's key holds another encoder),
// ErrNoCheckpoint (that checkpoint is gone), ErrCorruptHead or the lake's.
func (t *Trainer) Classify(ctx context.Context, task string, texts []string) (*ClassifyResponse, error) {
	cls, err := t.classifier(ctx, task)
	if err != nil {
		return nil, err
	}
	return &ClassifyResponse{Task: task, CheckpointStep: cls.head.Meta.Step, Predictions: cls.Classify(texts)}, nil
}

func (t *Trainer) classifier(ctx context.Context, task string) (*Classifier, error) {
	if t.ckpts == nil {
		return nil, classifyErr(http.StatusServiceUnavailable, "train: the trainer has no lake to read heads from")
	}
	store := t.ckpts.store
	key, err := LatestHead(ctx, store, task)
	if err != nil {
		if errors.Is(err, ErrNoHead) {
			return nil, &classifyError{code: http.StatusNotFound, err: fmt.Errorf("%w; train one with thresher adapt --checkpoint LAKE --task DIR/%s", err, task)}
		}
		return nil, &classifyError{code: http.StatusServiceUnavailable, err: err}
	}
	data, err := store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, lake.ErrNotExist) { // deleted since the listing
			return nil, &classifyError{code: http.StatusNotFound, err: fmt.Errorf("%w %q: %s was deleted", ErrNoHead, task, key)}
		}
		return nil, &classifyError{code: http.StatusServiceUnavailable, err: fmt.Errorf("train: read head %s: %w", key, err)}
	}
	var crc uint32
	if len(data) >= 4 {
		crc = binary.LittleEndian.Uint32(data[len(data)-4:])
	}
	c := t.adapters()
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.heads[task]; ch != nil && ch.key == key && ch.crc == crc {
		return ch.cls, nil
	}
	h := new(Head)
	if err := h.UnmarshalBinary(data); err != nil {
		return nil, &classifyError{code: http.StatusInternalServerError, err: fmt.Errorf("%s: %w", key, err)}
	}
	if h.Meta.Task != task {
		return nil, classifyErr(http.StatusInternalServerError, "%w: %s holds the head of task %q", ErrCorruptHead, key, h.Meta.Task)
	}
	enc, hash, err := c.encoder(ctx, t.ckpts, CheckpointKey(h.Meta.Step))
	if err != nil {
		return nil, err
	}
	cls, err := h.bind(enc, hash)
	if err != nil {
		return nil, &classifyError{code: http.StatusConflict, err: err}
	}
	c.heads[task] = &cachedHead{key: key, crc: crc, cls: cls}
	return cls, nil
}

// encoder returns the encoder of the checkpoint at key and its hash, from
// the cache or the lake. c.mu is held.
func (c *adapterCache) encoder(ctx context.Context, ckpts *CheckpointStore, key string) (*Encoder, string, error) {
	for i, e := range c.encoders {
		if e.key == key {
			copy(c.encoders[1:i+1], c.encoders[:i])
			c.encoders[0] = e
			return e.enc, e.hash, nil
		}
	}
	ck, err := ckpts.Read(ctx, key)
	if err != nil {
		if errors.Is(err, lake.ErrNotExist) {
			return nil, "", &classifyError{code: http.StatusConflict, err: fmt.Errorf(
				"%w: the head was trained on %s, which retention has deleted; train the head again on a current checkpoint with thresher adapt", ErrNoCheckpoint, key)}
		}
		return nil, "", &classifyError{code: http.StatusServiceUnavailable, err: err}
	}
	enc, err := LoadEncoder(ck.Learner)
	if err != nil {
		return nil, "", &classifyError{code: http.StatusInternalServerError, err: fmt.Errorf("%s: %w", key, err)}
	}
	e := cachedEncoder{key: key, enc: enc, hash: EncoderHash(enc)}
	c.encoders = append([]cachedEncoder{e}, c.encoders...)
	if len(c.encoders) > maxCachedEncoders {
		c.encoders = c.encoders[:maxCachedEncoders]
	}
	// A head of another task may hold an evicted encoder; it stays usable
	// (and alive) until that head is replaced.
	return e.enc, e.hash, nil
}

// handleClassify serves POST /v1/classify: ClassifyRequest ->
// ClassifyResponse. It answers 400 for malformed JSON, unknown fields, a
// missing or malformed task name, a missing or empty list, or text that is
// not UTF-8; 404 when the lake holds no head for the task; 405 for another
// method; 409 when the head's checkpoint is gone or holds another encoder;
// 413 for a body over MaxEmbedBytes, more than MaxEmbedTexts texts or a
// text over MaxTextBytes; 415 for a Content-Type that cannot carry JSON
// (as /v1/embed); 500 for a corrupt head; 503 when the lake cannot be read.
// Every error body is {"error": "..."}. It does not wait for the trainer to
// be ready: heads and their encoders come from the lake.
func (t *Trainer) handleClassify(w http.ResponseWriter, r *http.Request) {
	if !onlyMethod(w, r, http.MethodPost) {
		return
	}
	if !jsonContent(w, r) {
		return
	}
	const want = `want {"task": "NAME", "texts": ["...", ...]}`
	var req ClassifyRequest
	if !t.decodeRequest(w, r, &req, want) {
		return
	}
	switch {
	case req.Task == "":
		writeError(w, http.StatusBadRequest, "missing \"task\": %s", want)
		return
	case !ValidTaskName(req.Task):
		writeError(w, http.StatusBadRequest, "\"task\" %q is not a task name (1 to %d of A-Z a-z 0-9 _ . -, not starting with a dot)", truncate(req.Task, 64), maxTaskName)
		return
	}
	if !t.checkTexts(w, req.Texts, want) {
		return
	}
	resp, err := t.Classify(r.Context(), req.Task, req.Texts)
	if err != nil {
		code := http.StatusInternalServerError
		var ce *classifyError
		if errors.As(err, &ce) {
			code = ce.code
		}
		if code >= 500 && t.log != nil {
			t.log.Error("classify", "task", req.Task, "err", err)
		}
		writeError(w, code, "%v", err)
		return
	}
	if t.metrics != nil {
		t.metrics.classifyTexts.Add(float64(len(resp.Predictions)))
	}
	writeJSON(w, http.StatusOK, resp)
}
