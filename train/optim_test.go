package train

import (
	"math"
	"testing"
)

func TestLRSchedule(t *testing.T) {
	c := Config{WarmupSteps: 10, DecaySteps: 100, MinLRRatio: 0.1, Decay: DecayCosine}
	for _, tc := range []struct {
		decay string
		t     int64
		want  float64
	}{
		{DecayCosine, 1, 0.1}, {DecayCosine, 5, 0.5}, {DecayCosine, 10, 1},
		{DecayCosine, 60, 0.1 + 0.9*0.5}, {DecayCosine, 110, 0.1}, {DecayCosine, 1_000_000, 0.1},
		{DecayLinear, 60, 0.1 + 0.9*0.5}, {DecayLinear, 35, 0.1 + 0.9*0.75},
		{DecayNone, 500, 1},
	} {
		c.Decay = tc.decay
		if got := c.lrFactor(tc.t); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s at %d: %g, want %g", tc.decay, tc.t, got, tc.want)
		}
	}
}

// TestAdamMatchesReference compares one parameter's trajectory with a
// float64 reference implementation of Adam with bias correction and
// decoupled weight decay.
func TestAdamMatchesReference(t *testing.T) {
	c := Config{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, WeightDecay: 0.01}
	m := newMLP(1, 1, 1, false)
	a := adam{m: newMLPGrads(m), v: newMLPGrads(m)}
	p := m.params()
	p[0][0] = 0.5
	g := newMLPGrads(m)
	x, mm, vv := 0.5, 0.0, 0.0
	for step := int64(1); step <= 20; step++ {
		grad := math.Sin(float64(step)) + 2*x
		g[0][0] = float32(grad)
		a.update(p, &g, step, 0.01, &c)
		mm = 0.9*mm + 0.1*grad
		vv = 0.999*vv + 0.001*grad*grad
		mh, vh := mm/(1-math.Pow(0.9, float64(step))), vv/(1-math.Pow(0.999, float64(step)))
		x -= 0.01*mh/(math.Sqrt(vh)+1e-8) + 0.01*0.01*x
		if math.Abs(float64(p[0][0])-x) > 1e-5 {
			t.Fatalf("step %d: %g, reference %g", step, p[0][0], x)
		}
		if g[0][0] != 0 {
			t.Fatal("gradient not cleared")
		}
	}
}

func TestRowUpdate(t *testing.T) {
	w := []float32{1, 1}
	g := []float32{0.5, -2}
	acc := []float32{0, 0}
	rowUpdate(w, g, acc, 0.1, 1e-8)
	// First Adagrad step moves each weight by lr against its sign.
	if math.Abs(float64(w[0])-0.9) > 1e-6 || math.Abs(float64(w[1])-1.1) > 1e-6 || acc[1] != 4 || g[0] != 0 {
		t.Fatalf("adagrad: w %v acc %v g %v", w, acc, g)
	}
	w, g = []float32{1}, []float32{0.5}
	rowUpdate(w, g, nil, 0.1, 1e-8)
	if math.Abs(float64(w[0])-0.95) > 1e-6 {
		t.Fatalf("sgd: %v", w)
	}
}

// TestGradientAccumulation: AccumSteps micro-batches update once, with the
// mean gradient: two micro-batches of the same examples equal one update
// on one of them (the queue and MLM sampling aside, so both are off).
func TestGradientAccumulation(t *testing.T) {
	cfg := tinyConfig()
	cfg.QueueSize, cfg.MLMWeight = -1, 0
	one, _ := NewLearner(cfg)
	cfg.AccumSteps = 2
	two, _ := NewLearner(cfg)
	b := testBatches(1, 5)[0]
	if st := two.Step(b); st.Updated || st.Step != 0 {
		t.Fatalf("first micro-batch: %+v", st)
	}
	if st := two.Step(b); !st.Updated || st.Step != 1 {
		t.Fatalf("second micro-batch: %+v", st)
	}
	one.Step(b)
	var maxDiff float64
	for k, p := range one.online.params() {
		for i, v := range p {
			maxDiff = max(maxDiff, math.Abs(float64(v-two.online.params()[k][i])))
		}
	}
	for i, v := range one.emb {
		maxDiff = max(maxDiff, math.Abs(float64(v-two.emb[i])))
	}
	if maxDiff > 1e-6 {
		t.Fatalf("accumulated update differs by %g", maxDiff)
	}
}
