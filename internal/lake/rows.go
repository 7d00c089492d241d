package lake

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/thresher-ml/thresher/schemas"
)

// EncodeRows writes Go rows into one Parquet file in memory, with the
// schema, compression and encodings of T's struct tags (zstd at its fastest
// level where a column names zstd) and the table's key/value metadata. It is
// for tables whose rows are built one by one (curate's audit and curated
// tables); Encoder is the zero-copy path for Arrow batches.
func EncodeRows[T any](table string, version int, rows []T) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf,
		rowsSchema[T](),
		parquet.KeyValueMetadata(schemas.MetaTable, table),
		parquet.KeyValueMetadata(schemas.MetaVersion, strconv.Itoa(version)),
		parquet.Compression(rowsZstd),
		parquet.PageBufferSize(DefaultPageSize),
		parquet.MaxRowsPerRowGroup(DefaultRowGroupRows),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("lake: encoding %s rows: %w", table, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("lake: encoding %s rows: %w", table, err)
	}
	return buf.Bytes(), nil
}

// rowsZstd is the codec of EncodeRows: the struct tag "zstd" alone would
// give parquet-go's shared codec at its default level, which is about half
// as fast for the same kind of output.
var rowsZstd = &zstd.Codec{Level: DefaultZstdLevel}

var rowsSchemas sync.Map // reflect.Type -> *parquet.Schema

// rowsSchema returns the schema of T's struct tags with every zstd column
// compressed by rowsZstd. Only the codec differs from parquet.SchemaOf, so
// the writer keeps its direct path from Go values to columns (it compares
// schemas without their codecs).
func rowsSchema[T any]() *parquet.Schema {
	t := reflect.TypeFor[T]()
	if s, ok := rowsSchemas.Load(t); ok {
		return s.(*parquet.Schema)
	}
	base := parquet.SchemaOf(new(T))
	s := parquet.NewSchema(base.Name(), &fastNode{Node: base, fields: fastFields(base.Fields())})
	rowsSchemas.Store(t, s)
	return s
}

func fastFields(fields []parquet.Field) []parquet.Field {
	if len(fields) == 0 {
		return fields
	}
	out := make([]parquet.Field, len(fields))
	for i, f := range fields {
		out[i] = &fastField{Field: f, fields: fastFields(f.Fields())}
	}
	return out
}

// fastNode and fastField wrap a schema's nodes, replacing the zstd codec.
type fastNode struct {
	parquet.Node
	fields []parquet.Field
}

func (n *fastNode) Fields() []parquet.Field { return n.fields }

type fastField struct {
	parquet.Field
	fields []parquet.Field
}

func (f *fastField) Fields() []parquet.Field { return f.fields }

func (f *fastField) Compression() compress.Codec {
	c := f.Field.Compression()
	if c != nil && c.CompressionCodec() == format.Zstd {
		return rowsZstd
	}
	return c
}

// ReadTable reads every committed file under a table's prefix (all of its
// partitions) into Go rows, in key order. For a table of segments (raw, dlq)
// it reads the live segments only (ListSegments): a compaction's merged
// segment, not the run it replaces; partially overlapping segments are an
// error wrapping ErrOverlap.
func ReadTable[T any](ctx context.Context, s Store, table string) ([]T, error) {
	objs, err := s.List(ctx, table+"/")
	if err != nil {
		return nil, err
	}
	live, _, others, err := resolveObjects(table, objs)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(objs))
	for _, sg := range live {
		keys = append(keys, sg.Key)
	}
	for _, o := range others {
		if strings.HasSuffix(o.Key, ".parquet") {
			keys = append(keys, o.Key)
		}
	}
	slices.Sort(keys)
	var out []T
	for _, k := range keys {
		data, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		rows, err := ReadRows[T](data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, rows...)
	}
	return out, nil
}
