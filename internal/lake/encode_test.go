package lake

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/thresher-ml/thresher/schemas"
)

// rawIn is one raw row to build an Arrow batch from; nil pointers and a nil
// Key are nulls.
type rawIn struct {
	topic     string
	partition int32
	offset    int64
	kafkaTS   int64 // ms
	key       []byte
	id        *string
	source    *string
	domain    *string
	lang      *string
	ts        *int64 // ms
	text      string
	attrs     *string
	headers   []schemas.Header // nil: null; a nil Value: a null value
}

func ptr[V any](v V) *V { return &v }

func appendStr(b array.Builder, s *string) {
	if s == nil {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(*s)
}

// rawBatchOf builds a batch of schemas.RawSchema.
func rawBatchOf(rows []rawIn) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RawSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.topic)
		b.Field(1).(*array.Int32Builder).Append(r.partition)
		b.Field(2).(*array.Int64Builder).Append(r.offset)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(r.kafkaTS))
		if r.key == nil {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BinaryBuilder).Append(r.key)
		}
		appendStr(b.Field(5), r.id)
		appendStr(b.Field(6), r.source)
		appendStr(b.Field(7), r.domain)
		appendStr(b.Field(8), r.lang)
		if r.ts == nil {
			b.Field(9).AppendNull()
		} else {
			b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(*r.ts))
		}
		b.Field(10).(*array.StringBuilder).Append(r.text)
		appendStr(b.Field(11), r.attrs)
		hb := b.Field(12).(*array.ListBuilder)
		if r.headers == nil {
			hb.AppendNull()
			continue
		}
		hb.Append(true)
		sb := hb.ValueBuilder().(*array.StructBuilder)
		for _, h := range r.headers {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(h.Key)
			if h.Value == nil {
				sb.FieldBuilder(1).AppendNull()
			} else {
				sb.FieldBuilder(1).(*array.BinaryBuilder).Append(h.Value)
			}
		}
	}
	return b.NewRecordBatch()
}

// want returns the schemas.Raw that r must read back as.
func (r rawIn) want() schemas.Raw {
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	out := schemas.Raw{
		Topic: r.topic, Partition: r.partition, Offset: r.offset,
		KafkaTS: time.UnixMilli(r.kafkaTS).UTC(), Key: r.key,
		ID: deref(r.id), Source: deref(r.source), Domain: deref(r.domain), Lang: deref(r.lang),
		Text: r.text, Attrs: deref(r.attrs), Headers: r.headers,
	}
	if r.ts != nil {
		out.TS = time.UnixMilli(*r.ts).UTC()
	}
	return out
}

func sameRaw(a, b schemas.Raw) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset &&
		a.KafkaTS.Equal(b.KafkaTS) && bytes.Equal(a.Key, b.Key) && a.ID == b.ID &&
		a.Source == b.Source && a.Domain == b.Domain && a.Lang == b.Lang &&
		a.TS.Equal(b.TS) && a.Text == b.Text && a.Attrs == b.Attrs && sameHeaders(a.Headers, b.Headers)
}

