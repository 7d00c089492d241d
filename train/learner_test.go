package train

import (
	"bytes"
	"math"
	"sync"
	"testing"
)

func tinyConfig() Config {
	return Config{
		Buckets: 64, EmbedDim: 6, HiddenDim: 8, OutDim: 5, Activation: ActivationGELU,
		CharNgramMin: 2, CharNgramMax: 3, QueueSize: 8, Temperature: 0.5, Beta: 0.5,
		Symmetric: true, MLMWeight: 0.5, MLMBuckets: 16, MLMNegatives: 3,
		HealthSample: 16, Workers: 2, Seed: 1, LexBuckets: 32,
	}
}

var tinyBatch = []Example{
	{ViewA: "the cat sat", ViewB: "cat sat down", MaskedA: []string{"down"}, MaskedB: []string{"the"}, Cluster: "c1", Record: "r1"},
	{ViewA: "a dog ran", ViewB: "the dog ran far", MaskedA: []string{"far"}, Cluster: "c2", Record: "r2"},
	{ViewA: "cat on mat", ViewB: "the cat on", MaskedB: []string{"mat", "x"}, Cluster: "c1", Record: "r3"},
	{ViewA: "birds fly south", ViewB: "birds fly", MaskedB: []string{"south"}, Record: "r4"},
}

// tinyNegatives are extra negatives for tinyBatch: one of cluster c1 (a
// false negative of examples 0 and 2), one of record r4, two others.
var tinyNegatives = []Example{
	{ViewA: "the cat sat on the mat", Cluster: "c1", Record: "n1"},
	{ViewA: "birds fly north", Cluster: "c9", Record: "r4"},
	{ViewA: "a fish swam", Cluster: "c8", Record: "n3"},
	{ViewA: "dogs ran far away", Cluster: "c7", Record: "n4"},
}

// TestNegatives: extra negatives are candidates like queue keys. For a
// one-example batch (no other candidate), a negative that masking covers
// (same cluster or record) leaves the loss at zero; an unmasked copy of the
// positive raises it; none is enqueued.
func TestNegatives(t *testing.T) {
	one := tinyBatch[:1] // cluster c1, record r1
	loss := func(negs []Example) float64 {
		l, err := NewLearner(tinyConfig())
		if err != nil {
			t.Fatal(err)
		}
		st := l.StepNegatives(one, negs)
		if l.queue.n != len(one) {
			t.Fatalf("queue holds %d keys after a batch of %d", l.queue.n, len(one))
		}
		return st.Contrastive
	}
	if base := loss(nil); math.Abs(base) > 1e-6 {
		t.Fatalf("one example, no negatives: loss %g, want 0", base)
	}
	masked := []Example{{ViewA: "cat sat down", Cluster: "c1", Record: "x"}, {ViewA: "cat sat down", Cluster: "c9", Record: "r1"}}
	if got := loss(masked); math.Abs(got) > 1e-6 {
		t.Errorf("masked negatives: loss %g, want 0", got)
	}
	if got := loss([]Example{{ViewA: "cat sat down", Cluster: "c5", Record: "y"}}); got < 0.5 {
		t.Errorf("a copy of the positive as a negative: loss %g, want about log 2", got)
	}
}

func sparseMap(s *sparseGrad) map[uint32][]float32 {
	m := map[uint32][]float32{}
	for k := range s.shards {
		sh := &s.shards[k]
		for i, r := range sh.rows {
			m[r] = append([]float32(nil), sh.grad[i*s.dim:(i+1)*s.dim]...)
		}
	}
	return m
}

func (l *Learner) clearGrads() {
	for k := range l.grads {
		clear(l.grads[k])
	}
	for k := range l.embGrad.shards {
		l.embGrad.reset(k)
	}
	for k := range l.mlm.outGrad.shards {
		l.mlm.outGrad.reset(k)
	}
}

