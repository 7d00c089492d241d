package curate

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// TestIndexReplay: a stage loaded from a committed state ends with the very
// index of the stage that committed it, whether the index was saved with
// every window, some windows, or never (all replayed); index objects no
// kept state names are deleted.
func TestIndexReplay(t *testing.T) {
	ctx := context.Background()
	for _, every := range []int64{1, 2500, DefaultIndexEvery} {
		t.Run(fmt.Sprintf("index_every=%d", every), func(t *testing.T) {
			store := lake.NewMem()
			var rows []schemas.Raw
			for i := range 6000 {
				text := fmt.Sprintf("record %d of the replay test, with words enough to shingle: %d %d", i%4500, i%50, i%7)
				rows = append(rows, schemas.Raw{Topic: "records", Partition: 0, Offset: int64(i), KafkaTS: time.UnixMilli(int64(i)), Text: text})
			}
			for i := 0; i < len(rows); i += 1000 {
				data, err := lake.EncodeRows(schemas.TableRaw, schemas.RawVersion, rows[i:i+1000])
				if err != nil {
					t.Fatal(err)
				}
				key := lake.SegmentKey(schemas.TableRaw, "records", 0, lake.Range{First: int64(i), Last: int64(i + 999)})
				if err := store.Put(ctx, key, data); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{Lake: "mem", WindowRecords: 1000, IndexEvery: every, Poll: time.Millisecond, ExitOnIdle: time.Millisecond}
			cfg.SetDefaults()
			s, err := New(ctx, cfg, store, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			want, _ := s.ix.MarshalBinary()
			again, err := New(ctx, cfg, store, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := again.ix.MarshalBinary(); !bytes.Equal(got, want) {
				t.Fatalf("the loaded index (saved at window %d of %d) differs from the running one", again.st.IndexSeq, again.st.Seq)
			}
			objs, _ := store.List(ctx, indexDir)
			switch {
			case every == DefaultIndexEvery && (len(objs) != 0 || again.st.IndexSeq != 0):
				t.Fatalf("index saved at %d (objects %v), never due", again.st.IndexSeq, objs)
			case every == 1 && (len(objs) != 2 || again.st.IndexSeq != 6):
				t.Fatalf("index objects %v, state names %d; want the last two windows'", objs, again.st.IndexSeq)
			case every == 2500 && (len(objs) == 0 || again.st.IndexSeq != 6):
				t.Fatalf("index objects %v, state names %d", objs, again.st.IndexSeq)
			}
		})
	}
}