// sameHeaders compares headers, an empty list like a null one and an empty
// value like a null one (parquet-go reads both back alike).
func sameHeaders(a, b []schemas.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// sampleRaw returns n varied rows: every optional column is null in some
// rows, an empty string in others.
func sampleRaw(n int, firstOffset int64) []rawIn {
	rows := make([]rawIn, n)
	for i := range rows {
		off := firstOffset + int64(i)
		r := rawIn{
			topic: "records", partition: 3, offset: off,
			kafkaTS: 1_700_000_000_000 + off*17,
			text:    fmt.Sprintf("record %d: %s", off, strings.Repeat("héllo wörld ", i%7)),
		}
		switch i % 4 {
		case 0: // everything set
			r.key = []byte("k" + strconv.FormatInt(off, 10))
			r.id, r.source, r.domain, r.lang = ptr("id-"+strconv.Itoa(i)), ptr("wordnet"), ptr("lexicon"), ptr("en")
			r.ts = ptr(int64(1_600_000_000_123) + off)
			r.attrs = ptr(`{"n":` + strconv.Itoa(i) + `}`)
			r.headers = []schemas.Header{{Key: "trace", Value: []byte("t-" + strconv.Itoa(i))}, {Key: "null-value"}, {Key: "empty", Value: []byte{}}}
		case 1: // all optional columns null
		case 2: // valid but empty
			r.key = []byte{}
			r.id, r.source, r.domain, r.lang, r.attrs = ptr(""), ptr(""), ptr(""), ptr(""), ptr("")
			r.ts = ptr(int64(0))
			r.headers = []schemas.Header{}
		case 3:
			r.id, r.source = ptr("dup"), ptr("debian")
			r.ts = ptr(int64(-1_000)) // before the epoch
		}
		rows[i] = r
	}
	return rows
}

func TestEncodeRawRoundTrip(t *testing.T) {
	rows := sampleRaw(40, 100)
	tests := []struct {
		name    string
		opts    []EncoderOption
		batches [][]rawIn // rows of each batch, concatenated they are rows
		slice   bool      // encode rows [5, len-5) of one batch built from all rows, through NewSlice
	}{
		{name: "one batch", batches: [][]rawIn{rows}},
		{name: "three batches", batches: [][]rawIn{rows[:7], rows[7:8], rows[8:]}},
		{name: "row groups across batches", opts: []EncoderOption{WithRowGroupRows(6)}, batches: [][]rawIn{rows[:13], rows[13:]}},
		{name: "tiny pages", opts: []EncoderOption{WithPageSize(64)}, batches: [][]rawIn{rows}},
		{name: "serial", opts: []EncoderOption{WithConcurrency(1)}, batches: [][]rawIn{rows[:20], rows[20:]}},
		{name: "sliced batch", batches: [][]rawIn{rows}, slice: true},
		{name: "page statistics", opts: []EncoderOption{WithPageStatistics(true)}, batches: [][]rawIn{rows}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var batches []arrow.RecordBatch
			var want []rawIn
			for _, rs := range tt.batches {
				b := rawBatchOf(rs)
				defer b.Release()
				if tt.slice {
					s := b.NewSlice(5, int64(len(rs)-5))
					defer s.Release()
					b, rs = s, rs[5:len(rs)-5]
				}
				batches = append(batches, b)
				want = append(want, rs...)
			}
			data, err := enc.Encode(batches...)
			if err != nil {
				t.Fatal(err)
			}
			meta, n, err := FileMeta(data)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(want)) || meta[schemas.MetaTable] != "raw" || meta[schemas.MetaVersion] != strconv.Itoa(schemas.RawVersion) {
				t.Errorf("FileMeta = %v, %d rows; want table raw, version %d, %d rows", meta, n, schemas.RawVersion, len(want))
			}
			got, err := ReadRows[schemas.Raw](data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if w := want[i].want(); !sameRaw(got[i], w) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], w)
				}
			}
			sameAsReadRows(t, data, got)
		})
	}
}