// TestLearnerGradient checks the whole hand-written backward pass of a
// micro-batch (embedding-bag pooling, MLP, L2 norm, symmetric InfoNCE with
// a queue, false-negative masking, hard-negative weights, masked-token head)
// against central differences of the total loss.
func TestLearnerGradient(t *testing.T) {
	for _, v := range []struct {
		sgd  bool
		negs []Example
	}{{false, nil}, {true, nil}, {false, tinyNegatives}} {
		sgd, negs := v.sgd, v.negs
		cfg := tinyConfig()
		if sgd {
			cfg.Symmetric, cfg.Beta, cfg.Activation = false, 0, ActivationReLU
		}
		l, err := NewLearner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := rng{s: 5}
		randFill(&r, l.mlm.out, 0.5)
		keys := make([]float32, 6*cfg.OutDim)
		randFill(&r, keys, 1)
		l.queue.push(keys, []uint64{idHash("c1"), 0, idHash("c2"), 7, 0, idHash("c1")},
			[]uint64{0, idHash("r4"), 0, 0, 9, 0}, 0)
		loss := func() float64 {
			l.clearGrads()
			return l.compute(tinyBatch, negs).Loss
		}
		base := loss()
		if base <= 0 || math.IsNaN(base) {
			t.Fatalf("loss %g", base)
		}
		dense := newMLPGrads(l.online)
		for k := range dense {
			copy(dense[k], l.grads[k])
		}
		emb := sparseMap(&l.embGrad)
		out := sparseMap(&l.mlm.outGrad)
		if len(emb) == 0 || len(out) == 0 {
			t.Fatalf("no sparse gradients: %d embedding rows, %d output rows", len(emb), len(out))
		}
		check := func(what string, p []float32, idx []int, an []float32) {
			t.Helper()
			a, n := make([]float64, len(idx)), make([]float64, len(idx))
			for k, i := range idx {
				a[k] = float64(an[k])
				n[k] = numGrad(p, i, 2e-3, loss)
			}
			if e := relErr(a, n); e > 3e-2 {
				t.Errorf("%s: relative error %.3g\nanalytic %v\nnumeric  %v", what, e, a, n)
			}
		}
		for k, name := range []string{"W1", "b1", "W2", "b2"} {
			p := l.online.params()[k]
			var idx []int
			for i := 0; i < len(p); i += 1 + len(p)/15 {
				idx = append(idx, i)
			}
			an := make([]float32, len(idx))
			for j, i := range idx {
				an[j] = dense[k][i]
			}
			check(name, p, idx, an)
		}
		checkRows := func(what string, table []float32, d int, rows map[uint32][]float32, limit int) {
			var idx []int
			var an []float32
			for r, g := range rows {
				if limit == 0 {
					break
				}
				limit--
				for j := 0; j < d; j++ {
					idx = append(idx, int(r)*d+j)
					an = append(an, g[j])
				}
			}
			check(what, table, idx, an)
		}
		checkRows("embedding rows", l.emb, cfg.EmbedDim, emb, 12)
		checkRows("output rows", l.mlm.out, cfg.OutDim, out, 8)
	}
}

func testBatches(n, size int) [][]Example {
	words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"}
	r := rng{s: 11}
	var out [][]Example
	for i := 0; i < n; i++ {
		var b []Example
		for j := 0; j < size; j++ {
			var a, bb, all []string
			for k := 0; k < 6; k++ {
				w := words[r.next()%uint64(len(words))]
				all = append(all, w)
				if r.next()%4 != 0 {
					a = append(a, w)
				}
				if r.next()%4 != 0 {
					bb = append(bb, w)
				}
			}
			b = append(b, Example{Text: join(all), ViewA: join(a), ViewB: join(bb), MaskedA: []string{words[j%len(words)]},
				Cluster: words[(i+j)%5], Record: words[j%len(words)]})
		}
		out = append(out, b)
	}
	return out
}

