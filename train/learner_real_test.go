package train

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// realConfig is a small model that trains in seconds under -race.
func realConfig() Config {
	return Config{
		Buckets: 1 << 16, EmbedDim: 16, HiddenDim: 64, OutDim: 32,
		CharNgramMin: 3, CharNgramMax: 4, MaxWords: 48,
		QueueSize: 512, MLMWeight: 0.1, Workers: 2, Seed: 1,
		WarmupSteps: 20, DecaySteps: 1000,
	}
}

// viewRetrieval embeds view A and view B of every example with the current
// encoder and returns the InfoNCE loss (temperature tau) and the accuracy of
// finding each example's view B among all the B views from its view A.
func viewRetrieval(l *Learner, ex []Example, tau float64) (loss, acc float64) {
	var a, b []string
	for _, e := range ex {
		a, b = append(a, e.ViewA), append(b, e.ViewB)
	}
	za, zb := l.Embed(a), l.Embed(b)
	n := len(ex)
	for i := 0; i < n; i++ {
		s := make([]float64, n)
		best, arg := math.Inf(-1), -1
		for j := 0; j < n; j++ {
			var d float64
			for k := range za[i] {
				d += float64(za[i][k]) * float64(zb[j][k])
			}
			s[j] = d / tau
			if s[j] > best {
				best, arg = s[j], j
			}
		}
		var sum float64
		for _, v := range s {
			sum += math.Exp(v - best)
		}
		loss += best + math.Log(sum) - s[i]
		if arg == i {
			acc++
		}
	}
	return loss / float64(n), acc / float64(n)
}

type neardupPair struct {
	Kind  string `json:"kind"`
	Label int    `json:"label"`
	A     struct {
		Text string `json:"text"`
	} `json:"a"`
	B struct {
		Text string `json:"text"`
	} `json:"b"`
}

func readPairs(t testing.TB) (pos, neg [][2]string) {
	t.Helper()
	for _, line := range realtest.Lines(t, realtest.Data(t, "neardup/dev_pairs.jsonl.gz"), 0) {
		var p neardupPair
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Label == 1 && (p.Kind == "template_debian" || p.Kind == "near_fortune"):
			pos = append(pos, [2]string{p.A.Text, p.B.Text})
		case p.Kind == "neg_random":
			neg = append(neg, [2]string{p.A.Text, p.B.Text})
		}
	}
	return pos, neg
}

func meanCos(l *Learner, pairs [][2]string) float64 {
	var a, b []string
	for _, p := range pairs {
		a, b = append(a, p[0]), append(b, p[1])
	}
	za, zb := l.Embed(a), l.Embed(b)
	var s float64
	for i := range za {
		for k := range za[i] {
			s += float64(za[i][k]) * float64(zb[i][k])
		}
	}
	return s / float64(len(za))
}

// TestLearnsOnRealStream trains a few hundred steps on a slice of the real
// stream (views made by word dropout, cropping and span masking) and checks
// that held-out contrastive loss falls, instance-discrimination accuracy
// rises (in training and on held-out records), the health figures are
// sane, and near-duplicate pairs end closer than random pairs, by a wider
// margin than under the untrained encoder.
func TestLearnsOnRealStream(t *testing.T) {
	const batch, steps = 48, 250
	ex, _, _ := realExamples(t, 6400, 1)
	train, held := ex[:6400-512], ex[6400-512:]
	pos, neg := readPairs(t)
	if len(pos) < 500 || len(neg) < 500 {
		t.Fatalf("%d positive and %d random pairs", len(pos), len(neg))
	}
	l, err := NewLearner(realConfig())
	if err != nil {
		t.Fatal(err)
	}
	loss0, acc0 := viewRetrieval(l, held, 0.1)
	pos0, neg0 := meanCos(l, pos), meanCos(l, neg)
	var first, last StepStats
	for s := 0; s < steps; s++ {
		i := (s * batch) % (len(train) - batch)
		st := l.Step(train[i : i+batch])
		if math.IsNaN(st.Loss) {
			t.Fatalf("step %d: NaN loss", s)
		}
		if s < 20 {
			first.Accuracy += st.Accuracy / 20
			first.MLM += st.MLM / 20
		}
		if s >= steps-20 {
			last.Accuracy += st.Accuracy / 20
			last.MLM += st.MLM / 20
		}
	}
	loss1, acc1 := viewRetrieval(l, held, 0.1)
	pos1, neg1 := meanCos(l, pos), meanCos(l, neg)
	h := l.Health()
	t.Logf("held-out view retrieval: loss %.3f -> %.3f, accuracy %.3f -> %.3f", loss0, loss1, acc0, acc1)
	t.Logf("training accuracy (queue %d + in-batch): %.3f -> %.3f; MLM loss %.3f -> %.3f",
		l.Config().QueueSize, first.Accuracy, last.Accuracy, first.MLM, last.MLM)
	t.Logf("near-duplicates: mean cosine %.3f vs random %.3f (gap %.3f); untrained %.3f vs %.3f (gap %.3f)",
		pos1, neg1, pos1-neg1, pos0, neg0, pos0-neg0)
	t.Logf("health: %+v", h)
	if !(loss1 < loss0-0.3) {
		t.Errorf("held-out contrastive loss %.3f -> %.3f did not fall", loss0, loss1)
	}
	if !(acc1 > acc0+0.05) {
		t.Errorf("held-out accuracy %.3f -> %.3f did not rise", acc0, acc1)
	}
	if !(last.Accuracy > first.Accuracy+0.1) {
		t.Errorf("training accuracy %.3f -> %.3f did not rise", first.Accuracy, last.Accuracy)
	}
	if !(last.MLM < first.MLM) {
		t.Errorf("masked-token loss %.3f -> %.3f did not fall", first.MLM, last.MLM)
	}
	if !(pos1 > neg1+0.2) {
		t.Errorf("near-duplicates (%.3f) are not clearly closer than random pairs (%.3f)", pos1, neg1)
	}
	if !(pos1-neg1 > pos0-neg0) {
		t.Errorf("training did not widen the near-duplicate gap: %.3f -> %.3f", pos0-neg0, pos1-neg1)
	}
	if h.Collapsed || h.Samples != l.Config().HealthSample || h.QueueLen != 512 {
		t.Errorf("health %+v", h)
	}
	if d := float64(l.Config().OutDim); h.Std < 0.5/math.Sqrt(d) || h.RankMe < d/4 {
		t.Errorf("embeddings are not spread: std %.4f (1/sqrt(d) = %.4f), RankMe %.1f of %v", h.Std, 1/math.Sqrt(d), h.RankMe, d)
	}
}
