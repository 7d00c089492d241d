// Package curatetest builds lakes of real records for the tests of stages
// downstream of ingest: raw segments laid out as ingest writes them, and
// the curate tables over them.
package curatetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// Topic is the topic of the raw records WriteRaw lays out.
const Topic = "records"

// WriteRaw lays real records (JSON lines of the corpus) out as raw
// segments: round robin over partitions, segLen records a segment, as
// ingest would.
func WriteRaw(tb testing.TB, store lake.Store, lines [][]byte, partitions, segLen int) {
	tb.Helper()
	byPart := make([][]schemas.Raw, partitions)
	for i, l := range lines {
		var v struct{ ID, Source, Domain, Lang, Text string }
		if err := json.Unmarshal(l, &v); err != nil {
			tb.Fatal(err)
		}
		p := i % partitions
		byPart[p] = append(byPart[p], schemas.Raw{
			Topic: Topic, Partition: int32(p), Offset: int64(len(byPart[p])),
			KafkaTS: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(),
			ID:      v.ID, Source: v.Source, Domain: v.Domain, Lang: v.Lang, Text: v.Text,
		})
	}
	for p, rows := range byPart {
		for i := 0; i < len(rows); i += segLen {
			seg := rows[i:min(i+segLen, len(rows))]
			data, err := lake.EncodeRows(schemas.TableRaw, schemas.RawVersion, seg)
			if err != nil {
				tb.Fatal(err)
			}
			key := lake.SegmentKey(schemas.TableRaw, Topic, int32(p), lake.Range{First: seg[0].Offset, Last: seg[len(seg)-1].Offset})
			if err := store.Put(context.Background(), key, data); err != nil && !isExist(err) {
				tb.Fatal(err)
			}
		}
	}
}

func isExist(err error) bool { return err != nil && errors.Is(err, lake.ErrExist) }

// Curate runs the curate stage over every raw segment of the lake at dir,
// windowRecords input records a window, until it is idle.
func Curate(tb testing.TB, dir string, store lake.Store, windowRecords int) {
	tb.Helper()
	cfg := curate.Config{Lake: dir, WindowRecords: windowRecords, Poll: 10 * time.Millisecond, ExitOnIdle: time.Millisecond}
	cfg.SetDefaults()
	st, err := curate.New(context.Background(), cfg, store, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// Lake returns a folder lake holding the first n records of the real
// stream as raw segments (2 partitions) and curated in windows of
// windowRecords. It skips the test when the data is absent (fails under
// CI=true), as realtest does.
func Lake(tb testing.TB, n, windowRecords int) (string, lake.Store) {
	tb.Helper()
	lines := realtest.CorpusLines(tb, n)
	dir := tb.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	WriteRaw(tb, store, lines, 2, 2000)
	Curate(tb, dir, store, windowRecords)
	return dir, store
}
