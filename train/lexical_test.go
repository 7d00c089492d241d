package train

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestTerms: the tokens of scikit-learn's default token pattern
// `(?u)\b\w\w+\b` after lower-casing, and the pairs of adjacent tokens.
func TestTerms(t *testing.T) {
	pair := func(a, b string) uint64 {
		return mix64(xxhash.Sum64String(a)*31+xxhash.Sum64String(b)) ^ saltLex
	}
	uni := xxhash.Sum64String
	for _, c := range []struct {
		text string
		want []uint64
	}{
		{"", nil},
		{"a b c", nil},
		{"Hello, World!", []uint64{uni("hello"), uni("world"), pair("hello", "world")}},
		// Single-rune words are no tokens, and a pair skips over them.
		{"ab x cd", []uint64{uni("ab"), uni("cd"), pair("ab", "cd")}},
		// Underscores and digits are word characters; punctuation splits.
		{"snake_case v2.0 libc6-dev", []uint64{uni("snake_case"), uni("v2"), pair("snake_case", "v2"),
			uni("libc6"), pair("v2", "libc6"), uni("dev"), pair("libc6", "dev")}},
		// Unicode letters are lower-cased; other symbols split.
		{"ÉCOLE→Straße", []uint64{uni("école"), uni("straße"), pair("école", "straße")}},
	} {
		got := Terms(c.text, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("Terms(%q) = %x, want %x", c.text, got, c.want)
		}
	}
}

// TestLexiconCounts: every stepped text with Text counts once per term,
// whatever the workers; the counts survive a state round trip and reach
// the encoder.
func TestLexiconCounts(t *testing.T) {
	batches := testBatches(6, 5)
	run := func(workers int) *Learner {
		cfg := tinyConfig()
		cfg.Workers = workers
		l, err := NewLearner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			l.Step(b)
		}
		return l
	}
	l1, l3 := run(1), run(3)
	if !slices.Equal(l1.lex.df, l3.lex.df) {
		t.Fatal("document frequencies depend on the workers")
	}
	want := make([]uint32, tinyConfig().LexBuckets)
	for _, b := range batches {
		for _, e := range b {
			var cols []uint32
			for _, h := range Terms(e.Text, nil) {
				cols = append(cols, lexColumn(h, len(want)))
			}
			slices.Sort(cols)
			for _, c := range slices.Compact(cols) {
				want[c]++
			}
		}
	}
	if !slices.Equal(l1.lex.df, want) || l1.lex.docs.Load() != 30 {
		t.Fatalf("df %v (docs %d), want %v (30)", l1.lex.df, l1.lex.docs.Load(), want)
	}
	blob := mustMarshal(t, l1)
	n, _ := NewLearner(tinyConfig())
	if err := n.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.lex.df, want) || n.lex.docs.Load() != 30 {
		t.Fatal("the lexicon did not survive a state round trip")
	}
	e, err := LoadEncoder(blob)
	if err != nil {
		t.Fatal(err)
	}
	if e.LexDocs() != 30 || !slices.Equal(e.lex.df, want) {
		t.Fatal("LoadEncoder lost the lexicon")
	}
}