// sameAsReadRows checks that ReadRaw reads data exactly as ReadRows did.
func sameAsReadRows(t testing.TB, data []byte, want []schemas.Raw) {
	t.Helper()
	got, err := ReadRaw(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadRaw: %d rows, ReadRows %d", len(got), len(want))
	}
	for i := range want {
		// A list that is null, or a column a version 1 segment lacks, may
		// read as nil or as empty.
		g, w := got[i], want[i]
		if len(g.Headers) == 0 && len(w.Headers) == 0 {
			g.Headers, w.Headers = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("ReadRaw row %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
	f, err := OpenRaw(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != len(want) || f.ReadInto(make([]schemas.Raw, len(want)+1)) == nil {
		t.Fatalf("OpenRaw: %d rows, want %d, and a wrong-sized destination must fail", f.NumRows(), len(want))
	}
	into := make([]schemas.Raw, len(want))
	if err := f.ReadInto(into); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(into, got) {
		t.Fatal("ReadInto differs from ReadRaw")
	}
}

// TestEncodeLayout checks what readers other than ReadRows rely on: column
// order and types as in schemas.Raw, the encodings and codec of its tags, row
// groups as configured, nulls as nulls.
func TestEncodeLayout(t *testing.T) {
	rows := sampleRaw(10, 0)
	b := rawBatchOf(rows)
	defer b.Release()
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithRowGroupRows(4))
	if err != nil {
		t.Fatal(err)
	}
	data, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	wantSchema := parquet.SchemaOf(new(schemas.Raw))
	if got, want := f.Schema().String(), wantSchema.String(); got != want {
		t.Errorf("schema:\n%s\nwant\n%s", got, want)
	}
	md := f.Metadata()
	if got := len(md.RowGroups); got != 3 {
		t.Errorf("%d row groups, want 3 (4+4+2 rows)", got)
	}
	if len(md.RowGroups[0].Columns) != len(wantSchema.Columns()) {
		t.Fatalf("%d columns, want %d", len(md.RowGroups[0].Columns), len(wantSchema.Columns()))
	}
	for i, col := range md.RowGroups[0].Columns {
		path := col.MetaData.PathInSchema
		name := strings.Join(path, ".")
		if col.MetaData.Codec != format.Zstd {
			t.Errorf("column %s: codec %v, want ZSTD", name, col.MetaData.Codec)
		}
		leaf, ok := wantSchema.Lookup(path...)
		if !ok || leaf.ColumnIndex != i {
			t.Errorf("column %d is %s, not where schemas.Raw has it", i, name)
			continue
		}
		if wantEnc := leaf.Node.Encoding(); wantEnc != nil && !slices.Contains(col.MetaData.Encoding, wantEnc.Encoding()) {
			t.Errorf("column %s: encodings %v, want %v", name, col.MetaData.Encoding, wantEnc.Encoding())
		}
	}
	// Nulls must be nulls, and "" must not be: in rows 0-3 (sampleRaw) row 1
	// is null in every optional column, row 2 in none, row 3 in some. Row 0
	// has three headers, one with a null value; rows 1 and 3 none, and row 2
	// an empty list: a null leaf each.
	for name, want := range map[string]int64{"key": 2, "id": 1, "source": 1, "domain": 2, "lang": 2, "ts": 1, "attrs": 2,
		"headers.list.element.key": 3, "headers.list.element.value": 4} {
		leaf, _ := f.Schema().Lookup(strings.Split(name, ".")...)
		nulls := md.RowGroups[0].Columns[leaf.ColumnIndex].MetaData.Statistics.NullCount
		if nulls != want {
			t.Errorf("column %s: %d nulls in row group 0, want %d", name, nulls, want)
		}
	}
}

func TestEncodeDeterministic(t *testing.T) {
	rows := sampleRaw(500, 0)
	b := rawBatchOf(rows)
	defer b.Release()
	var outs [][]byte
	for _, workers := range []int{1, 2, 5} {
		enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithConcurrency(workers), WithRowGroupRows(128), WithPageSize(1024))
		if err != nil {
			t.Fatal(err)
		}
		data, err := enc.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, data)
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Errorf("concurrency changes the file: %d bytes vs %d", len(outs[0]), len(outs[i]))
		}
	}
}

