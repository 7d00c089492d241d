package curate

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/thresher-ml/thresher/dedup"
	"github.com/thresher-ml/thresher/internal/lake"
)

// TestSnapshotLayout checks that Stage.snapshot, which writes the dedup
// index straight into the state object, lays out exactly what state.encode
// does, and that the object decodes to the same index.
func TestSnapshotLayout(t *testing.T) {
	cfg := Config{Lake: "mem", ExitOnIdle: 1}
	cfg.SetDefaults()
	s, err := New(context.Background(), cfg, lake.NewMem(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		text := fmt.Sprintf("record %d of the snapshot test, with words enough to shingle: %d %d", i, i%50, i%7)
		s.ix.Add(dedup.RecordID{Topic: "records", Partition: int32(i % 4), Offset: int64(i)}, text)
		s.target.Observe(text)
	}
	st := *s.st
	st.Seq, st.Records, st.Cursor = 7, 3000, map[string]int64{"records/0": 750}
	got, err := s.snapshot(&st)
	if err != nil {
		t.Fatal(err)
	}
	want, err := st.encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("snapshot gives %d bytes, encode %d, and they differ", len(got), len(want))
	}
	back, err := decodeState(got)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := dedup.NewIndex(cfg.Dedup)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.UnmarshalBinary(back.Dedup); err != nil {
		t.Fatal(err)
	}
	if again, _ := ix.MarshalBinary(); !bytes.Equal(again, back.Dedup) {
		t.Fatal("the restored index saves other bytes")
	}
}
