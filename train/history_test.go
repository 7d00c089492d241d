package train

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

func TestStepObjectKeys(t *testing.T) {
	for _, tc := range []struct {
		key   string
		table string
		step  int64
		ok    bool
	}{
		{HistoryKey(31), schemas.TableTrainHistory, 31, true},
		{EvalKey(0), schemas.TableEval, 0, true},
		{"train/history/00000000000000000031.parquet", schemas.TableTrainHistory, 31, true},
		{"train/history/31.parquet", schemas.TableTrainHistory, 0, false},
		{"train/history/0000000000000000003x.parquet", schemas.TableTrainHistory, 0, false},
		{"train/history/00000000000000000031.parquet.tmp", schemas.TableTrainHistory, 0, false},
		{"eval/00000000000000000031.parquet", schemas.TableTrainHistory, 0, false},
	} {
		step, ok := parseStepObjectKey(tc.table, tc.key)
		if ok != tc.ok || step != tc.step {
			t.Errorf("parseStepObjectKey(%q, %q) = %d, %v", tc.table, tc.key, step, ok)
		}
	}
	if HistoryKey(31) != "train/history/00000000000000000031.parquet" || EvalKey(7) != "eval/00000000000000000007.parquet" {
		t.Fatalf("keys %s %s", HistoryKey(31), EvalKey(7))
	}
}

// failingStore fails every Put.
type failingStore struct{ lake.Store }

func (failingStore) Put(context.Context, string, []byte) error { return errors.New("disk full") }

// TestHistoryFlush: a flush writes the buffered rows under the first
// row's step; a failed flush keeps them for the next; an object left by an
// abandoned run under the same name is superseded; dropStepObjectsAfter
// removes the objects after a step.
func TestHistoryFlush(t *testing.T) {
	ctx := context.Background()
	mem := lake.NewMem()
	log := slog.New(slog.DiscardHandler)
	h := history{store: failingStore{mem}, log: log}
	h.add(schemas.TrainHistory{Step: 1, Loss: 3})
	h.add(schemas.TrainHistory{Step: 2, Loss: 2})
	if err := h.flush(ctx); err == nil || len(h.rows) != 2 {
		t.Fatalf("failed flush: %v, %d rows buffered", err, len(h.rows))
	}
	h.store = mem
	h.add(schemas.TrainHistory{Step: 3, Loss: 1})
	must(t, h.flush(ctx))
	if len(h.rows) != 0 {
		t.Fatalf("%d rows left after a flush", len(h.rows))
	}
	must(t, h.flush(ctx)) // nothing buffered: no object
	// An abandoned object at the next name is superseded.
	stale, err := lake.EncodeRows(schemas.TableTrainHistory, schemas.TrainHistoryVersion, []schemas.TrainHistory{{Step: 4, Loss: 99}, {Step: 9, Loss: 99}})
	must(t, err)
	must(t, mem.Put(ctx, HistoryKey(4), stale))
	h.add(schemas.TrainHistory{Step: 4, Loss: 0.5})
	must(t, h.flush(ctx))
	rows, err := lake.ReadTable[schemas.TrainHistory](ctx, mem, schemas.TableTrainHistory)
	must(t, err)
	var steps []int64
	for _, r := range rows {
		steps = append(steps, r.Step)
		if r.Loss == 99 {
			t.Fatalf("the abandoned row survived: %+v", r)
		}
	}
	if len(steps) != 4 || steps[0] != 1 || steps[3] != 4 {
		t.Fatalf("steps %v", steps)
	}
	must(t, dropStepObjectsAfter(ctx, mem, schemas.TableTrainHistory, 3, log))
	_, keys, err := stepObjects(ctx, mem, schemas.TableTrainHistory)
	must(t, err)
	if len(keys) != 1 || keys[0] != HistoryKey(1) {
		t.Fatalf("after dropping the objects after step 3: %v", keys)
	}
}