// TestEmbedHybrid: the dense part is Embed scaled by cos(atan(w)), the
// lexical part sublinear tf times the stream's idf, scaled by sin; the
// whole vector has unit length.
func TestEmbedHybrid(t *testing.T) {
	l := trainedTiny(t, 4)
	cfg := tinyConfig()
	enc := l.Encoder()
	for _, w := range []float64{0, 0.5, 1, 3} {
		e := enc.WithLexWeight(w)
		texts := []string{"alpha beta alpha gamma", "", "zz"}
		got, err := e.EmbedHybrid(texts, LayerOutput)
		if err != nil {
			t.Fatal(err)
		}
		dense := e.Embed(texts)
		a := math.Atan(w)
		for i, h := range got {
			var ss float64
			for j, v := range h.Dense {
				if math.Abs(float64(v)-float64(dense[i][j])*math.Cos(a)) > 1e-6 {
					t.Fatalf("w %g text %d: dense part %v, want %v x %g", w, i, h.Dense, dense[i], math.Cos(a))
				}
				ss += float64(v) * float64(v)
			}
			for _, v := range h.Lex.Val {
				ss += float64(v) * float64(v)
			}
			wantNorm := 1.0
			if len(h.Lex.Idx) == 0 {
				wantNorm = math.Cos(a) * math.Cos(a)
			}
			if math.Abs(ss-wantNorm) > 1e-4 {
				t.Errorf("w %g text %d: squared norm %g, want %g", w, i, ss, wantNorm)
			}
		}
		// Text 0 by hand: alpha x2, beta, gamma and three pairs.
		n := float64(l.lex.docs.Load())
		idf := func(c uint32) float64 { return math.Log((1+n)/(1+float64(l.lex.df[c]))) + 1 }
		tf := map[uint32]float64{}
		for _, h := range Terms(texts[0], nil) {
			tf[lexColumn(h, cfg.LexBuckets)]++
		}
		var ss float64
		want := map[int32]float64{}
		for c, f := range tf {
			v := (1 + math.Log(f)) * idf(c)
			want[int32(c)] = v
			ss += v * v
		}
		if len(got[0].Lex.Idx) != len(want) {
			t.Fatalf("w %g: %d lexical columns, want %d", w, len(got[0].Lex.Idx), len(want))
		}
		for j, c := range got[0].Lex.Idx {
			if j > 0 && c <= got[0].Lex.Idx[j-1] {
				t.Fatal("lexical columns not ascending")
			}
			if v := want[c] / math.Sqrt(ss) * math.Sin(a); math.Abs(float64(got[0].Lex.Val[j])-v) > 1e-6 {
				t.Errorf("w %g column %d: %v, want %v", w, c, got[0].Lex.Val[j], v)
			}
		}
	}
}

// TestStateV1Migrated: a state written before the lexical channel (format
// version 1; testdata/state-v1.bin) still loads, with the same encoder and
// empty term statistics, and is written back as the current version.
func TestStateV1Migrated(t *testing.T) {
	blob, err := os.ReadFile("testdata/state-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Buckets: 512, EmbedDim: 8, HiddenDim: 16, OutDim: 8, QueueSize: 16, HealthSample: 8, MLMBuckets: 64, Seed: 7, Workers: 1}
	// Written by that build: the embedding of "the cat sat" after 3 steps.
	want := []float32{-0.4342231, -0.006268552, -0.077204555, -0.18036954, -0.48215964, -0.674645, 0.27907196, -0.08609516}
	e, err := LoadEncoder(blob)
	if err != nil {
		t.Fatal(err)
	}
	// Up to the last bits: the products' kernels differ between builds.
	near := func(a, b []float32) bool {
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-5 {
				return false
			}
		}
		return len(a) == len(b)
	}
	if got := e.Embed([]string{"the cat sat"})[0]; !near(got, want) {
		t.Fatalf("encoder of a version-1 state embeds %v, want %v", got, want)
	}
	if e.LexDocs() != 0 || e.Config().LexBuckets != DefaultLexBuckets {
		t.Fatalf("lexicon of a version-1 state: %d docs, %d buckets", e.LexDocs(), e.Config().LexBuckets)
	}
	if h, _ := e.EmbedHybrid([]string{"the cat sat"}, LayerBagHidden); len(h) != 1 || len(h[0].Lex.Idx) != 5 || len(h[0].Dense) != 8+16 {
		t.Fatalf("hybrid of a version-1 encoder: %+v, want 5 lexical columns and 24 dense", h)
	}
	l, err := NewLearner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	if l.Steps() != 3 || !near(l.Embed([]string{"the cat sat"})[0], want) {
		t.Fatal("learner of a version-1 state differs")
	}
	out := mustMarshal(t, l)
	if out[4] != stateVersion || bytes.Equal(out, blob) {
		t.Fatalf("re-encoded as version %d", out[4])
	}
	// A state of a later format is refused, naming both versions.
	later := append([]byte(nil), out...)
	later[4] = stateVersion + 1
	later = recrcState(later)
	if err := l.UnmarshalBinary(later); err == nil || !bytes.Contains([]byte(err.Error()), []byte("format version 3, this build reads 1 to 2")) {
		t.Fatalf("later version: %v", err)
	}
}

// recrcState rewrites a state's checksum after an edit.
func recrcState(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}
