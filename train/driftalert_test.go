package train

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// streamDomains reads the domains of the first n records of the real
// stream, in stream order.
func streamDomains(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, line := range realtest.Lines(t, realtest.Data(t, "corpus/stream.jsonl.gz"), n) {
		var r struct{ Domain string }
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Domain)
	}
	return out
}

// TestMixAlert replays the real stream's domain sequence through the alert
// as a trainer would see it (12,800 examples a second, updated every
// second): with the software domain withheld for ten minutes the alert
// stays down; once software records arrive it is raised within a minute,
// names software as the domain that moved, and clears once the trailing
// mix has taken the new domain in.
func TestMixAlert(t *testing.T) {
	domains := streamDomains(t, 120000)
	a := newMixAlert(DefaultDriftAlert, DefaultDriftAlertRecent, DefaultDriftAlertTrailing)
	now := time.Unix(1_700_000_000, 0)
	a.first = now // the first example's time, which add takes from the clock
	const perSecond = 12800
	i := 0
	next := func(withhold bool) {
		for n := 0; n < perSecond; i++ {
			d := domains[i%len(domains)]
			if withhold && d == "software" {
				continue
			}
			a.add(d)
			n++
		}
	}
	var maxTV float64
	for range 600 {
		next(true)
		now = now.Add(time.Second)
		if rose, _ := a.update(now); rose {
			t.Fatalf("alert raised at tv %.3f on a steady mix", a.tv)
		}
		maxTV = max(maxTV, a.tv)
	}
	t.Logf("steady mix: tv at most %.4f", maxTV)
	arrival := now
	var raised, cleared time.Time
	for range 1800 {
		next(false)
		now = now.Add(time.Second)
		rose, fell := a.update(now)
		if rose {
			raised = now
			if m := a.moves(1); len(m) != 1 || m[0].Domain != "software" || m[0].Recent <= m[0].Trailing {
				t.Fatalf("moves at the alert: %+v, want software first, rising", m)
			}
		}
		if fell {
			cleared = now
			break
		}
	}
	if raised.IsZero() || raised.Sub(arrival) > time.Minute {
		t.Fatalf("alert raised %v after the new domain arrived, want within a minute", raised.Sub(arrival))
	}
	if cleared.IsZero() || !cleared.After(raised) {
		t.Fatalf("alert never cleared in 30 minutes (tv %.3f)", a.tv)
	}
	if a.on {
		t.Fatal("alert still raised after it cleared")
	}
	t.Logf("raised %v after arrival, cleared %v after", raised.Sub(arrival), cleared.Sub(arrival))

	off := newMixAlert(1, DefaultDriftAlertRecent, DefaultDriftAlertTrailing)
	off.first = now.Add(-10 * time.Minute)
	off.add("a")
	off.update(now)
	off.add("b")
	if rose, _ := off.update(now.Add(time.Minute)); rose || off.tv < 0.5 {
		t.Fatalf("threshold 1: rose %v at tv %v, want no alert at a tv over 0.5", rose, off.tv)
	}
}

// TestHistoryVersion1 reads a train/history object of version 1 (without
// the drift columns) into the current row type.
func TestHistoryVersion1(t *testing.T) {
	type v1 struct {
		Step         int64     `parquet:"step,delta"`
		Time         time.Time `parquet:"time,timestamp(millisecond),delta"`
		ExamplesSeen int64     `parquet:"examples_seen,delta"`
		TokensSeen   int64     `parquet:"tokens_seen,delta"`
		LR           float32   `parquet:"lr"`
		Loss         float32   `parquet:"loss"`
		LossInfoNCE  float32   `parquet:"loss_infonce"`
		LossMLM      float32   `parquet:"loss_mlm"`
		Accuracy     float32   `parquet:"accuracy"`
		Std          float32   `parquet:"std"`
		Alignment    float32   `parquet:"alignment"`
		Uniformity   float32   `parquet:"uniformity"`
		RankMe       float32   `parquet:"rankme"`
		Stage        int32     `parquet:"curriculum_stage"`
		Collapsed    bool      `parquet:"collapsed"`
	}
	data, err := lake.EncodeRows(schemas.TableTrainHistory, 1, []v1{{Step: 7, Loss: 2.5, Stage: 3}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lake.ReadRows[schemas.TrainHistory](data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Step != 7 || rows[0].Loss != 2.5 || rows[0].Stage != 3 || rows[0].DriftAlert || rows[0].DriftMixTV != 0 {
		t.Fatalf("read %+v", rows)
	}
}

// TestMixAlertStart: a run whose first seconds sample one domain only (a
// curriculum's easiest stage) and then the stream's mix does not raise the
// alert: the trailing mix is the time-weighted mean of the readings, not
// mostly the first one.
func TestMixAlertStart(t *testing.T) {
	domains := streamDomains(t, 60000)
	a := newMixAlert(DefaultDriftAlert, DefaultDriftAlertRecent, DefaultDriftAlertTrailing)
	now := time.Unix(1_700_000_000, 0)
	a.first = now
	for range 3 { // three seconds of lexicon only
		for range 12800 {
			a.add("lexicon")
		}
		now = now.Add(time.Second)
		a.update(now)
	}
	i := 0
	var maxTV float64
	for s := range 900 {
		for range 12800 {
			a.add(domains[i%len(domains)])
			i++
		}
		now = now.Add(time.Second)
		if rose, _ := a.update(now); rose {
			t.Fatalf("alert raised %d s into the stream's mix, tv %.3f: the start's one-domain readings weigh too much", s+1, a.tv)
		}
		if s > 60 {
			maxTV = max(maxTV, a.tv)
		}
	}
	t.Logf("tv after the first minute at most %.4f", maxTV)
}
