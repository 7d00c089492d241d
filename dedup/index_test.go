package dedup

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// refJaccard is the Jaccard similarity of the word shingle sets of two
// texts, computed the slow and obvious way.
func refJaccard(cfg Config, a, b string) float64 {
	set := func(s string) map[string]bool {
		w := strings.Fields(string(Normalize(nil, s, cfg.Punctuation)))
		out := map[string]bool{}
		if len(w) < cfg.ShingleWords {
			out[strings.Join(w, " ")] = true
			return out
		}
		for i := 0; i+cfg.ShingleWords <= len(w); i++ {
			out[strings.Join(w[i:i+cfg.ShingleWords], " ")] = true
		}
		return out
	}
	sa, sb := set(a), set(b)
	both := 0
	for s := range sa {
		if sb[s] {
			both++
		}
	}
	return float64(both) / float64(len(sa)+len(sb)-both)
}

func TestDecisions(t *testing.T) {
	ix := mustIndex(t, Config{})
	id := func(off int64) RecordID { return RecordID{Topic: "records", Partition: 1, Offset: off} }
	const (
		fox     = "The quick brown fox jumps over the lazy dog, near the river bank, every single morning."
		foxCase = "  THE QUICK BROWN FOX jumps over the lazy dog near the river bank every single morning!! "
		foxNear = "The quick brown fox jumps over the lazy dog, near the river bank, every single evening."
		other   = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
	)
	near := refJaccard(DefaultConfig(), fox, foxNear)
	if near < DefaultThreshold || near >= 1 {
		t.Fatalf("test texts: Jaccard %v", near)
	}
	for i, c := range []struct {
		text string
		want Result
	}{
		{fox, Result{Decision: Unique, ClusterID: id(0)}},
		{foxCase, Result{Decision: ExactDuplicate, ClusterID: id(0), DupOf: id(0), Similarity: 1}},
		{foxNear, Result{Decision: NearDuplicate, ClusterID: id(0), DupOf: id(0), Similarity: near}},
		// An exact copy of a near duplicate names that copy, in the survivor's cluster.
		{foxNear, Result{Decision: ExactDuplicate, ClusterID: id(0), DupOf: id(2), Similarity: 1}},
		{other, Result{Decision: Unique, ClusterID: id(4)}},
		// Texts with no words are exact duplicates of each other.
		{"", Result{Decision: Unique, ClusterID: id(5)}},
		{" !!! ... ", Result{Decision: ExactDuplicate, ClusterID: id(5), DupOf: id(5), Similarity: 1}},
		// Shorter than a shingle: one shingle, the whole text.
		{"hello world", Result{Decision: Unique, ClusterID: id(7)}},
		{"Hello, World!", Result{Decision: ExactDuplicate, ClusterID: id(7), DupOf: id(7), Similarity: 1}},
		{"hello there", Result{Decision: Unique, ClusterID: id(9)}},
		// The same text on another topic is the same text.
		{other, Result{Decision: ExactDuplicate, ClusterID: id(4), DupOf: id(4), Similarity: 1}},
	} {
		if got := ix.Add(id(int64(i)), c.text); got != c.want {
			t.Errorf("record %d %.30q: got %+v, want %+v", i, c.text, got, c.want)
		}
	}
	s := ix.Stats()
	if s.Added != 11 || s.Unique != 5 || s.Exact != 5 || s.Near != 1 || s.Records != 6 || s.Clusters != 4 {
		t.Errorf("stats %+v", s)
	}
	if s.Bytes <= 0 || s.BytesPerRecord <= 0 {
		t.Errorf("stats report no memory: %+v", s)
	}
}

