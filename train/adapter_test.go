package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// taskSample is a strided sample of a real labeled task's split (the
// files are sorted by label, so a prefix would hold one class).
type taskSample struct {
	texts  []string
	labels []int
}

var (
	wordnetOnce    sync.Once
	wordnetClasses []string
	wordnetSplits  map[string]taskSample
)

// wordnetTask returns every stride-th example of the real wordnet_lexname
// task's train, dev and test splits, and the class names.
func wordnetTask(t testing.TB) ([]string, map[string]taskSample) {
	t.Helper()
	strides := map[string]int{"train": 16, "dev": 30, "test": 30}
	paths := map[string]string{}
	for split := range strides {
		paths[split] = realtest.Data(t, "tasks/wordnet_lexname/"+split+".jsonl.gz")
	}
	wordnetOnce.Do(func() {
		raw := map[string][][2]string{}
		seen := map[string]bool{}
		for split, stride := range strides {
			for i, line := range realtest.Lines(t, paths[split], 0) {
				if i%stride != 0 {
					continue
				}
				var ex struct{ Text, Label string }
				if err := json.Unmarshal(line, &ex); err != nil {
					t.Fatal(err)
				}
				raw[split] = append(raw[split], [2]string{ex.Text, ex.Label})
				if !seen[ex.Label] {
					seen[ex.Label] = true
					wordnetClasses = append(wordnetClasses, ex.Label)
				}
			}
		}
		slices.Sort(wordnetClasses)
		wordnetSplits = map[string]taskSample{}
		for split, exs := range raw {
			var s taskSample
			for _, ex := range exs {
				s.texts = append(s.texts, ex[0])
				s.labels = append(s.labels, slices.Index(wordnetClasses, ex[1]))
			}
			wordnetSplits[split] = s
		}
	})
	return wordnetClasses, wordnetSplits
}

// headEncoderConfig is an untrained encoder wide enough for its random
// n-gram projections to carry the task.
func headEncoderConfig(seed uint64) Config {
	return Config{Buckets: 1 << 16, EmbedDim: 128, HiddenDim: 128, OutDim: 128, QueueSize: 64, HealthSample: 64, Workers: 1, Seed: seed}
}

func newTestEncoder(t testing.TB, cfg Config) *Encoder {
	t.Helper()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l.Encoder()
}

// headData embeds every every-th example of the wordnet sample with enc.
func headData(t testing.TB, enc *Encoder, step int64, every int) (HeadData, HeadSplit) {
	classes, splits := wordnetTask(t)
	sp := func(name string) HeadSplit {
		s := splits[name]
		var texts []string
		var labels []int
		for i := 0; i < len(s.texts); i += every {
			texts, labels = append(texts, s.texts[i]), append(labels, s.labels[i])
		}
		return HeadSplit{X: enc.Embed(texts), Y: labels}
	}
	return HeadData{
		Task: "wordnet_lexname", Classes: classes, Checkpoint: CheckpointKey(step), Step: step,
		EncoderHash: EncoderHash(enc), Train: sp("train"), Dev: sp("dev"),
	}, sp("test")
}

func accuracy(t testing.TB, h *Head, s HeadSplit) float64 {
	t.Helper()
	pred, err := h.Predict(s.X)
	if err != nil {
		t.Fatal(err)
	}
	hit := 0
	for i, p := range pred {
		if p == s.Y[i] {
			hit++
		}
	}
	return float64(hit) / float64(len(pred))
}

func majority(train, test []int, classes int) float64 {
	counts := make([]int, classes)
	for _, y := range train {
		counts[y]++
	}
	best := 0
	for c := range counts {
		if counts[c] > counts[best] {
			best = c
		}
	}
	hit := 0
	for _, y := range test {
		if y == best {
			hit++
		}
	}
	return float64(hit) / float64(len(test))
}

