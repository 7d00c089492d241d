package lake

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

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
		parquet.KeyValueMetadata(schemas.MetaTable, table),
		parquet.KeyValueMetadata(schemas.MetaVersion, strconv.Itoa(version)),
		parquet.Compression(&zstd.Codec{Level: DefaultZstdLevel}),
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

// ReadTable reads every committed file under a table's prefix (all of its
// partitions) into Go rows, in key order.
func ReadTable[T any](ctx context.Context, s Store, table string) ([]T, error) {
	objs, err := s.List(ctx, table+"/")
	if err != nil {
		return nil, err
	}
	var out []T
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		data, err := s.Get(ctx, o.Key)
		if err != nil {
			return nil, err
		}
		rows, err := ReadRows[T](data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Key, err)
		}
		out = append(out, rows...)
	}
	return out, nil
}