// TestSimilarityIsJaccard checks, on the graded pairs, that the similarity
// of a near duplicate is the exact Jaccard similarity of its word shingles
// (both texts have fewer than SketchSize of them) and that no pair under the
// threshold is judged a near duplicate.
func TestSimilarityIsJaccard(t *testing.T) {
	d := loadDevPairs(t)
	cfg := DefaultConfig()
	checked := 0
	for i, p := range d.pairs {
		ix := mustIndex(t, cfg)
		ix.Add(RecordID{"a", 0, int64(i)}, d.texts[p.a])
		r := ix.Add(RecordID{"b", 0, int64(i)}, d.texts[p.b])
		want := refJaccard(cfg, d.texts[p.a], d.texts[p.b])
		switch r.Decision {
		case NearDuplicate:
			checked++
			if math.Abs(r.Similarity-want) > 1e-9 && ix.sig.Shingles < cfg.SketchSize {
				t.Errorf("pair %d (%s): similarity %v, Jaccard %v", i, p.kind, r.Similarity, want)
			}
			if want < cfg.Threshold-0.05 {
				t.Errorf("pair %d (%s): near duplicate at Jaccard %v", i, p.kind, want)
			}
		case Unique:
			if want >= 0.7 {
				t.Errorf("pair %d (%s): missed at Jaccard %v", i, p.kind, want)
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d near duplicates checked", checked)
	}
}

func TestEviction(t *testing.T) {
	recs := devRecords(t)
	ix := mustIndex(t, small)
	var peak int64
	for i, r := range recs {
		ix.Add(r.id, r.text)
		if i%64 != 0 {
			continue
		}
		s := ix.Stats()
		if s.Records > int(small.MaxRecords) || s.Generations > small.Generations {
			t.Fatalf("after %d records: %+v exceeds the bound", i+1, s)
		}
		if i > len(recs)/2 {
			peak = max(peak, s.Bytes)
		}
	}
	s := ix.Stats()
	if s.Evicted == 0 || int64(s.Records)+s.Evicted != s.Unique+s.Near {
		t.Errorf("stats %+v: evicted plus remembered should be every distinct text", s)
	}
	t.Logf("bounded index: %+v; peak %d bytes in the second half", s, peak)
	// The oldest text is forgotten: it starts a new cluster; a recent one is not.
	first, last := recs[0], recs[len(recs)-1]
	if r := ix.Add(RecordID{"again", 0, 1}, first.text); r.Decision != Unique {
		t.Errorf("a forgotten text: %+v", r)
	}
	if r := ix.Add(RecordID{"again", 0, 2}, last.text); r.Decision != ExactDuplicate || r.DupOf != last.id {
		t.Errorf("a remembered text: %+v", r)
	}
	// A smaller bound applies as soon as the state is loaded.
	state := mustMarshal(t, ix)
	smaller := mustIndex(t, Config{MaxRecords: 2048, Generations: 2})
	if err := smaller.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if s := smaller.Stats(); s.Generations > 2 || s.Evicted <= ix.Stats().Evicted {
		t.Errorf("after loading under a smaller bound: %+v", s)
	}
	smaller.Add(RecordID{"again", 0, 3}, "a new text after the bound shrank")
}

func TestZeroIndex(t *testing.T) {
	var ix Index
	if r := ix.Add(RecordID{"t", 0, 0}, "some text"); r.Decision != Unique {
		t.Errorf("%+v", r)
	}
	if c := ix.Config(); c != DefaultConfig() {
		t.Errorf("zero Index config %+v", c)
	}
}

func TestAddSignatureOtherConfig(t *testing.T) {
	ix := mustIndex(t, Config{})
	s, err := NewSigner(Config{ShingleWords: 2})
	if err != nil {
		t.Fatal(err)
	}
	var sig Signature
	s.Sign(&sig, "some text to sign")
	defer func() {
		if recover() == nil {
			t.Error("AddSignature accepted a signature made with another config")
		}
	}()
	ix.AddSignature(RecordID{"t", 0, 0}, &sig)
}

func TestNoAllocs(t *testing.T) {
	ix := mustIndex(t, Config{})
	text := "A record that the index has seen before, in another case and spacing."
	ix.Add(RecordID{"t", 0, 0}, text)
	ix.Add(RecordID{"t", 0, 1}, "Ｆｕｌｌ-width and “quotes” need NFKC, and are seen twice")
	if a := testing.AllocsPerRun(100, func() { ix.Add(RecordID{"t", 0, 2}, text) }); a != 0 {
		t.Errorf("%v allocations per exact duplicate", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		ix.Add(RecordID{"t", 0, 3}, "Ｆｕｌｌ-width and “quotes” need NFKC, and are seen twice")
	}); a != 0 {
		t.Errorf("%v allocations per non-ASCII exact duplicate", a)
	}
	s := ix.Signer()
	var sig Signature
	s.Sign(&sig, text)
	if a := testing.AllocsPerRun(100, func() { s.Sign(&sig, text) }); a != 0 {
		t.Errorf("%v allocations per signature", a)
	}
}

func TestRecordID(t *testing.T) {
	for _, id := range []RecordID{{"records", 0, 0}, {"my.topic-v2_x", 12, 1 << 40}, {"", 0, 0}} {
		s := id.String()
		back, err := ParseRecordID(s)
		if err != nil || back != id {
			t.Errorf("%+v -> %q -> %+v, %v", id, s, back, err)
		}
	}
	if s := (RecordID{"records", 3, 42}).String(); s != "records/3/42" {
		t.Errorf("String: %q", s)
	}
	if s := (RecordID{}).String(); s != "" {
		t.Errorf("zero RecordID: %q", s)
	}
	for _, bad := range []string{"records", "/", "records/3", "records/x/1", "records/1/99999999999999999999"} {
		if _, err := ParseRecordID(bad); !errors.Is(err, ErrRecordID) {
			t.Errorf("ParseRecordID(%q): %v", bad, err)
		}
	}
	for d, want := range map[Decision]string{Unique: "unique", ExactDuplicate: "exact_duplicate", NearDuplicate: "near_duplicate", 0: "Decision(0)"} {
		if d.String() != want {
			t.Errorf("%d: %q", d, d.String())
		}
	}
}

// TestHugeText: a 10 MB record (bad input the stage must survive) is
// deduplicated like any other, and its scratch is not kept afterwards.
func TestHugeText(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 10<<20; i++ {
		fmt.Fprintf(&b, "word%d, ", i%100000)
	}
	huge := b.String()
	ix := mustIndex(t, Config{})
	if r := ix.Add(RecordID{"t", 0, 0}, huge); r.Decision != Unique {
		t.Fatalf("%+v", r)
	}
	if r := ix.Add(RecordID{"t", 0, 1}, huge+" tail"); r.Decision != NearDuplicate || r.Similarity < 0.9 {
		t.Errorf("huge near duplicate: %+v", r)
	}
	ix.Add(RecordID{"t", 0, 2}, "a small record after it")
	if s := ix.signer; cap(s.text) > 16*keepScratch || cap(s.words) > keepScratch || len(s.set.slots) > 4*keepScratch {
		t.Errorf("the signer keeps %d, %d and %d scratch after a small record", cap(s.text), cap(s.words), len(s.set.slots))
	}
	if s := ix.Stats(); s.Bytes > 1<<20 {
		t.Errorf("index holds %d bytes after two huge records", s.Bytes)
	}
}
