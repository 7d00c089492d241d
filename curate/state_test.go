package curate

import (
	"testing"

	"github.com/thresher-ml/thresher/schemas"
)

// FuzzDecodeState: the committed-state decoder never panics, and what it
// accepts encodes back to something it accepts again.
func FuzzDecodeState(f *testing.F) {
	good := &state{Version: stateVersion, Seq: 3, Cursor: map[string]int64{"records/0": 42}, Records: 7,
		Dedup: []byte{1, 2, 3}, Target: []byte{4}, Difficulty: newDifficulty(DefaultDifficultyWeights)}
	data, err := good.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte{})
	f.Add([]byte("not gob"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := st.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState(again); err != nil {
			t.Fatalf("re-encoded state rejected: %v", err)
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	d := newDifficulty(DefaultDifficultyWeights)
	d.Hist[5] = 9
	st := &state{Version: stateVersion, Seq: 2, Cursor: map[string]int64{"t/1": 10}, Difficulty: d}
	data, err := st.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(data)
	if err != nil || got.Seq != 2 || got.Cursor["t/1"] != 10 || got.Difficulty.Hist[5] != 9 {
		t.Fatalf("%+v %v", got, err)
	}
	st.Version = 99
	data, _ = st.encode()
	if _, err := decodeState(data); err == nil {
		t.Fatal("accepted another version")
	}
}

func TestStartFraction(t *testing.T) {
	for _, c := range []struct {
		pacing string
		s, k   int
		want   float64
	}{
		{PacingLinear, 0, 4, 0}, {PacingLinear, 1, 4, 0}, {PacingLinear, 2, 4, 1.0 / 3}, {PacingLinear, 3, 4, 2.0 / 3},
		{PacingRoot, 2, 4, (0.25 - 0.0625) / (1 - 0.0625)}, {PacingStep, 3, 4, 0.75},
	} {
		if got := startFraction(c.pacing, c.s, c.k, 0.25); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("%s stage %d/%d opens at %v, want %v", c.pacing, c.s, c.k, got, c.want)
		}
	}
}

func TestDifficultyStages(t *testing.T) {
	d := newDifficulty(DefaultDifficultyWeights)
	for i := 0; i < 10_000; i++ {
		_ = d.score(schemasAudit{WordEntropy: float32(i % 97), LengthWords: int32(i % 13), CompressionRatio: float32(i%7) + 1}.a())
	}
	b := d.boundaries(4)
	counts := make([]int, 4)
	for i, c := range d.Hist {
		counts[stageOf(float32(histLo+(histHi-histLo)*(float64(i)+0.5)/histBins), b)] += int(c)
	}
	for s, c := range counts {
		if c < 1500 || c > 3500 {
			t.Fatalf("stage %d holds %d of 10000 records (boundaries %v)", s, c, b)
		}
	}
}

type schemasAudit struct {
	WordEntropy, CompressionRatio float32
	LengthWords                   int32
}

func (s schemasAudit) a() *schemas.Audit {
	return &schemas.Audit{WordEntropy: s.WordEntropy, CompressionRatio: s.CompressionRatio, LengthWords: s.LengthWords}
}
