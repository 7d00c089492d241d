package curate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"slices"
	"testing"
)

// TestTargetGolden works the similarity out by hand on one-word texts, each
// a single feature (no bigram). With B = 16 buckets and add-one smoothing,
// p(b) = (count+1)/(total+16).
func TestTargetGolden(t *testing.T) {
	tg := NewTarget(16)
	bx, by := tg.bucket(AppendFeatures(nil, "x")[0]), tg.bucket(AppendFeatures(nil, "y")[0])
	if bx == by {
		t.Fatalf("x and y share bucket %d; pick other words", bx)
	}
	// Nothing seen, no target: ln p_raw + ln B = ln(1/16) + ln 16 = 0.
	if got := tg.Similarity("x"); !near(got, 0) {
		t.Errorf("empty model: %v, want 0", got)
	}
	// Stream-as-target: after observing "x" once, raw total 1:
	// x: ln((1+1)/(1+16)) + ln 16 = ln(32/17) = 0.632523
	// y: ln((0+1)/(1+16)) + ln 16 = ln(16/17) = -0.060625
	tg.Observe("x")
	if got := tg.Similarity("x"); !near(got, math.Log(32.0/17)) {
		t.Errorf("typicality of x: %v, want ln(32/17) = %v", got, math.Log(32.0/17))
	}
	if got := tg.Similarity("y"); !near(got, math.Log(16.0/17)) {
		t.Errorf("typicality of y: %v, want ln(16/17) = %v", got, math.Log(16.0/17))
	}
	// A text without words has no features: 0.
	if got := tg.Similarity(" \n "); got != 0 {
		t.Errorf("no words: %v, want 0", got)
	}

	// With a target sample of "x" and nothing observed:
	// x: ln p_t - ln p_raw = ln(2/17) - ln(1/16) = ln(32/17) = 0.632523
	// y: ln(1/17) - ln(1/16) = ln(16/17) = -0.060625
	tg = NewTarget(16)
	tg.FitTarget([]string{"x"})
	if got := tg.Similarity("x"); !near(got, math.Log(32.0/17)) {
		t.Errorf("target x, x: %v, want %v", got, math.Log(32.0/17))
	}
	if got := tg.Similarity("y"); !near(got, math.Log(16.0/17)) {
		t.Errorf("target x, y: %v, want %v", got, math.Log(16.0/17))
	}
	// After observing "x" three times the stream is all x:
	// x: ln(2/17) - ln(4/19) = ln(38/68) = -0.582053
	// y: ln(1/17) - ln(1/19) = ln(19/17) = 0.111226
	for range 3 {
		tg.Observe("x")
	}
	if got := tg.Similarity("x"); !near(got, math.Log(38.0/68)) {
		t.Errorf("x after x x x: %v, want %v", got, math.Log(38.0/68))
	}
	if got := tg.Similarity("y"); !near(got, math.Log(19.0/17)) {
		t.Errorf("y after x x x: %v, want %v", got, math.Log(19.0/17))
	}
	// The mean over features: "x y" has x, y and the bigram (x y); its
	// similarity is the mean of the three weights.
	feats := AppendFeatures(nil, "x y")
	if len(feats) != 3 {
		t.Fatalf("features of \"x y\": %d, want 3", len(feats))
	}
	var sum float64
	for _, f := range feats {
		sum += float64(tg.SimilarityFeatures([]uint64{f}))
	}
	if got := tg.Similarity("x y"); !near(got, sum/3) {
		t.Errorf("x y: %v, want the mean of its features' weights %v", got, sum/3)
	}
}

