package curate_test

import (
	"context"
	"testing"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// TestStageReady: a stage is ready (Progress.Ready, /readyz) once it has
// opened its state and listed the raw table, not before.
func TestStageReady(t *testing.T) {
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, store, realtest.CorpusLines(t, 200), 2, 50)
	st, err := curate.New(context.Background(), testConfig(dir, 1000), store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Progress(); p.Ready {
		t.Fatalf("ready before listing the lake: %+v", p)
	}
	n, err := st.Step(context.Background())
	if err != nil || n != 200 {
		t.Fatalf("step: %d records, %v", n, err)
	}
	if p := st.Progress(); !p.Ready {
		t.Fatalf("not ready after a window: %+v", p)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
}