// TestHeadLearns trains linear and mlp heads on the embeddings of the real
// wordnet_lexname task (every 16th train example, every 30th dev and test
// example) under an untrained encoder, whose random n-gram projections
// already carry the words: both heads must beat the majority class by far
// on test, the chosen weight decay and epoch must come from the grid, and
// two (short) linear fits with the same seed must give the same bytes.
func TestHeadLearns(t *testing.T) {
	enc := newTestEncoder(t, headEncoderConfig(3))
	data, test := headData(t, enc, 7, 1)
	maj := majority(data.Train.Y, test.Y, len(data.Classes))
	for _, kind := range []HeadKind{HeadLinear, HeadMLP} {
		t.Run(string(kind), func(t *testing.T) {
			cfg := HeadConfig{Kind: kind, Hidden: 64, Seed: 5, MaxEpochs: 40, Patience: 4, WeightDecays: []float64{0, 1e-3}}
			began := time.Now()
			h, err := TrainHead(context.Background(), cfg, data)
			if err != nil {
				t.Fatal(err)
			}
			acc := accuracy(t, h, test)
			t.Logf("%s: %d train rows, %d classes, dev %.3f test %.3f majority %.3f, weight decay %g, epoch %d, %v",
				kind, len(data.Train.X), len(data.Classes), h.Meta.DevAccuracy, acc, maj, h.Meta.WeightDecay, h.Meta.Epochs, time.Since(began))
			if acc < maj+0.1 {
				t.Errorf("test accuracy %.3f is not well above the majority rate %.3f", acc, maj)
			}
			if h.Meta.Epochs < 1 || h.Meta.Epochs > cfg.MaxEpochs {
				t.Errorf("chosen epoch %d", h.Meta.Epochs)
			}
			if h.Meta.Kind != kind || h.Meta.Step != 7 || h.Meta.EncoderHash != EncoderHash(enc) || h.Meta.TrainRows != len(data.Train.X) {
				t.Errorf("metadata %+v", h.Meta)
			}
			if !slices.Contains(cfg.WeightDecays, h.Meta.WeightDecay) {
				t.Errorf("weight decay %g is not from the grid", h.Meta.WeightDecay)
			}
			if kind != HeadLinear {
				return
			}
			// Determinism, on a shorter fit.
			cfg.MaxEpochs = 2
			var blobs [2][]byte
			for i := range blobs {
				h, err := TrainHead(context.Background(), cfg, data)
				if err != nil {
					t.Fatal(err)
				}
				h.Meta.Time = time.Time{}
				blobs[i], _ = h.MarshalBinary()
			}
			if !bytes.Equal(blobs[0], blobs[1]) {
				t.Error("two fits with the same seed differ")
			}
		})
	}
}

// TestHeadBind: a head binds to the encoder it was trained on (also a copy
// decoded from a checkpoint) and refuses another one, naming both.
func TestHeadBind(t *testing.T) {
	cfg := smallLearnerConfig()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := l.Encoder()
	data, _ := headData(t, enc, 3, 8)
	h, err := TrainHead(context.Background(), HeadConfig{MaxEpochs: 3, WeightDecays: []float64{0}}, data)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadEncoder(blob)
	if err != nil {
		t.Fatal(err)
	}
	cls, err := h.Bind(loaded)
	if err != nil {
		t.Fatalf("bind to the same encoder, decoded: %v", err)
	}
	texts := []string{"a small furry animal", "the act of running"}
	got := cls.Classify(texts)
	want, _ := h.Predict(enc.Embed(texts))
	for i := range got {
		if got[i].Label != h.Meta.Classes[want[i]] || len(got[i].Scores) != len(h.Meta.Classes) {
			t.Fatalf("prediction %d: %+v, want %s", i, got[i], h.Meta.Classes[want[i]])
		}
		var sum float64
		for _, p := range got[i].Scores {
			sum += p
		}
		if sum < 0.999 || sum > 1.001 {
			t.Errorf("scores sum to %v", sum)
		}
	}

	cfg.Seed++
	other := newTestEncoder(t, cfg)
	if _, err := h.Bind(other); !errors.Is(err, ErrHeadMismatch) || !strings.Contains(err.Error(), CheckpointKey(3)) || !strings.Contains(err.Error(), "thresher adapt") {
		t.Fatalf("bind to another encoder: %v", err)
	}
	wide := newTestEncoder(t, headEncoderConfig(1))
	if _, err := h.Bind(wide); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("bind to a wider encoder: %v", err)
	}
	if _, err := h.Probs(wide.Embed(texts)); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("probs of wider rows: %v", err)
	}
}

