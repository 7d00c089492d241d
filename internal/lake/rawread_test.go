package lake

import (
	"os"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/schemas"
)

// TestReadRawEncodeRows: segments written row by row (EncodeRows, as tests
// and tools do) read back alike too, nulls and empty values included; a
// file of another table falls back to ReadRows.
func TestReadRawEncodeRows(t *testing.T) {
	var rows []schemas.Raw
	for i, in := range sampleRaw(300, 7) {
		r := in.want()
		r.KafkaTS = time.UnixMilli(r.KafkaTS.UnixMilli() + int64(i)).UTC()
		// parquet-go v0.32.0 GenericWriter panics (page level histogram) on
		// the optional json column attrs; ingest writes it through Encoder.
		r.Attrs = ""
		rows = append(rows, r)
	}
	data, err := EncodeRows(schemas.TableRaw, schemas.RawVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadRows[schemas.Raw](data)
	if err != nil {
		t.Fatal(err)
	}
	sameAsReadRows(t, data, want)

	dlq, err := EncodeRows(schemas.TableDLQ, schemas.DLQVersion, []schemas.DLQ{{Topic: "t", Reason: "invalid_json"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadRaw(dlq); err != nil || len(got) != 1 {
		t.Fatalf("ReadRaw of a dlq file: %v rows, %v", got, err)
	}
}

// FuzzReadRaw: ReadRaw never panics or allocates without bound on damaged
// files, and what it reads has the row count the footer promises.
func FuzzReadRaw(f *testing.F) {
	var rows []schemas.Raw
	for _, in := range sampleRaw(12, 0) {
		r := in.want()
		r.Attrs = "" // see TestReadRawEncodeRows
		rows = append(rows, r)
	}
	if data, err := EncodeRows(schemas.TableRaw, schemas.RawVersion, rows); err == nil {
		f.Add(data)
	}
	b := rawBatchOf(sampleRaw(9, 0))
	defer b.Release()
	if enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithRowGroupRows(4)); err == nil {
		if data, err := enc.Encode(b); err == nil {
			f.Add(data)
		}
	}
	if data, err := os.ReadFile("testdata/raw-v1.parquet"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadRaw(data)
		if err != nil {
			return
		}
		if _, n, err := FileMeta(data); err == nil && int64(len(got)) != n {
			t.Fatalf("ReadRaw %d rows, the footer says %d", len(got), n)
		}
	})
}

// TestReadRawVersion1 reads a segment written by the version 1 Encoder
// (sampleRaw(12, 40) in row groups of 5, before the headers column): every
// reader of raw still reads it, with null headers.
func TestReadRawVersion1(t *testing.T) {
	data, err := os.ReadFile("testdata/raw-v1.parquet")
	if err != nil {
		t.Fatal(err)
	}
	meta, _, err := FileMeta(data)
	if err != nil || meta[schemas.MetaVersion] != "1" {
		t.Fatalf("FileMeta = %v, %v; want a version 1 segment", meta, err)
	}
	rows, err := ReadRows[schemas.Raw](data)
	if err != nil {
		t.Fatal(err)
	}
	in := sampleRaw(12, 40)
	if len(rows) != len(in) {
		t.Fatalf("%d rows, want %d", len(rows), len(in))
	}
	for i, r := range in {
		r.headers = nil
		if !sameRaw(rows[i], r.want()) || len(rows[i].Headers) != 0 {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], r.want())
		}
	}
	sameAsReadRows(t, data, rows)
}
