package dedup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestSegmentsAndRestarts feeds the same records in segments of random
// sizes, saving and loading the index between segments as the curate stage
// does at every commit, and signing on worker goroutines: every result must
// be that of one uninterrupted index.
func TestSegmentsAndRestarts(t *testing.T) {
	recs := devRecords(t)
	for _, cfg := range []Config{{}, small} {
		want := feed(mustIndex(t, cfg), recs)
		for seed := range uint64(3) {
			rng := rand.New(rand.NewPCG(seed, 7))
			ix := mustIndex(t, cfg)
			var got []Result
			for start := 0; start < len(recs); {
				end := min(len(recs), start+1+rng.IntN(2000))
				got = append(got, addParallel(t, ix, recs[start:end], 1+int(seed))...)
				state := mustMarshal(t, ix)
				ix = mustIndex(t, cfg)
				if err := ix.UnmarshalBinary(state); err != nil {
					t.Fatal(err)
				}
				start = end
			}
			diffResults(t, recs, want, got)
		}
	}
}

// addParallel signs recs on workers goroutines and adds the signatures in
// order.
func addParallel(t *testing.T, ix *Index, recs []record, workers int) []Result {
	sigs := make([]Signature, len(recs))
	var wg sync.WaitGroup
	for w := range workers {
		s := ix.Signer()
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				s.Sign(&sigs[i], recs[i].text)
			}
		})
	}
	wg.Wait()
	out := make([]Result, len(recs))
	for i := range recs {
		out[i] = ix.AddSignature(recs[i].id, &sigs[i])
	}
	return out
}

// matchGraph is the relation the index clusters by, over the distinct
// normal forms of texts: an edge joins two forms that share an LSH key and
// whose similarity reaches the threshold.
type matchGraph struct {
	node  []int // text -> node (distinct normal form)
	edges map[[2]int]bool
	comp  []int // node -> connected component
	clean []bool
}