func TestEncodeDLQRoundTrip(t *testing.T) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.DLQSchema)
	defer b.Release()
	var want []schemas.DLQ
	for i := range 25 {
		row := schemas.DLQ{
			Topic: "records", Partition: 0, Offset: int64(i),
			KafkaTS: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(),
			Value:   []byte(fmt.Sprintf(`{"text": %d`, i)),
			Reason:  schemas.Reasons[i%len(schemas.Reasons)],
		}
		b.Field(0).(*array.StringBuilder).Append(row.Topic)
		b.Field(1).(*array.Int32Builder).Append(row.Partition)
		b.Field(2).(*array.Int64Builder).Append(row.Offset)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(row.KafkaTS.UnixMilli()))
		if i%3 == 0 {
			b.Field(4).AppendNull()
		} else {
			row.Key = []byte{byte(i), 0, 0xff}
			b.Field(4).(*array.BinaryBuilder).Append(row.Key)
		}
		if i == 7 {
			row.Value = []byte{} // an empty value is a valid (malformed) record
		}
		b.Field(5).(*array.BinaryBuilder).Append(row.Value)
		b.Field(6).(*array.StringBuilder).Append(row.Reason)
		want = append(want, row)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	enc, err := NewEncoder[schemas.DLQ](schemas.TableDLQ, schemas.DLQVersion)
	if err != nil {
		t.Fatal(err)
	}
	data, err := enc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	meta, n, err := FileMeta(data)
	if err != nil || n != 25 || meta[schemas.MetaTable] != "dlq" || meta[schemas.MetaVersion] != strconv.Itoa(schemas.DLQVersion) {
		t.Errorf("FileMeta = %v, %d, %v", meta, n, err)
	}
	got, err := ReadRows[schemas.DLQ](data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Topic != w.Topic || g.Partition != w.Partition || g.Offset != w.Offset || !g.KafkaTS.Equal(w.KafkaTS) ||
			!bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || g.Reason != w.Reason {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestEncodeEmpty(t *testing.T) {
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion)
	if err != nil {
		t.Fatal(err)
	}
	empty := rawBatchOf(nil)
	defer empty.Release()
	for name, batches := range map[string][]arrow.RecordBatch{"no batches": nil, "empty batch": {empty}} {
		t.Run(name, func(t *testing.T) {
			data, err := enc.Encode(batches...)
			if err != nil {
				t.Fatal(err)
			}
			meta, n, err := FileMeta(data)
			if err != nil || n != 0 || meta[schemas.MetaTable] != "raw" {
				t.Errorf("FileMeta = %v, %d, %v; want table raw, 0 rows", meta, n, err)
			}
			rows, err := ReadRows[schemas.Raw](data)
			if err != nil || len(rows) != 0 {
				t.Errorf("ReadRows = %d rows, %v; want none", len(rows), err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	good := schemas.RawSchema.Fields()
	// withField returns the raw schema with field i replaced by f.
	withField := func(i int, f arrow.Field) *arrow.Schema {
		fs := slices.Clone(good)
		fs[i] = f
		return arrow.NewSchema(fs, nil)
	}
	without := func(i int) *arrow.Schema {
		return arrow.NewSchema(slices.Delete(slices.Clone(good), i, i+1), nil)
	}
	tests := []struct {
		name    string
		schema  *arrow.Schema
		nullCol int // >= 0: append a null in this column of one row
		wantErr error
		wantIn  string
	}{
		{"missing column", without(10), -1, ErrSchemaMismatch, `"text"`},
		{"int64 partition", withField(1, arrow.Field{Name: "partition", Type: arrow.PrimitiveTypes.Int64}), -1, ErrSchemaMismatch, `"partition"`},
		{"binary text", withField(10, arrow.Field{Name: "text", Type: arrow.BinaryTypes.Binary}), -1, ErrSchemaMismatch, `"text"`},
		{"microsecond kafka_ts", withField(3, arrow.Field{Name: "kafka_ts", Type: arrow.FixedWidthTypes.Timestamp_us}), -1, ErrSchemaMismatch, `"kafka_ts"`},
		{"null text", schemas.RawSchema, 10, ErrNull, `"text"`},
		{"null offset", schemas.RawSchema, 2, ErrNull, `"offset"`},
		{"headers not a list", withField(12, arrow.Field{Name: "headers", Type: arrow.BinaryTypes.String, Nullable: true}), -1, ErrSchemaMismatch, `"headers"`},
		{"headers without key", withField(12, arrow.Field{Name: "headers", Nullable: true, Type: arrow.ListOfNonNullable(arrow.StructOf(
			arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true}))}), -1, ErrSchemaMismatch, `"headers"`},
		{"null header key", withField(12, arrow.Field{Name: "headers", Nullable: true, Type: arrow.ListOfNonNullable(arrow.StructOf(
			arrow.Field{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true}))}), 12, ErrNull, `"headers.key"`},
	}
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := array.NewRecordBuilder(memory.DefaultAllocator, tt.schema)
			defer b.Release()
			for i, f := range tt.schema.Fields() {
				fb := b.Field(i)
				for row := range 3 {
					if _, list := fb.(*array.ListBuilder); i == tt.nullCol && row == 1 && !list {
						fb.AppendNull()
						continue
					}
					switch fb := fb.(type) {
					case *array.StringBuilder:
						fb.Append("x")
					case *array.BinaryBuilder:
						fb.Append([]byte("x"))
					case *array.Int32Builder:
						fb.Append(1)
					case *array.Int64Builder:
						fb.Append(1)
					case *array.TimestampBuilder:
						fb.Append(1)
					case *array.ListBuilder: // a header, its key null in the null row
						fb.Append(true)
						sb := fb.ValueBuilder().(*array.StructBuilder)
						sb.Append(true)
						for k := range sb.NumField() {
							switch kb := sb.FieldBuilder(k).(type) {
							case *array.StringBuilder:
								if i == tt.nullCol && row == 1 {
									kb.AppendNull()
								} else {
									kb.Append("x")
								}
							case *array.BinaryBuilder:
								kb.Append([]byte("x"))
							}
						}
					default:
						t.Fatalf("field %s: builder %T", f.Name, fb)
					}
				}
			}
			rec := b.NewRecordBatch()
			defer rec.Release()
			_, err := enc.Encode(rec)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantIn) {
				t.Errorf("Encode error = %v; want %v naming %s", err, tt.wantErr, tt.wantIn)
			}
		})
	}
}

// allTypes exercises every supported Arrow type, optional and required.
type allTypes struct {
	I32  int32     `parquet:"i32"`
	OI32 int32     `parquet:"oi32,optional"`
	I64  int64     `parquet:"i64,delta"`
	F32  float32   `parquet:"f32,optional"`
	F64  float64   `parquet:"f64,snappy"`
	B    bool      `parquet:"b,optional"`
	Bin  []byte    `parquet:"bin"`
	LS   string    `parquet:"ls,optional,dict,zstd"`
	Us   time.Time `parquet:"us,timestamp(microsecond)"`
	Ns   time.Time `parquet:"ns,optional,timestamp(nanosecond)"`
}

func TestEncodeAllTypes(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "extra", Type: arrow.PrimitiveTypes.Uint8}, // ignored
		{Name: "ns", Type: arrow.FixedWidthTypes.Timestamp_ns, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32},
		{Name: "oi32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.LargeString}, // string into a binary column
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "us", Type: arrow.FixedWidthTypes.Timestamp_us},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	var want []allTypes
	for i := range 50 {
		w := allTypes{
			I32: int32(-i), I64: int64(i) << 40, F64: float64(i) / 3, Bin: []byte("bin" + strconv.Itoa(i)),
			Us: time.UnixMicro(int64(i) * 1_000_001).UTC(),
		}
		b.Field(0).(*array.Uint8Builder).Append(uint8(i))
		b.Field(2).(*array.Int32Builder).Append(w.I32)
		b.Field(4).(*array.Int64Builder).Append(w.I64)
		b.Field(6).(*array.Float64Builder).Append(w.F64)
		b.Field(8).(*array.LargeStringBuilder).Append(string(w.Bin))
		b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(w.Us.UnixMicro()))
		if i%2 == 0 {
			w.OI32, w.F32, w.B, w.LS = int32(i), float32(i)/2, i%4 == 0, "ls"+strconv.Itoa(i%3)
			w.Ns = time.Unix(0, int64(i)*1_000_000_007).UTC()
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(w.Ns.UnixNano()))
			b.Field(3).(*array.Int32Builder).Append(w.OI32)
			b.Field(5).(*array.Float32Builder).Append(w.F32)
			b.Field(7).(*array.BooleanBuilder).Append(w.B)
			b.Field(9).(*array.LargeStringBuilder).Append(w.LS)
		} else {
			for _, f := range []int{1, 3, 5, 7, 9} {
				b.Field(f).AppendNull()
			}
		}
		want = append(want, w)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	enc, err := NewEncoder[allTypes]("all_types", 7)
	if err != nil {
		t.Fatal(err)
	}
	data, err := enc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadRows[allTypes](data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.I32 != w.I32 || g.OI32 != w.OI32 || g.I64 != w.I64 || g.F32 != w.F32 || g.F64 != w.F64 ||
			g.B != w.B || !bytes.Equal(g.Bin, w.Bin) || g.LS != w.LS || !g.Us.Equal(w.Us) || !g.Ns.Equal(w.Ns) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if meta, _, _ := FileMeta(data); meta[schemas.MetaVersion] != "7" {
		t.Errorf("version %q, want 7", meta[schemas.MetaVersion])
	}
}