func TestHeadConfigValidate(t *testing.T) {
	good := HeadConfig{}
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := HeadConfig{Kind: "tree", LR: -1, BatchSize: -1, MaxEpochs: -2, Patience: -3, WeightDecays: []float64{-1}}
	err := bad.Validate()
	if !errors.Is(err, ErrHeadConfig) {
		t.Fatalf("bad config: %v", err)
	}
	for _, want := range []string{`kind "tree"`, "lr: -1", "batch_size: -1", "max_epochs: -2", "patience: -3", "weight_decays: -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	mlp := HeadConfig{Kind: HeadMLP, Hidden: -1}
	mlp.SetDefaults()
	if err := mlp.Validate(); err == nil || !strings.Contains(err.Error(), "hidden: -1") {
		t.Errorf("mlp with hidden -1: %v", err)
	}

	x := [][]float32{{1, 2}, {3, 4}}
	for _, tc := range []struct {
		name string
		data HeadData
		want string
	}{
		{"bad task", HeadData{Task: "../x", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0, 1}}, Dev: HeadSplit{x, []int{0, 1}}}, "task name"},
		{"one class", HeadData{Task: "t", Classes: []string{"a"}, Train: HeadSplit{x, []int{0, 0}}, Dev: HeadSplit{x, []int{0, 0}}}, "1 classes"},
		{"duplicate class", HeadData{Task: "t", Classes: []string{"a", "a"}, Train: HeadSplit{x, []int{0, 1}}, Dev: HeadSplit{x, []int{0, 1}}}, "distinct"},
		{"no dev", HeadData{Task: "t", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0, 1}}}, "dev split is empty"},
		{"label out of range", HeadData{Task: "t", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0, 2}}, Dev: HeadSplit{x, []int{0, 1}}}, "not a class index"},
		{"ragged", HeadData{Task: "t", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0, 1}}, Dev: HeadSplit{[][]float32{{1}}, []int{0}}}, "1 wide, not 2"},
		{"count", HeadData{Task: "t", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0}}, Dev: HeadSplit{x, []int{0, 1}}}, "2 rows and 1 labels"},
	} {
		if _, err := TrainHead(context.Background(), HeadConfig{}, tc.data); !errors.Is(err, ErrHeadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok := HeadData{Task: "t", Classes: []string{"a", "b"}, Train: HeadSplit{x, []int{0, 1}}, Dev: HeadSplit{x, []int{0, 1}}}
	if _, err := TrainHead(ctx, HeadConfig{}, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestHeadNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"wordnet_lexname": true, "a": true, "x-1.v2": true, "": false, ".hidden": false, "a/b": false,
		"a b": false, "é": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		if ValidTaskName(name) != ok {
			t.Errorf("ValidTaskName(%q) = %v", name, !ok)
		}
	}
	key := HeadKey(1000, "wordnet_lexname")
	if key != "checkpoints/000000001000.wordnet_lexname.head" {
		t.Errorf("HeadKey: %s", key)
	}
	if step, task, ok := parseHeadKey(key); !ok || step != 1000 || task != "wordnet_lexname" {
		t.Errorf("parseHeadKey(%s) = %d %q %v", key, step, task, ok)
	}
	if _, ok := parseCheckpointKey(key); ok {
		t.Errorf("a head key parses as a checkpoint key: retention would count it")
	}
	for _, k := range []string{CheckpointKey(5), "checkpoints/CURRENT", "checkpoints/12.t.head", "checkpoints/000000000001..x.head", "checkpoints/000000000001.t.head.tmp", "other/000000000001.t.head"} {
		if _, _, ok := parseHeadKey(k); ok {
			t.Errorf("parseHeadKey accepts %q", k)
		}
	}
	p, err := HeadPath("/lake/checkpoints/000000000020.ckpt", "fortune_cat")
	if err != nil || p != "/lake/checkpoints/000000000020.fortune_cat.head" {
		t.Errorf("HeadPath: %q %v", p, err)
	}
	if _, err := HeadPath("/x/model.bin", "t"); !errors.Is(err, ErrHeadConfig) {
		t.Errorf("HeadPath of a non-.ckpt file: %v", err)
	}
	if _, err := HeadPath("/x/1.ckpt", "../t"); !errors.Is(err, ErrHeadConfig) {
		t.Errorf("HeadPath with a bad task: %v", err)
	}
}

// testHead trains a tiny head of the given kind on two-dimensional points.
func testHead(t testing.TB, kind HeadKind) *Head {
	t.Helper()
	x := [][]float32{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 2}, {2, 3}}
	y := []int{0, 0, 1, 1, 2, 2}
	h, err := TrainHead(context.Background(), HeadConfig{Kind: kind, Hidden: 3, MaxEpochs: 5, WeightDecays: []float64{0}},
		HeadData{Task: "points", Classes: []string{"a", "b", "c"}, Checkpoint: CheckpointKey(1), Step: 1, EncoderHash: "00",
			Train: HeadSplit{x, y}, Dev: HeadSplit{x, y}})
	if err != nil {
		t.Fatal(err)
	}
	h.Meta.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return h
}