func newMatchGraph(t *testing.T, cfg Config, texts []string) *matchGraph {
	cfg.SetDefaults()
	s := newSigner(cfg)
	g := &matchGraph{node: make([]int, len(texts)), edges: map[[2]int]bool{}}
	byKey := map[uint64]int{}
	var sigs []*Signature
	for i, text := range texts {
		sig := &Signature{}
		s.Sign(sig, text)
		n, ok := byKey[sig.Exact]
		if !ok {
			n = len(sigs)
			byKey[sig.Exact] = n
			sigs = append(sigs, sig)
		}
		g.node[i] = n
	}
	buckets := map[uint32][]int{}
	for n, sig := range sigs {
		for _, k := range sig.bands {
			if b := buckets[k]; len(b) == 0 || b[len(b)-1] != n {
				buckets[k] = append(b, n)
			}
		}
	}
	var set u32set
	for _, b := range buckets {
		for i, x := range b {
			q := newQuery(sigs[x].sketch, cfg.SketchSize, &set)
			for _, y := range b[i+1:] {
				e := [2]int{min(x, y), max(x, y)}
				if _, done := g.edges[e]; !done {
					g.edges[e] = q.similarity(sigs[y].sketch, 0) >= cfg.Threshold
				}
			}
		}
	}
	parent := make([]int, len(sigs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	size := map[int]int{}
	for e, ok := range g.edges {
		if ok {
			parent[find(e[0])] = find(e[1])
		}
	}
	g.comp = make([]int, len(sigs))
	for n := range sigs {
		g.comp[n] = find(n)
		size[g.comp[n]]++
	}
	edgesIn := map[int]int{}
	for e, ok := range g.edges {
		if ok {
			edgesIn[g.comp[e[0]]]++
		}
	}
	g.clean = make([]bool, len(sigs))
	for n := range sigs {
		k := size[g.comp[n]]
		g.clean[n] = edgesIn[g.comp[n]] == k*(k-1)/2
	}
	return g
}

// TestOrderAndPartitions feeds the same texts in other orders: reversed,
// shuffled, and as if produced to 3 or 8 partitions and read partition by
// partition. Exact duplicates, and every group of near duplicates that is a
// clique of the match relation, must form the same clusters whatever the
// order; each cluster is named after its first record (the survivor).
// Groups joined by chains (A~B, B~C, but not A~C) are order dependent for
// any clustering that never renames an emitted cluster: the test reports
// how many there are and how many of their pairs changed.
func TestOrderAndPartitions(t *testing.T) {
	d := loadDevPairs(t)
	cfg := Config{MaxCandidates: 512}
	g := newMatchGraph(t, cfg, d.texts)
	n := len(d.texts)
	orders := map[string][]int{"given": identity(n)}
	rev := identity(n)
	slices.Reverse(rev)
	orders["reversed"] = rev
	for seed := range uint64(3) {
		o := identity(n)
		rand.New(rand.NewPCG(seed, 1)).Shuffle(n, func(i, j int) { o[i], o[j] = o[j], o[i] })
		orders[fmt.Sprintf("shuffled-%d", seed)] = o
	}
	for _, p := range []int{3, 8} {
		var o []int
		for part := range p {
			for i := part; i < n; i += p {
				o = append(o, i)
			}
		}
		orders[fmt.Sprintf("partitions-%d", p)] = o
	}

	unclean := 0
	for i := range d.texts {
		if !g.clean[g.node[i]] {
			unclean++
		}
	}
	t.Logf("%d texts, %d distinct normal forms; %d texts (%.2f%%) are in chained groups",
		n, len(g.comp), unclean, 100*float64(unclean)/float64(n))
	if unclean > n/20 {
		t.Errorf("%d of %d texts in chained groups: the threshold chains too much", unclean, n)
	}

	base := clusterOf(t, cfg, d.texts, orders["given"])
	for name, o := range orders {
		cl := clusterOf(t, cfg, d.texts, o)
		pos := make([]int, n) // text -> position in this order
		for p, i := range o {
			pos[i] = p
		}
		// The survivor is the first record of its cluster.
		first := map[RecordID]int{}
		for p, i := range o {
			if _, ok := first[cl[i]]; !ok {
				first[cl[i]] = p
				if cl[i].Offset != int64(p) {
					t.Errorf("%s: the first record of cluster %v is at offset %d", name, cl[i], p)
				}
			}
		}
		// Same partition of the clean groups: text i and j share a cluster
		// iff they are in one component.
		rep := map[int]RecordID{} // component -> cluster
		owner := map[RecordID]int{}
		changed, pairs := 0, 0
		for i := range d.texts {
			nd := g.node[i]
			c := g.comp[nd]
			if !g.clean[nd] {
				continue
			}
			if r, ok := rep[c]; ok && r != cl[i] {
				t.Errorf("%s: text %d is in cluster %v, its clean group in %v", name, i, cl[i], r)
			}
			rep[c] = cl[i]
			if o, ok := owner[cl[i]]; ok && o != c {
				t.Errorf("%s: cluster %v holds two clean groups", name, cl[i])
			}
			owner[cl[i]] = c
		}
		for _, p := range d.pairs {
			if !g.clean[g.node[p.a]] || !g.clean[g.node[p.b]] {
				pairs++
				if (cl[p.a] == cl[p.b]) != (base[p.a] == base[p.b]) {
					changed++
				}
			}
		}
		scores := scorePairs(d, cl)
		line := ""
		for _, k := range scores {
			line += fmt.Sprintf(" %s=%.4f", k.kind, k.rate())
			if k.label == 1 && k.rate() < 0.95 || k.label == 0 && k.rate() > 0.02 {
				t.Errorf("%s: %s at %.4f misses its target", name, k.kind, k.rate())
			}
		}
		t.Logf("%-13s scored pairs touching chained groups: %d, same-cluster status changed vs given order: %d;%s", name, pairs, changed, line)
	}
}
