package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thresher-ml/thresher/schemas"
)

// cell renders row i of column col as text, "<null>" for a null, so that
// tests can compare whole rows.
func cell(t *testing.T, col arrow.Array, i int) string {
	t.Helper()
	if col.IsNull(i) {
		return "<null>"
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i)
	case *array.Binary:
		return fmt.Sprintf("%q", c.Value(i))
	case *array.Int32:
		return fmt.Sprint(c.Value(i))
	case *array.Int64:
		return fmt.Sprint(c.Value(i))
	case *array.Timestamp:
		return time.UnixMilli(int64(c.Value(i))).UTC().Format(time.RFC3339Nano)
	case *array.List: // of structs: [field=value ...]
		st := c.ListValues().(*array.Struct)
		start, end := c.ValueOffsets(i)
		var elems []string
		for j := int(start); j < int(end); j++ {
			var fields []string
			for k := range st.NumField() {
				fields = append(fields, st.DataType().(*arrow.StructType).Field(k).Name+"="+cell(t, st.Field(k), j))
			}
			elems = append(elems, strings.Join(fields, " "))
		}
		return "[" + strings.Join(elems, ", ") + "]"
	}
	t.Fatalf("unexpected column type %T", col)
	return ""
}

func rows(t *testing.T, batch arrow.RecordBatch) [][]string {
	t.Helper()
	out := make([][]string, batch.NumRows())
	for i := range out {
		for _, col := range batch.Columns() {
			out[i] = append(out[i], cell(t, col, i))
		}
	}
	return out
}

func checkRows(t *testing.T, batch arrow.RecordBatch, schema *arrow.Schema, want [][]string) {
	t.Helper()
	if !batch.Schema().Equal(schema) {
		t.Fatalf("schema = %v, want %v", batch.Schema(), schema)
	}
	got := rows(t, batch)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if fmt.Sprintf("%q", got[i]) != fmt.Sprintf("%q", want[i]) {
			t.Errorf("row %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestRawBuilder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := NewRawBuilder(mem)
	defer b.Release()

	ts := time.Date(2024, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("X", 3600))
	d := NewDecoder(DecoderConfig{})
	decode := func(v string) Record {
		rec, reason := d.Decode([]byte(v))
		if reason != "" {
			t.Fatalf("Decode(%s): %s", v, reason)
		}
		return rec
	}
	if b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("new builder: Len %d, Bytes %d", b.Len(), b.Bytes())
	}
	headers := []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}, {Key: "nil"}, {Key: "empty", Value: []byte{}}}
	b.Append(Meta{Topic: "t", Partition: 3, Offset: 10, Timestamp: ts, Key: []byte("k\x00"), Headers: headers},
		decode(`{"id":"i","source":"s","domain":"d","lang":"l","ts":1700000000.5,"text":"a\nb","x":[1, 2]}`))
	headers[0].Value[0] = 'X' // the builder holds its own copy
	// Record slices are reused by the next Decode: Append must have copied them.
	b.Append(Meta{Topic: "t", Partition: 3, Offset: 11, Timestamp: ts}, decode(`{"text":"only text"}`))
	b.Append(Meta{Topic: "t", Partition: 3, Offset: 12, Timestamp: ts, Key: []byte{}}, decode(`{"text":"é","id":""}`))
	if b.Len() != 3 {
		t.Fatalf("Len = %d, want 3", b.Len())
	}
	if b.Bytes() < len("a\nb")+len("only text")+len(`{"x":[1,2]}`) {
		t.Errorf("Bytes = %d, too small", b.Bytes())
	}
	batch := b.NewRecordBatch()
	checkRows(t, batch, schemas.RawSchema, [][]string{
		{"t", "3", "10", "2024-01-02T02:04:05.678Z", `"k\x00"`, "i", "s", "d", "l", "2023-11-14T22:13:20.5Z", "a\nb", `{"x":[1,2]}`,
			`[key=trace value="t1", key=nil value=<null>, key=empty value=""]`},
		{"t", "3", "11", "2024-01-02T02:04:05.678Z", "<null>", "<null>", "<null>", "<null>", "<null>", "<null>", "only text", "<null>", "<null>"},
		{"t", "3", "12", "2024-01-02T02:04:05.678Z", `""`, "", "<null>", "<null>", "<null>", "<null>", "é", "<null>", "<null>"},
	})
	batch.Release()

	// The builder starts over after NewRecordBatch.
	if b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("after NewRecordBatch: Len %d, Bytes %d", b.Len(), b.Bytes())
	}
	b.Append(Meta{Topic: "u", Partition: 0, Offset: 99, Timestamp: time.UnixMilli(0)}, decode(`{"text":"again","lang":"en"}`))
	batch = b.NewRecordBatch()
	checkRows(t, batch, schemas.RawSchema, [][]string{
		{"u", "0", "99", "1970-01-01T00:00:00Z", "<null>", "<null>", "<null>", "<null>", "en", "<null>", "again", "<null>", "<null>"},
	})
	batch.Release()

	// An empty batch is valid.
	batch = b.NewRecordBatch()
	if batch.NumRows() != 0 || batch.NumCols() != int64(len(schemas.RawSchema.Fields())) {
		t.Errorf("empty batch: %d rows, %d columns", batch.NumRows(), batch.NumCols())
	}
	batch.Release()
}

func TestDLQBuilder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := NewDLQBuilder(mem)
	defer b.Release()

	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	value := []byte("{\"text\":\xff}")
	b.Append(Meta{Topic: "t", Partition: 1, Offset: 5, Timestamp: ts, Key: []byte("key")}, value, schemas.ReasonInvalidJSON)
	value[0] = 'X' // the builder holds its own copy
	b.Append(Meta{Topic: "t", Partition: 1, Offset: 6, Timestamp: ts}, nil, schemas.ReasonEmptyText)
	if b.Len() != 2 || b.Bytes() < len(value)+len("key") {
		t.Fatalf("Len %d, Bytes %d", b.Len(), b.Bytes())
	}
	batch := b.NewRecordBatch()
	checkRows(t, batch, schemas.DLQSchema, [][]string{
		{"t", "1", "5", "2024-01-02T03:04:05Z", `"key"`, `"{\"text\":\xff}"`, schemas.ReasonInvalidJSON},
		{"t", "1", "6", "2024-01-02T03:04:05Z", "<null>", `""`, schemas.ReasonEmptyText},
	})
	batch.Release()

	if b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("after NewRecordBatch: Len %d, Bytes %d", b.Len(), b.Bytes())
	}
	b.Append(Meta{Topic: "t", Partition: 2, Offset: 7, Timestamp: ts}, []byte("[]"), schemas.ReasonNotObject)
	batch = b.NewRecordBatch()
	checkRows(t, batch, schemas.DLQSchema, [][]string{
		{"t", "2", "7", "2024-01-02T03:04:05Z", "<null>", `"[]"`, schemas.ReasonNotObject},
	})
	batch.Release()
}

// TestBuildersDefaultAllocator checks that a nil allocator works.
func TestBuildersDefaultAllocator(t *testing.T) {
	raw, dlq := NewRawBuilder(nil), NewDLQBuilder(nil)
	raw.Append(Meta{Topic: "t"}, Record{Text: []byte("x")})
	dlq.Append(Meta{Topic: "t"}, []byte("x"), schemas.ReasonNotObject)
	for _, batch := range []arrow.RecordBatch{raw.NewRecordBatch(), dlq.NewRecordBatch()} {
		if batch.NumRows() != 1 {
			t.Errorf("%d rows, want 1", batch.NumRows())
		}
		batch.Release()
	}
}