func TestNewEncoderErrors(t *testing.T) {
	type nested struct {
		A struct{ B int32 } `parquet:"a"`
	}
	type unsigned struct {
		U uint16 `parquet:"u"`
	}
	type list struct {
		L []int32 `parquet:"l,list"`
	}
	for name, err := range map[string]error{
		"not a struct": func() error { _, err := NewEncoder[int]("t", 1); return err }(),
		"nested":       func() error { _, err := NewEncoder[nested]("t", 1); return err }(),
		"unsigned":     func() error { _, err := NewEncoder[unsigned]("t", 1); return err }(),
		"list":         func() error { _, err := NewEncoder[list]("t", 1); return err }(),
		"page size":    func() error { _, err := NewEncoder[schemas.Raw]("raw", 1, WithPageSize(0)); return err }(),
		"row groups":   func() error { _, err := NewEncoder[schemas.Raw]("raw", 1, WithRowGroupRows(-1)); return err }(),
		"concurrency":  func() error { _, err := NewEncoder[schemas.Raw]("raw", 1, WithConcurrency(0)); return err }(),
		"zstd level":   func() error { _, err := NewEncoder[schemas.Raw]("raw", 1, WithZstdLevel(9)); return err }(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "lake: ") {
			t.Errorf("%s: NewEncoder error = %v, want a lake: error", name, err)
		}
	}
	// Every invalid option is reported at once.
	_, err := NewEncoder[schemas.Raw]("raw", 1, WithPageSize(-1), WithConcurrency(-1))
	if msg := fmt.Sprint(err); !strings.Contains(msg, "page size") || !strings.Contains(msg, "concurrency") {
		t.Errorf("NewEncoder with two bad options: %v; want both named", err)
	}
}

