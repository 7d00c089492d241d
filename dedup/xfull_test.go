package dedup

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/realtest"
)

func TestXFull(t *testing.T) {
	if os.Getenv("XFULL") == "" {
		t.Skip()
	}
	lines := realtest.CorpusLines(t, 0)
	texts := make([]string, len(lines))
	for i, l := range lines {
		var r struct{ Text string }
		json.Unmarshal(l, &r)
		texts[i] = r.Text
	}
	lines = nil
	for _, c := range []Config{{MaxCandidates: 64}, {MaxCandidates: 256}, {MaxCandidates: 1024}} {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		ix, _ := NewIndex(c)
		t0 := time.Now()
		var slow time.Duration
		for i, tx := range texts {
			t1 := time.Now()
			ix.Add(RecordID{Topic: "s", Offset: int64(i)}, tx)
			if d := time.Since(t1); d > slow {
				slow = d
			}
		}
		el := time.Since(t0)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		st := ix.Stats()
		t.Logf("mc=%d b=%d r=%d: ", c.MaxCandidates, %.2f us/rec, slowest %v, verified/rec %.2f, heap %.0f B/rec, stats %.0f B/rec, %+v", c.Bands, c.Rows,
			float64(el.Microseconds())/float64(len(texts)), slow, float64(st.Verified)/float64(st.Added),
			float64(m1.HeapAlloc-m0.HeapAlloc)/float64(st.Records), st.BytesPerRecord, st)
		fmt.Print()
		runtime.KeepAlive(ix)
	}
}
