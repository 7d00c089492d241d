package train

import (
	"slices"
	"testing"
)

func TestFeaturizer(t *testing.T) {
	c := Config{Buckets: 1 << 20}
	c.SetDefaults()
	f := newFeaturizer(&c)
	ids := f.ids("The  cat\tsat", nil)
	// Words "the" (5 runes with < >: 3+2+1 char n-grams of 3..5), "cat" (6),
	// "sat" (6), then 3 unigrams and 2 bigrams.
	if want := 6 + 6 + 6 + 3 + 2; len(ids) != want {
		t.Fatalf("%d ids, want %d", len(ids), want)
	}
	if !slices.Equal(ids, f.ids("the cat sat", nil)) {
		t.Fatal("case or spacing changes the ids")
	}
	c.KeepCase = true
	if slices.Equal(newFeaturizer(&c).ids("The cat sat", nil), ids) {
		t.Fatal("keep_case has no effect")
	}
	if got := f.ids(" \n ", nil); len(got) != 0 {
		t.Fatalf("blank text: %v", got)
	}
	// Unicode words: n-grams count runes, not bytes.
	if got := f.ids("ñé", nil); len(got) != 2+1+1 {
		t.Fatalf("unicode word: %d ids", len(got))
	}
	// max_words bounds the work.
	c = Config{MaxWords: 2}
	c.SetDefaults()
	if got, want := len(newFeaturizer(&c).ids("a b c d", nil)), len(f.ids("a b", nil)); got != want {
		t.Fatalf("max_words 2: %d ids, want %d", got, want)
	}
	for _, id := range ids {
		if int(id) >= 1<<20 {
			t.Fatalf("id %d out of range", id)
		}
	}
	if m := f.mlmIDs([]string{"Cat", "two words"}, nil); len(m) != 3 || m[0] != f.mlmIDs([]string{"cat"}, nil)[0] {
		t.Fatalf("mlm ids %v", m)
	}
}