func TestEncodeRowGroups(t *testing.T) {
	rows := sampleRaw(100, 0) // ~50 bytes of text per row, 8 per fixed-width value
	tests := []struct {
		name    string
		batches []int // rows per batch
		opts    []EncoderOption
		want    []int64 // rows per row group
	}{
		{"one group", []int{100}, nil, []int64{100}},
		{"even split", []int{100}, []EncoderOption{WithRowGroupRows(25)}, []int64{25, 25, 25, 25}},
		{"balanced split", []int{100}, []EncoderOption{WithRowGroupRows(30)}, []int64{25, 25, 25, 25}},
		{"remainder first", []int{10}, []EncoderOption{WithRowGroupRows(4)}, []int64{4, 3, 3}},
		{"across batches", []int{3, 1, 50, 46}, []EncoderOption{WithRowGroupRows(40)}, []int64{34, 33, 33}},
		{"by bytes", []int{60, 40}, []EncoderOption{WithRowGroupBytes(4 << 10)}, []int64{34, 33, 33}},
		{"one row each", []int{5}, []EncoderOption{WithRowGroupRows(1)}, []int64{1, 1, 1, 1, 1}},
		{"bytes below a row", []int{5}, []EncoderOption{WithRowGroupBytes(1)}, []int64{1, 1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var batches []arrow.RecordBatch
			off := 0
			for _, n := range tt.batches {
				b := rawBatchOf(rows[off : off+n])
				defer b.Release()
				batches = append(batches, b)
				off += n
			}
			enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			data, err := enc.Encode(batches...)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, rg := range f.Metadata().RowGroups {
				got = append(got, rg.NumRows)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("row groups of %v rows, want %v", got, tt.want)
			}
			read, err := ReadRows[schemas.Raw](data)
			if err != nil || len(read) != off {
				t.Fatalf("ReadRows = %d rows, %v; want %d", len(read), err, off)
			}
			for i := range read {
				if w := rows[i].want(); !sameRaw(read[i], w) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, read[i], w)
				}
			}
		})
	}
}

// TestEncoderConcurrentUse shares one Encoder between goroutines (run with
// -race): every file must be the same.
func TestEncoderConcurrentUse(t *testing.T) {
	b := rawBatchOf(sampleRaw(300, 0))
	defer b.Release()
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithRowGroupRows(100))
	if err != nil {
		t.Fatal(err)
	}
	want, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				got, err := enc.Encode(b)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("concurrent Encode: %d bytes, %v; want the same %d bytes", len(got), err, len(want))
				}
			}
		})
	}
	wg.Wait()
}
