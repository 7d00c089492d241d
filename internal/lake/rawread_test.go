package lake

import (
	"bytes"
	"os"
	"testing"
	"time"
	"unicode/utf8"

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

// FuzzRawHeaders: any headers (rows split at 0xff bytes, headers at 0xfe,
// key and value at 0xfd; a header without 0xfd has a null value, a row
// "\xfc" an empty list) written by the Encoder, over pages and row groups
// small enough to split rows between them, read back alike through ReadRaw
// and ReadRows.
func FuzzRawHeaders(f *testing.F) {
	f.Add([]byte("trace\xfdabc\xfenull\xfeempty\xfd\xff\xff\xfc\xffk\xfd\x00\x01"))
	f.Add(bytes.Repeat([]byte("a\xfdb\xfe"), 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rows []rawIn
		for i, row := range bytes.Split(data, []byte{0xff}) {
			r := rawIn{topic: "t", offset: int64(i), text: "x"}
			switch {
			case bytes.Equal(row, []byte{0xfc}):
				r.headers = []schemas.Header{}
			case len(row) > 0:
				for _, h := range bytes.Split(row, []byte{0xfe}) {
					k, v, ok := bytes.Cut(h, []byte{0xfd})
					hd := schemas.Header{Key: string(k)}
					if ok {
						hd.Value = append([]byte{}, v...)
					}
					r.headers = append(r.headers, hd)
				}
			}
			rows = append(rows, r)
		}
		for _, r := range rows {
			for _, h := range r.headers {
				if !utf8.ValidString(h.Key) {
					return // keys are strings
				}
			}
		}
		b := rawBatchOf(rows)
		defer b.Release()
		enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithPageSize(64), WithRowGroupRows(7))
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadRows[schemas.Raw](out)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			if !sameHeaders(got[i].Headers, r.headers) {
				t.Fatalf("row %d: ReadRows headers %q, want %q", i, got[i].Headers, r.headers)
			}
		}
		sameAsReadRows(t, out, got)
	})
}