func join(ws []string) string {
	var b bytes.Buffer
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

func marshal(t *testing.T, l *Learner) []byte {
	t.Helper()
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResumeBitIdentical: k steps, marshal, unmarshal into a fresh learner,
// m more steps gives the same bytes as k+m uninterrupted steps, including a
// cut in the middle of a gradient accumulation. The worker count does not
// change the result either.
func TestResumeBitIdentical(t *testing.T) {
	for _, accum := range []int{1, 3} {
		cfg := tinyConfig()
		cfg.AccumSteps = accum
		cfg.Buckets = 512
		batches := testBatches(14, 6)
		run := func(workers int, cut int) []byte {
			c := cfg
			c.Workers = workers
			l, err := NewLearner(c)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range batches {
				if i == cut {
					blob := marshal(t, l)
					l, err = NewLearner(c)
					if err != nil {
						t.Fatal(err)
					}
					l.Step(batches[0]) // state is replaced entirely
					if err := l.UnmarshalBinary(blob); err != nil {
						t.Fatal(err)
					}
				}
				l.Step(b)
			}
			return marshal(t, l)
		}
		want := run(1, -1)
		for _, tc := range []struct{ workers, cut int }{{1, 7}, {1, 4}, {2, -1}, {3, 5}} {
			if got := run(tc.workers, tc.cut); !bytes.Equal(got, want) {
				t.Errorf("accum %d, workers %d, cut at %d: state differs from the uninterrupted run", accum, tc.workers, tc.cut)
			}
		}
	}
}

// TestStepDeterministic: two learners with the same seed and batches agree;
// another seed does not.
func TestStepDeterministic(t *testing.T) {
	cfg := tinyConfig()
	a, _ := NewLearner(cfg)
	b, _ := NewLearner(cfg)
	cfg.Seed = 2
	c, _ := NewLearner(cfg)
	for _, batch := range testBatches(5, 4) {
		sa, sb := a.Step(batch), b.Step(batch)
		c.Step(batch)
		if sa != sb {
			t.Fatalf("stats differ: %+v vs %+v", sa, sb)
		}
	}
	if !bytes.Equal(marshal(t, a), marshal(t, b)) {
		t.Fatal("same seed, different states")
	}
	if bytes.Equal(marshal(t, a), marshal(t, c)) {
		t.Fatal("different seeds, same state")
	}
}

// TestEmbedConcurrentWithStep runs Embed, Health and Encoder while Step
// trains (meaningful under -race).
func TestEmbedConcurrentWithStep(t *testing.T) {
	l, err := NewLearner(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			e := l.Embed([]string{"the cat", "", "birds fly south"})
			if len(e) != 3 || len(e[0]) != 5 {
				t.Errorf("embed shape %d x %d", len(e), len(e[0]))
				return
			}
			_ = l.Health()
			_ = l.Encoder().Embed([]string{"x"})
		}
	}()
	for _, b := range testBatches(30, 4) {
		l.Step(b)
	}
	close(done)
	wg.Wait()
	if l.Steps() != 30 {
		t.Fatalf("steps %d", l.Steps())
	}
}

// TestEncoderMatchesLearner: Encoder(), LoadEncoder(blob) and Embed agree.
func TestEncoderMatchesLearner(t *testing.T) {
	l, _ := NewLearner(tinyConfig())
	for _, b := range testBatches(4, 4) {
		l.Step(b)
	}
	texts := []string{"the cat sat", "Birds FLY", "", "ünïcode wörds here"}
	want := l.Embed(texts)
	enc, err := LoadEncoder(marshal(t, l))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][][]float32{"LoadEncoder": enc.Embed(texts), "Encoder": l.Encoder().Embed(texts)} {
		for i := range want {
			for j := range want[i] {
				if got[i][j] != want[i][j] {
					t.Fatalf("%s: text %d dim %d: %g != %g", name, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
	if enc.Dim() != 5 {
		t.Fatalf("dim %d", enc.Dim())
	}
	for i, e := range want {
		var n float64
		for _, v := range e {
			n += float64(v) * float64(v)
		}
		if math.Abs(n-1) > 1e-4 {
			t.Fatalf("text %d: norm^2 %g", i, n)
		}
	}
	// Case folding: "Birds FLY" embeds like "birds fly".
	if a, b := l.Embed([]string{"Birds FLY"})[0], l.Embed([]string{"birds fly"})[0]; a[0] != b[0] {
		t.Fatal("case folding")
	}
}

// TestLazyMomentum: the lazily updated momentum table equals an eagerly
// updated EMA of the online table.
func TestLazyMomentum(t *testing.T) {
	cfg := tinyConfig()
	cfg.Momentum = 0.8
	l, _ := NewLearner(cfg)
	eager := append([]float32(nil), l.keyEmb...)
	for _, b := range testBatches(12, 4) {
		l.Step(b)
		m := float32(cfg.Momentum)
		for i := range eager {
			eager[i] = m*eager[i] + (1-m)*l.emb[i]
		}
	}
	d := cfg.EmbedDim
	ids := make([]uint32, 1)
	got := make([]float32, d)
	var maxDiff float64
	for r := 0; r < cfg.Buckets; r++ {
		ids[0] = uint32(r)
		l.poolKey(got, ids)
		for j := 0; j < d; j++ {
			maxDiff = max(maxDiff, math.Abs(float64(got[j]-eager[r*d+j])))
		}
	}
	if maxDiff > 1e-5 {
		t.Fatalf("lazy and eager momentum tables differ by %g", maxDiff)
	}
}

// TestEmptyViews: empty and blank views train without NaN or blow-up.
func TestEmptyViews(t *testing.T) {
	cfg := tinyConfig()
	cfg.Activation = ActivationReLU
	l, _ := NewLearner(cfg)
	b := []Example{{ViewA: "", ViewB: " "}, {ViewA: "a b", ViewB: ""}, {ViewA: "c", ViewB: "c d"}}
	for i := 0; i < 20; i++ {
		st := l.Step(b)
		if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
			t.Fatalf("step %d: loss %g", i, st.Loss)
		}
	}
	for _, p := range l.online.params() {
		for _, v := range p {
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 100 {
				t.Fatalf("weight %g", v)
			}
		}
	}
}