func TestTargetBuckets(t *testing.T) {
	for _, c := range []struct{ in, want int }{
		{0, DefaultTargetBuckets}, {1, MinTargetBuckets}, {16, 16}, {1000, 1024}, {1 << 18, 1 << 18}, {1 << 30, MaxTargetBuckets}, {-5, MinTargetBuckets},
	} {
		if got := NewTarget(c.in).Buckets(); got != c.want {
			t.Errorf("NewTarget(%d).Buckets() = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestTargetAllocs(t *testing.T) {
	tg := NewTarget(1 << 12)
	tg.FitTarget([]string{"the cat sat on the mat"})
	text := "the dog sat on the log and the cat watched"
	tg.Observe(text)
	tg.Similarity(text)
	if n := testing.AllocsPerRun(100, func() {
		tg.Similarity(text)
		tg.Observe(text)
	}); n != 0 {
		t.Errorf("%v allocations per Similarity+Observe, want 0", n)
	}
}

func TestTargetMarshalRoundTrip(t *testing.T) {
	texts := []string{"in the beginning god created the heavens and the earth", "apt-get install the package", "x"}
	for _, fitted := range []bool{false, true} {
		tg := NewTarget(64)
		if fitted {
			tg.FitTargetSeq(slices.Values(texts[:1]))
		}
		for _, s := range texts {
			tg.Observe(s)
		}
		data, err := tg.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Target
		if err := back.UnmarshalBinary(data); err != nil {
			t.Fatalf("fitted=%v: %v", fitted, err)
		}
		if back.Fitted() != fitted || back.Buckets() != 64 || back.Observed() != tg.Observed() {
			t.Errorf("fitted=%v: decoded fitted=%v buckets=%d observed=%d", fitted, back.Fitted(), back.Buckets(), back.Observed())
		}
		for _, s := range append(texts, "something else entirely") {
			if a, b := tg.Similarity(s), back.Similarity(s); a != b {
				t.Errorf("fitted=%v %q: similarity %v before, %v after", fitted, s, a, b)
			}
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(data, again) {
			t.Errorf("fitted=%v: re-encoding differs", fitted)
		}
	}
}

// TestTargetUnmarshalErrors feeds broken states: each is refused with
// ErrTargetState and a reason, and the Target keeps its state.
func TestTargetUnmarshalErrors(t *testing.T) {
	tg := NewTarget(16)
	tg.FitTarget([]string{"a b"})
	tg.Observe("c d")
	good, _ := tg.MarshalBinary()
	// resum fixes the checksum of a body edited in place.
	resum := func(b []byte) []byte {
		b = bytes.Clone(b)
		body := b[:len(b)-4]
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return resum(f(bytes.Clone(good))) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no \"THTG\" header"},
		{"magic", append([]byte("XXXX"), good[4:]...), "no \"THTG\" header"},
		{"version", edit(func(b []byte) []byte { b[4] = 2; return b }), "version 2"},
		{"checksum", append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1), "checksum"},
		{"truncated", good[:len(good)-9], "checksum"},
		{"buckets small", edit(func(b []byte) []byte { b[5] = 3; return b }), "out of range"},
		{"buckets huge", edit(func(b []byte) []byte { b[5] = 40; return b }), "out of range"},
		{"flags", edit(func(b []byte) []byte { b[6] |= 4; return b }), "unknown flags"},
		{"sum", edit(func(b []byte) []byte { b[7]++; return b }), "sum to"},
		{"trailing", resum(append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0)), "trailing"},
		{"cut counts", resum(append(bytes.Clone(good[:7+1+16]), 0, 0, 0, 0, 0, 0, 0, 0)), "target count 3: bad or missing uvarint"}, // 4 zeros, then the checksum
		{"short for buckets", resum([]byte("THTG\x01\x18\x00\x00\x00\x00\x00")), "truncated"},
	}
	for _, c := range cases {
		var into = NewTarget(32)
		into.Observe("keep me")
		before, _ := into.MarshalBinary()
		err := into.UnmarshalBinary(c.data)
		if !errors.Is(err, ErrTargetState) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: error %v, want ErrTargetState saying %q", c.name, err, c.want)
		}
		if after, _ := into.MarshalBinary(); !bytes.Equal(before, after) {
			t.Errorf("%s: a failed UnmarshalBinary changed the target", c.name)
		}
	}
}

// FuzzTargetUnmarshal checks that no input panics the decoder and that
// whatever it accepts is a usable Target that round-trips.
func FuzzTargetUnmarshal(f *testing.F) {
	small := NewTarget(16)
	small.Observe("the quick brown fox")
	a, _ := small.MarshalBinary()
	f.Add(a)
	small.FitTarget([]string{"lazy dog"})
	b, _ := small.MarshalBinary()
	f.Add(b)
	f.Add([]byte("THTG\x01\x04\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tg Target
		if err := tg.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrTargetState) {
				t.Fatalf("error %v does not wrap ErrTargetState", err)
			}
			return
		}
		s := tg.Similarity("the quick brown fox and the lazy dog")
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			t.Fatalf("similarity %v", s)
		}
		out, err := tg.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Target
		if err := back.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
		if again, _ := back.MarshalBinary(); !bytes.Equal(out, again) {
			t.Fatal("encoding is not stable")
		}
	})
}