// TestHeadFormat round-trips heads through MarshalBinary and files, and
// rejects every kind of damage with ErrCorruptHead.
func TestHeadFormat(t *testing.T) {
	for _, kind := range []HeadKind{HeadLinear, HeadMLP} {
		h := testHead(t, kind)
		data, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Head
		if err := back.UnmarshalBinary(data); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(data, again) {
			t.Fatalf("%s: round trip changed the bytes", kind)
		}
		path := filepath.Join(t.TempDir(), "000000000001.points.head")
		if err := WriteHeadFile(path, h); err != nil {
			t.Fatal(err)
		}
		if f, err := ReadHeadFile(path); err != nil || f.Meta.Kind != kind {
			t.Fatalf("file round trip: %v", err)
		}
		if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
			t.Fatalf("%d files beside the head, want it alone", len(ents))
		}
	}

	data, _ := testHead(t, HeadLinear).MarshalBinary()
	reseal := func(b []byte) []byte {
		b = b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, checkpointCRC))
	}
	withMeta := func(edit func(m map[string]any)) []byte {
		metaLen := binary.LittleEndian.Uint32(data[12:])
		var m map[string]any
		if err := json.Unmarshal(data[headHeaderLen:headHeaderLen+int(metaLen)], &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		meta, _ := json.Marshal(m)
		out := slices.Clone(data[:headHeaderLen])
		binary.LittleEndian.PutUint32(out[12:], uint32(len(meta)))
		out = append(out, meta...)
		out = append(out, data[headHeaderLen+int(metaLen):]...)
		return reseal(out)
	}
	flip := func(i int) []byte { b := slices.Clone(data); b[i] ^= 1; return b }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"truncated", data[:len(data)-1], "do not fit"},
		{"bad magic", reseal(flip(0)), "bad magic"},
		{"version", reseal(func() []byte { b := slices.Clone(data); b[8] = 9; return b }()), "version 9"},
		{"checksum", flip(len(data) - 10), "checksum"},
		{"extra byte", reseal(append(slices.Clone(data[:len(data)-4]), 0, 0, 0, 0, 0)), "do not fit"},
		{"stray lexical column", reseal(append(slices.Clone(data[:len(data)-4]), 0, 0, 0, 0, 0, 0, 0, 0)), "lexical columns, the metadata says 0"},
		{"lexical columns in an encoder head", withMeta(func(m map[string]any) { m["lex_columns"] = 1 }), "lexical columns in a head"},
		{"bad layer", withMeta(func(m map[string]any) { m["layer"] = "top" }), `layer "top"`},
		{"bad features", withMeta(func(m map[string]any) { m["features"] = "tfidf" }), `features "tfidf"`},
		{"version 1 with a layer", reseal(func() []byte {
			b := withMeta(func(m map[string]any) { m["layer"] = LayerBag })
			b[8] = 1
			return b
		}()), "version-1 head with a layer"},
		{"bad kind", withMeta(func(m map[string]any) { m["kind"] = "tree" }), `kind "tree"`},
		{"bad task", withMeta(func(m map[string]any) { m["task"] = "a/b" }), "task name"},
		{"duplicate classes", withMeta(func(m map[string]any) { m["classes"] = []string{"a", "a", "b"} }), "distinct"},
		{"wrong width", withMeta(func(m map[string]any) { m["input_dim"] = 3 }), "parameters"},
		{"not finite", reseal(func() []byte {
			b := slices.Clone(data)
			binary.LittleEndian.PutUint32(b[len(b)-8:], 0x7fc00000)
			return b
		}()), "not finite"},
	}
	for _, tt := range tests {
		var h Head
		err := h.UnmarshalBinary(tt.data)
		if !errors.Is(err, ErrCorruptHead) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if h.Meta.Task != "" {
			t.Errorf("%s: a failed decode changed the head", tt.name)
		}
	}
}

