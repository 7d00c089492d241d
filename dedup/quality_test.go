package dedup

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// devPairs is the graded near-duplicate set: every distinct text once, in
// order of first appearance, and the pairs as indices into it.
type devPairs struct {
	texts []string
	pairs []devPair
}

type devPair struct {
	kind    string
	label   int
	jaccard float64
	a, b    int
}

var devPairsCache *devPairs

func loadDevPairs(t testing.TB) *devPairs {
	t.Helper()
	if devPairsCache != nil {
		return devPairsCache
	}
	d := &devPairs{}
	idx := map[string]int{}
	add := func(s string) int {
		i, ok := idx[s]
		if !ok {
			i = len(d.texts)
			idx[s] = i
			d.texts = append(d.texts, s)
		}
		return i
	}
	for _, line := range realtest.Lines(t, realtest.Data(t, "neardup/dev_pairs.jsonl.gz"), 0) {
		var p struct {
			Kind    string
			Label   int
			Jaccard float64
			A, B    struct{ Text string }
		}
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatal(err)
		}
		d.pairs = append(d.pairs, devPair{kind: p.Kind, label: p.Label, jaccard: p.Jaccard, a: add(p.A.Text), b: add(p.B.Text)})
	}
	devPairsCache = d
	return d
}

// clusterOf feeds texts[order[i]] as offset i and returns the cluster id of
// every text (by text index).
func clusterOf(t testing.TB, cfg Config, texts []string, order []int) []RecordID {
	t.Helper()
	ix, err := NewIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]RecordID, len(texts))
	for off, i := range order {
		out[i] = ix.Add(RecordID{Topic: "dev", Offset: int64(off)}, texts[i]).ClusterID
	}
	return out
}

type kindScore struct {
	kind          string
	label         int
	pairs, joined int
}

func (k kindScore) rate() float64 { return float64(k.joined) / float64(k.pairs) }

var kindOrder = []string{"exact_debian", "exact_crossfile", "template_debian", "near_fortune",
	"neg_debian_lowJ", "neg_same_category", "neg_random"}

// scorePairs returns, per kind, how many pairs share a cluster.
func scorePairs(d *devPairs, cl []RecordID) []kindScore {
	by := map[string]*kindScore{}
	for _, p := range d.pairs {
		k := by[p.kind]
		if k == nil {
			k = &kindScore{kind: p.kind, label: p.label}
			by[p.kind] = k
		}
		k.pairs++
		if cl[p.a] == cl[p.b] {
			k.joined++
		}
	}
	var out []kindScore
	for _, name := range kindOrder {
		if k := by[name]; k != nil {
			out = append(out, *k)
		}
	}
	return out
}

func formatScores(s []kindScore) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| kind | label | pairs | same cluster | recall / false-positive rate |\n|---|---|---|---|---|\n")
	for _, k := range s {
		what := "recall"
		if k.label == 0 {
			what = "FP rate"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s %.4f |\n", k.kind, k.label, k.pairs, k.joined, what, k.rate())
	}
	return b.String()
}

func identity(n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	return o
}

// TestQualityDevPairs feeds every distinct text of the graded pairs through
// a fresh default index, in order of first appearance, and scores pairs by
// cluster id equality against the targets of issue 3.
func TestQualityDevPairs(t *testing.T) {
	d := loadDevPairs(t)
	scores := scorePairs(d, clusterOf(t, Config{}, d.texts, identity(len(d.texts))))
	t.Logf("default config, %d texts, %d pairs:\n%s", len(d.texts), len(d.pairs), formatScores(scores))
	for _, k := range scores {
		r := k.rate()
		switch {
		case strings.HasPrefix(k.kind, "exact_") && r < 1:
			t.Errorf("%s: recall %.4f, want 1", k.kind, r)
		case k.label == 1 && r < 0.95:
			t.Errorf("%s: recall %.4f, want >= 0.95", k.kind, r)
		case k.label == 0 && r > 0.02:
			t.Errorf("%s: false-positive rate %.4f, want <= 0.02", k.kind, r)
		}
	}
}
