package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// stepObjectDigits is the width of the step in the name of a train/history
// or eval object, so names sort like steps.
const stepObjectDigits = 20

// HistoryKey returns the key of the train/history object whose first row
// is of step first: train/history/<first, 20 digits>.parquet.
func HistoryKey(first int64) string { return stepObjectKey(schemas.TableTrainHistory, first) }

// EvalKey returns the key of the eval object of the checkpoint at step:
// eval/<step, 20 digits>.parquet.
func EvalKey(step int64) string { return stepObjectKey(schemas.TableEval, step) }

func stepObjectKey(table string, step int64) string {
	return fmt.Sprintf("%s/%0*d.parquet", table, stepObjectDigits, step)
}

// parseStepObjectKey returns the step in the name of an object of table.
func parseStepObjectKey(table, key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, table+"/")
	if !ok {
		return 0, false
	}
	name, ok = strings.CutSuffix(name, ".parquet")
	if !ok || len(name) != stepObjectDigits || strings.Contains(name, "/") {
		return 0, false
	}
	step, err := strconv.ParseInt(name, 10, 64)
	return step, err == nil && step >= 0
}

// stepObjects lists the objects of table named by a step, oldest first.
func stepObjects(ctx context.Context, store lake.Store, table string) ([]int64, []string, error) {
	objs, err := store.List(ctx, table+"/")
	if err != nil {
		return nil, nil, fmt.Errorf("train: list %s: %w", table, err)
	}
	var steps []int64
	var keys []string
	for _, o := range objs {
		if st, ok := parseStepObjectKey(table, o.Key); ok {
			steps, keys = append(steps, st), append(keys, o.Key)
		}
	}
	return steps, keys, nil
}

// dropStepObjectsAfter deletes the objects of table named by a step after
// step: rows of a run that stopped (crashed) after it wrote them but
// before it committed a checkpoint that covers them. The resumed run
// replays those steps and writes them again.
func dropStepObjectsAfter(ctx context.Context, store lake.Store, table string, step int64, log *slog.Logger) error {
	steps, keys, err := stepObjects(ctx, store, table)
	if err != nil {
		return err
	}
	var errs []error
	for i, k := range keys {
		if steps[i] > step {
			log.Info("deleting rows of an abandoned run", "key", k, "resumed_step", step)
			if err := store.Delete(ctx, k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// putStepObject puts data at key. An object already there can only be
// from an abandoned run (the resume deletes those, so this happens when
// that delete failed): it is replaced, and the replacement logged.
func putStepObject(ctx context.Context, store lake.Store, key string, data []byte, log *slog.Logger) error {
	err := store.Put(ctx, key, data)
	if errors.Is(err, lake.ErrExist) {
		log.Warn("replacing an object of an abandoned run", "key", key)
		if err = store.Delete(ctx, key); err == nil {
			err = store.Put(ctx, key, data)
		}
	}
	if err != nil {
		return fmt.Errorf("train: write %s: %w", key, err)
	}
	return nil
}

// history buffers the train/history rows of the steps since the last flush
// (Run's goroutine only).
type history struct {
	store lake.Store
	log   *slog.Logger
	rows  []schemas.TrainHistory
}

func (h *history) add(r schemas.TrainHistory) { h.rows = append(h.rows, r) }

// flush writes the buffered rows as one object named by the first row's
// step and empties the buffer; on error the rows stay buffered and the
// next flush writes them with the rows added since.
func (h *history) flush(ctx context.Context) error {
	if len(h.rows) == 0 {
		return nil
	}
	data, err := lake.EncodeRows(schemas.TableTrainHistory, schemas.TrainHistoryVersion, h.rows)
	if err != nil {
		return fmt.Errorf("train: encode history: %w", err)
	}
	if err := putStepObject(ctx, h.store, HistoryKey(h.rows[0].Step), data, h.log); err != nil {
		return err
	}
	h.rows = h.rows[:0]
	return nil
}