// FuzzHeadUnmarshal checks that no input makes the decoder panic, that every
// rejection wraps ErrCorruptHead, and that whatever it accepts re-encodes to
// a head that decodes and predicts probabilities in [0, 1].
func FuzzHeadUnmarshal(f *testing.F) {
	for _, kind := range []HeadKind{HeadLinear, HeadMLP} {
		data, err := testHead(f, kind).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte("THRHEAD\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h Head
		if err := h.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptHead) {
				t.Fatalf("error does not wrap ErrCorruptHead: %v", err)
			}
			return
		}
		again, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var h2 Head
		if err := h2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded head does not decode: %v", err)
		}
		if h.Meta.InputDim > 64 || (h.Meta.Kind == HeadMLP && h.Meta.Hidden > 64) || len(h.Meta.Classes) > 64 {
			return
		}
		ps, err := h.Probs([][]float32{make([]float32, h.Meta.InputDim)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps[0] {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("probability %v", p)
			}
		}
	})
}

// BenchmarkTrainHead fits heads on the real wordnet_lexname sample (3,591
// train rows of a 128-wide untrained encoder) for a fixed 10 epochs and one
// weight decay, and reports training rows per second (rows x epochs / s):
//
//	go test -run '^$' -bench TrainHead -count 5 ./train/ | tee new.txt; benchstat new.txt
func BenchmarkTrainHead(b *testing.B) {
	enc := newTestEncoder(b, headEncoderConfig(3))
	data, _ := headData(b, enc, 1, 1)
	for _, kind := range []HeadKind{HeadLinear, HeadMLP} {
		b.Run("kind="+string(kind), func(b *testing.B) {
			cfg := HeadConfig{Kind: kind, Hidden: 256, MaxEpochs: 10, Patience: 100, WeightDecays: []float64{1e-4}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := TrainHead(context.Background(), cfg, data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*10*len(data.Train.X))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkEncoderHash hashes an encoder of the default shape (a 2^18 x 64
// table), which /v1/classify does once per checkpoint it loads.
func BenchmarkEncoderHash(b *testing.B) {
	cfg := Config{Workers: 1}
	l, err := NewLearner(cfg)
	if err != nil {
		b.Fatal(err)
	}
	enc := l.Encoder()
	bytes := 4 * (len(enc.emb) + len(enc.online.params()[0]) + len(enc.online.params()[2]))
	b.SetBytes(int64(bytes))
	for b.Loop() {
		EncoderHash(enc)
	}
}

// BenchmarkClassify classifies 64 real task texts with a bound head of each
// kind on a 128-wide encoder, and reports texts per second.
func BenchmarkClassify(b *testing.B) {
	enc := newTestEncoder(b, headEncoderConfig(3))
	data, _ := headData(b, enc, 1, 1)
	_, splits := wordnetTask(b)
	texts := splits["test"].texts[:64]
	for _, kind := range []HeadKind{HeadLinear, HeadMLP} {
		b.Run("kind="+string(kind), func(b *testing.B) {
			h, err := TrainHead(context.Background(), HeadConfig{Kind: kind, MaxEpochs: 1, WeightDecays: []float64{0}}, data)
			if err != nil {
				b.Fatal(err)
			}
			cls, err := h.Bind(enc)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				cls.Classify(texts)
			}
			b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
		})
	}
}

// TestHybridHead builds a hybrid head from known weights and checks its
// probabilities against the formula, through the file format and through
// Bind and Classify on the encoder's hybrid representation.
func TestHybridHead(t *testing.T) {
	cfg := smallLearnerConfig()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a small furry animal", "the act of running fast", "a never seen word: zyzzyva"}
	l.lex.add(texts[0], nil, nil)
	l.lex.add(texts[1], nil, nil)
	enc := l.Encoder()
	d, err := enc.LayerDim(LayerBagHidden)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := enc.WithLexWeight(2).EmbedHybrid(texts, LayerBagHidden)
	if err != nil {
		t.Fatal(err)
	}
	// The head weighs the lexical columns of the first two texts only.
	seen := map[uint32]bool{}
	for _, r := range rows[:2] {
		for _, c := range r.Lex.Idx {
			seen[uint32(c)] = true
		}
	}
	var cols []uint32
	for c := range seen {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	const classes = 3
	w := make([]float32, (d+len(cols))*classes)
	for i := range w {
		w[i] = float32((i*7)%11-5) / 5
	}
	b := []float32{0.1, -0.2, 0.3}
	meta := HeadMeta{
		Task: "toy", Classes: []string{"x", "y", "z"}, InputDim: d, Checkpoint: CheckpointKey(5), Step: 5,
		EncoderHash: EncoderHash(enc), Layer: LayerBagHidden, Features: HeadFeaturesHybrid, LexWeight: 2, C: 10,
	}
	h, err := NewLinearHead(meta, cols, w, b)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]float64, len(rows))
	for i, r := range rows {
		z := make([]float64, classes)
		for c := range z {
			z[c] = float64(b[c])
			for j, v := range r.Dense {
				z[c] += float64(v) * float64(w[j*classes+c])
			}
			for t, col := range r.Lex.Idx {
				if k, ok := slices.BinarySearch(cols, uint32(col)); ok {
					z[c] += float64(r.Lex.Val[t]) * float64(w[(d+k)*classes+c])
				}
			}
		}
		want[i] = softmax64(z)
	}
	check := func(name string, got [][]float32) {
		t.Helper()
		for i := range want {
			for c := range want[i] {
				if diff := float64(got[i][c]) - want[i][c]; diff > 1e-5 || diff < -1e-5 {
					t.Fatalf("%s: text %d class %d: %v, want %v", name, i, c, got[i][c], want[i][c])
				}
			}
		}
	}
	got, err := h.ProbsHybrid(rows)
	if err != nil {
		t.Fatal(err)
	}
	check("ProbsHybrid", got)

	blob, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Head
	if err := back.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	if back.Meta.LexColumns != len(cols) || !slices.Equal(back.lexCols, cols) {
		t.Fatalf("decoded %d lexical columns, want %d", back.Meta.LexColumns, len(cols))
	}
	cls, err := back.Bind(enc) // enc's own lexical weight differs: the head's is used
	if err != nil {
		t.Fatal(err)
	}
	preds := cls.Classify(texts)
	viaCls := make([][]float32, len(preds))
	for i, p := range preds {
		for _, name := range meta.Classes {
			viaCls[i] = append(viaCls[i], float32(p.Scores[name]))
		}
	}
	check("Classify", viaCls)

	if _, err := h.Probs([][]float32{rows[0].Dense}); err != nil {
		t.Fatalf("dense part alone: %v", err)
	}
	if _, err := (&Head{Meta: HeadMeta{Task: "e"}}).ProbsHybrid(rows); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("an encoder head scoring hybrid rows: %v", err)
	}

	for _, bad := range []struct {
		name string
		meta HeadMeta
		cols []uint32
		w    []float32
		want string
	}{
		{"unsorted columns", meta, []uint32{5, 3}, make([]float32, (d+2)*classes), "ascend"},
		{"short weights", meta, cols, w[1:], "weights"},
		{"bad layer", func() HeadMeta { m := meta; m.Layer = "top"; return m }(), cols, w, `layer "top"`},
		{"columns in an encoder head", func() HeadMeta { m := meta; m.Features = HeadFeaturesEncoder; return m }(), cols, w, "lexical columns in a head"},
	} {
		if _, err := NewLinearHead(bad.meta, bad.cols, bad.w, b); !errors.Is(err, ErrHeadConfig) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.name, err, bad.want)
		}
	}
}

// TestHeadVersion1 reads a head of format version 1 (no layer, no
// lexical columns): it reads the output layer, as it was trained on.
func TestHeadVersion1(t *testing.T) {
	cfg := smallLearnerConfig()
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := l.Encoder()
	data, _ := headData(t, enc, 3, 8)
	h, err := TrainHead(context.Background(), HeadConfig{MaxEpochs: 2, WeightDecays: []float64{0}}, data)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := h.MarshalBinary()
	blob[8] = 1 // the layout of a version-1 head is that of a version-2 head without lexical columns
	blob = binary.LittleEndian.AppendUint32(blob[:len(blob)-4], crc32.Checksum(blob[:len(blob)-4], checkpointCRC))
	var v1 Head
	if err := v1.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	cls, err := v1.Bind(enc)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a small furry animal"}
	want, _ := h.Probs(enc.Embed(texts))
	got := cls.Classify(texts)[0]
	for c, name := range h.Meta.Classes {
		if d := got.Scores[name] - float64(want[0][c]); d > 1e-6 || d < -1e-6 {
			t.Fatalf("class %s: %v, want %v", name, got.Scores[name], want[0][c])
		}
	}
}

func softmax64(z []float64) []float64 {
	mx := slices.Max(z)
	out := make([]float64, len(z))
	var s float64
	for i, v := range z {
		out[i] = math.Exp(v - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}
