package dedup

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// stream turns the distinct dev texts into records spread over two topics
// and three partitions, with a few exact repeats, in a fixed order.
type record struct {
	id   RecordID
	text string
}

func devRecords(t testing.TB) []record {
	t.Helper()
	d := loadDevPairs(t)
	var recs []record
	offs := map[RecordID]int64{}
	for i, text := range d.texts {
		k := RecordID{Topic: []string{"alpha", "beta"}[i%2], Partition: int32(i % 3)}
		recs = append(recs, record{RecordID{k.Topic, k.Partition, offs[k]}, text})
		offs[k]++
		if i%17 == 0 { // an exact repeat, re-cased and re-spaced
			k2 := RecordID{Topic: "alpha", Partition: 2}
			recs = append(recs, record{RecordID{k2.Topic, k2.Partition, offs[k2]}, "  " + text + "\n"})
			offs[k2]++
		}
	}
	return recs
}

func feed(ix *Index, recs []record) []Result {
	out := make([]Result, len(recs))
	for i, r := range recs {
		out[i] = ix.Add(r.id, r.text)
	}
	return out
}

func mustIndex(t testing.TB, cfg Config) *Index {
	t.Helper()
	ix, err := NewIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func mustMarshal(t testing.TB, ix *Index) []byte {
	t.Helper()
	b, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diffResults(t *testing.T, recs []record, want, got []Result) {
	t.Helper()
	bad := 0
	for i := range want {
		if want[i] != got[i] {
			if bad++; bad <= 5 {
				t.Errorf("record %v: got %+v, want %+v", recs[i].id, got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d results differ", bad, len(want))
	}
}

// small is a configuration whose generations fill up on the dev texts, so
// that eviction is exercised too.
var small = Config{MaxRecords: 4096, Generations: 4}

// TestPersistResume builds an index on half the records, saves it, loads
// it into a new index, feeds the rest and checks that every result, and
// the final saved state, are those of an index that never stopped.
func TestPersistResume(t *testing.T) {
	recs := devRecords(t)
	for _, cfg := range []Config{{}, small} {
		t.Run(fmt.Sprintf("max_records=%d", cfg.MaxRecords), func(t *testing.T) {
			whole := mustIndex(t, cfg)
			want := feed(whole, recs)
			wantState := mustMarshal(t, whole)
			if cfg.MaxRecords > 0 && whole.Stats().Evicted == 0 {
				t.Fatalf("no eviction with %+v: %+v", cfg, whole.Stats())
			}
			for _, cut := range []int{0, 1, len(recs) / 2, len(recs) - 1} {
				first := mustIndex(t, cfg)
				got := feed(first, recs[:cut])
				state := mustMarshal(t, first)

				var zero Index // adopts the saved configuration
				if err := zero.UnmarshalBinary(state); err != nil {
					t.Fatal(err)
				}
				resumed := mustIndex(t, cfg)
				if err := resumed.UnmarshalBinary(state); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(mustMarshal(t, resumed), state) {
					t.Fatalf("cut %d: saved state does not round-trip", cut)
				}
				got = append(got, feed(resumed, recs[cut:])...)
				diffResults(t, recs, want, got)
				if !bytes.Equal(mustMarshal(t, resumed), wantState) {
					t.Errorf("cut %d: final state differs from the uninterrupted index's", cut)
				}
				if a, b := feed(&zero, recs[cut:]), want[cut:]; fmt.Sprint(a) != fmt.Sprint(b) {
					t.Errorf("cut %d: the zero Index loaded from the state decides differently", cut)
				}
				if s, w := resumed.Stats(), whole.Stats(); s != w {
					t.Errorf("cut %d: stats %+v, want %+v", cut, s, w)
				}
			}
		})
	}
}

// TestUnmarshalErrors checks that bad state is refused with the right
// error and leaves the index as it was.
func TestUnmarshalErrors(t *testing.T) {
	ix := mustIndex(t, Config{})
	for i, text := range []string{"the quick brown fox jumps over the lazy dog", "hello world", "the quick brown fox jumps over the lazy cat"} {
		ix.Add(RecordID{"t", 0, int64(i)}, text)
	}
	good := mustMarshal(t, ix)
	flip := bytes.Clone(good)
	flip[len(flip)/2] ^= 1
	version := bytes.Clone(good)
	version[len(formatMagic)] = 9
	for _, c := range []struct {
		name string
		data []byte
		cfg  Config
		want error
	}{
		{"empty", nil, Config{}, ErrCorrupt},
		{"not an index", []byte("PAR1 this is a parquet file, honest"), Config{}, ErrCorrupt},
		{"truncated", good[:len(good)-9], Config{}, ErrCorrupt},
		{"bit flip", flip, Config{}, ErrCorrupt},
		{"future version", version, Config{}, ErrVersion},
		{"other shingles", good, Config{ShingleWords: 4}, ErrIncompatible},
		{"other bands", good, Config{Bands: 16, Rows: 2}, ErrIncompatible},
		{"other seed", good, Config{Seed: 7}, ErrIncompatible},
		{"other punctuation", good, Config{Punctuation: PunctKeep}, ErrIncompatible},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := mustIndex(t, c.cfg)
			dst.Add(RecordID{"u", 1, 1}, "something already there")
			before := mustMarshal(t, dst)
			err := dst.UnmarshalBinary(c.data)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Logf("%v", err)
			if !bytes.Equal(mustMarshal(t, dst), before) {
				t.Error("a failed UnmarshalBinary changed the index")
			}
		})
	}
	// A tuning field may change between runs.
	retuned := mustIndex(t, Config{Threshold: 0.9, MaxCandidates: 8, MaxRecords: 1 << 20})
	if err := retuned.UnmarshalBinary(good); err != nil {
		t.Fatalf("threshold change refused: %v", err)
	}
	if c := retuned.Config(); c.Threshold != 0.9 || c.MaxCandidates != 8 || c.MaxRecords != 1<<20 {
		t.Errorf("loaded config %+v lost the receiver's tuning", c)
	}
	if r := retuned.Add(RecordID{"t", 0, 9}, "the quick brown fox jumps over the lazy bird"); r.Decision != Unique {
		t.Errorf("at threshold 0.9 got %+v", r)
	}
}
