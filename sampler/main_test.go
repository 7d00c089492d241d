package sampler

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	realtest.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// The shared lake: the first sharedRecords records of the real stream,
// curated in windows of sharedWindow input records, built once per test
// binary. Tests must not write to it.
const (
	sharedRecords = 15000
	sharedWindow  = 4000
)

var shared struct {
	once  sync.Once
	ok    bool
	dir   string
	store lake.Store
	rows  []schemas.Curated // every curated row, in window order
}

func sharedLake(tb testing.TB) (lake.Store, []schemas.Curated) {
	tb.Helper()
	shared.once.Do(func() {
		lines := realtest.CorpusLines(tb, sharedRecords)
		dir, err := os.MkdirTemp("", "sampler-lake-")
		if err != nil {
			tb.Fatal(err)
		}
		shared.dir = dir
		store, err := lake.OpenDir(dir)
		if err != nil {
			tb.Fatal(err)
		}
		curatetest.WriteRaw(tb, store, lines, 2, 2000)
		curatetest.Curate(tb, dir, store, sharedWindow)
		shared.store = store
		shared.rows = allRows(tb, store)
		shared.ok = true
	})
	if !shared.ok {
		tb.Skip("the shared lake could not be built (see the first test that tried)")
	}
	return shared.store, shared.rows
}

// allRows reads the curated rows of every committed window, in order.
func allRows(tb testing.TB, store lake.Store) []schemas.Curated {
	tb.Helper()
	ctx := context.Background()
	last, err := curate.CommittedWindow(ctx, store)
	if err != nil {
		tb.Fatal(err)
	}
	var out []schemas.Curated
	for w := int64(1); w <= last; w++ {
		data, err := store.Get(ctx, curate.WindowKey(schemas.TableCurated, w))
		if err != nil {
			tb.Fatal(err)
		}
		rows, err := lake.ReadRows[schemas.Curated](data)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// newSampler returns a sampler over store with cfg (defaults applied),
// closed at the end of the test.
func newSampler(tb testing.TB, cfg Config, store lake.Store) *Sampler {
	tb.Helper()
	cfg.SetDefaults()
	s, err := New(context.Background(), cfg, store, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func next(tb testing.TB, s Source) *Batch {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
