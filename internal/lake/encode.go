package lake

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/thresher-ml/thresher/schemas"
)

// Errors of the Encoder.
var (
	// ErrSchemaMismatch is returned when a record batch lacks a column of the
	// table or holds it with an incompatible Arrow type.
	ErrSchemaMismatch = errors.New("lake: record batch does not match the table schema")
	// ErrNull is returned when a record batch holds a null in a column that
	// the table declares required.
	ErrNull = errors.New("lake: null in a required column")
)

// Encoder defaults, chosen with BenchmarkEncodeTuning on the first 50,000
// records of the real stream (12.8 MB of text, 6.8 MB of Parquet) on 2 cores
// (AMD EPYC), median of 3 runs:
//
//	zstd     page     row groups        workers  bytes/rec  CPU ms  wall ms
//	fastest  1 MiB    16 MiB (2 of 25k)    2       135.2     120      60
//	default  1 MiB    16 MiB               2       125.3     160      82
//	better   1 MiB    16 MiB               2       121.0     230     190
//	fastest  256 KiB  16 MiB               2       141.6     120      65
//	fastest  4 MiB    16 MiB               2       134.3     120      62
//	fastest  1 MiB    16 MiB               1       135.2     114     112
//	fastest  1 MiB    64 MiB (1 of 50k)    2       136.1     118      80
//	fastest  1 MiB    64 MiB               1       136.1     113     112
//
// Hence:
//   - zstd SpeedFastest: SpeedDefault saves 7% of the bytes for 35-40% more
//     CPU. Ingest is CPU-bound (the goal is 378k records/s on 2 cores, and
//     decoding JSON costs about as much as encoding Parquet: at ~2.3 us of
//     CPU per record SpeedFastest leaves room for it, SpeedDefault does
//     not); the raw table is the bronze copy, written once and read rarely.
//   - 1 MiB pages (parquet-mr's default): 256 KiB pages are 5% larger; 4 MiB
//     pages save under 1% but make every reader buffer 4 MiB per column.
//   - row groups of at most 16 MiB of input or 128Ki rows, split evenly: a
//     segment of 50k records makes two row groups of 25k, which two cores
//     encode at once: 1.9x shorter wall time, at no cost in size. Encoding
//     the columns of a single row group concurrently gains only 1.4x, the
//     text column being 70% of the work.
//   - one worker per CPU.
const (
	DefaultZstdLevel     = zstd.SpeedFastest
	DefaultPageSize      = 1 << 20
	DefaultRowGroupRows  = 128 << 10
	DefaultRowGroupBytes = 16 << 20
)

// valuesPerWrite bounds the scratch slice of parquet values handed to a
// column writer at once, and bytesPerWrite the bytes they reference: a page
// is flushed only between writes, so pages end up at most this much over the
// page size.
const (
	valuesPerWrite = 4096
	bytesPerWrite  = 64 << 10
)

// EncoderOption configures an Encoder.
type EncoderOption func(*encoderConfig)

type encoderConfig struct {
	zstdLevel     zstd.Level
	pageSize      int
	rowGroupRows  int
	rowGroupBytes int
	concurrency   int
	pageStats     bool
}

// WithZstdLevel sets the level of every zstd-compressed column (the
// compression itself comes from T's struct tags). Default DefaultZstdLevel.
func WithZstdLevel(level zstd.Level) EncoderOption {
	return func(c *encoderConfig) { c.zstdLevel = level }
}

// WithPageSize sets the target size of data pages before compression, in
// bytes. Default DefaultPageSize.
func WithPageSize(bytes int) EncoderOption {
	return func(c *encoderConfig) { c.pageSize = bytes }
}

// WithRowGroupRows sets the most rows in one row group. Default
// DefaultRowGroupRows.
func WithRowGroupRows(rows int) EncoderOption {
	return func(c *encoderConfig) { c.rowGroupRows = rows }
}

// WithRowGroupBytes sets the most input bytes in one row group (the bytes
// of variable-length values, 8 per fixed-width value). Default
// DefaultRowGroupBytes.
func WithRowGroupBytes(bytes int) EncoderOption {
	return func(c *encoderConfig) { c.rowGroupBytes = bytes }
}

// WithConcurrency sets how many columns are encoded and compressed at once.
// Default runtime.GOMAXPROCS(0); 1 encodes on the calling goroutine only.
func WithConcurrency(n int) EncoderOption {
	return func(c *encoderConfig) { c.concurrency = n }
}

// WithPageStatistics writes min/max statistics into every data page header
// (the page index in the footer has them regardless). Default off: they cost
// a comparison per value and hold whole text values.
func WithPageStatistics(on bool) EncoderOption {
	return func(c *encoderConfig) { c.pageStats = on }
}

// validate reports every invalid option at once.
func (c *encoderConfig) validate() error {
	var errs []error
	if c.zstdLevel < zstd.SpeedFastest || c.zstdLevel > zstd.SpeedBestCompression {
		errs = append(errs, fmt.Errorf("lake: encoder zstd level %d, want SpeedFastest to SpeedBestCompression", c.zstdLevel))
	}
	if c.pageSize <= 0 {
		errs = append(errs, fmt.Errorf("lake: encoder page size %d, want > 0", c.pageSize))
	}
	if c.rowGroupRows <= 0 {
		errs = append(errs, fmt.Errorf("lake: encoder row group rows %d, want > 0", c.rowGroupRows))
	}
	if c.rowGroupBytes <= 0 {
		errs = append(errs, fmt.Errorf("lake: encoder row group bytes %d, want > 0", c.rowGroupBytes))
	}
	if c.concurrency <= 0 {
		errs = append(errs, fmt.Errorf("lake: encoder concurrency %d, want > 0", c.concurrency))
	}
	return errors.Join(errs...)
}

// zstdCodecs holds one codec per zstd level, shared by every column and
// Encoder so that they share its pool of zstd encoders (each holds megabytes
// of tables).
var zstdCodecs = func() (c [zstd.SpeedBestCompression + 1]*zstd.Codec) {
	for l := zstd.SpeedFastest; l <= zstd.SpeedBestCompression; l++ {
		c[l] = &zstd.Codec{Level: l}
	}
	return c
}()

// Encoder writes Arrow record batches into one Parquet file in memory, using
// the parquet schema of the Go row type T (parquet.SchemaOf(new(T)): column
// names, order, optional, compression and encodings come from T's struct
// tags, see schemas.Raw and schemas.DLQ).
//
// Arrow columns are matched to parquet columns by name; every parquet column
// must be present in the batch schema with a compatible type, otherwise Encode
// fails with ErrSchemaMismatch naming the column. Extra Arrow columns are
// ignored. Supported, by parquet column:
//
//	string, json, enum (BYTE_ARRAY)   string, large_string
//	binary (BYTE_ARRAY, no annotation) binary, large_binary, string, large_string
//	int32                               int32
//	int64                               int64
//	timestamp(unit)                     timestamp with the same unit (any zone)
//	float, double, boolean              float32, float64, bool
//	list of struct of the string and    list of struct holding those fields
//	binary columns above (a slice of    by name (the raw table's headers)
//	structs tagged "list")
//
// Nulls in Arrow become nulls in optional columns; a null in a required
// column fails with ErrNull. Values are handed to parquet-go by reference to
// the Arrow buffers: no per-row reflection and no copy of string bytes before
// the page buffers.
//
// An Encoder is safe for concurrent use.
type Encoder[T any] struct {
	table   string
	version int
	schema  *parquet.Schema
	cols    []leafColumn
	cfg     encoderConfig
	options []parquet.WriterOption
}

// leafColumn is one parquet column of the table and the Arrow types it takes.
type leafColumn struct {
	name     string // the top-level field, and Arrow column, it belongs to
	index    int    // parquet column index
	maxDef   int    // definition level of a present value
	class    class  // what the column holds
	unit     arrow.TimeUnit
	optional bool // the value may be null

	// A leaf of a list of structs is the field child of the list's
	// elements; the list is present from definition level listDef (1 when
	// it is optional, else 0), and its elements from listDef+1.
	list    bool
	child   string
	listDef int
}

// path names the column in errors: "name", or "name.child" in a list.
func (c *leafColumn) path() string {
	if c.list {
		return c.name + "." + c.child
	}
	return c.name
}

type class int

const (
	classString class = iota
	classBinary
	classInt32
	classInt64
	classTimestamp
	classFloat
	classDouble
	classBool
)

func (c class) String() string {
	return [...]string{"string", "binary", "int32", "int64", "timestamp", "float32", "float64", "bool"}[c]
}

// NewEncoder returns an Encoder of the table's rows of type T, a flat struct
// with parquet tags; every file it writes carries the key/value metadata
// schemas.MetaTable=table and schemas.MetaVersion=version.
func NewEncoder[T any](table string, version int, opts ...EncoderOption) (*Encoder[T], error) {
	cfg := encoderConfig{
		zstdLevel:     DefaultZstdLevel,
		pageSize:      DefaultPageSize,
		rowGroupRows:  DefaultRowGroupRows,
		rowGroupBytes: DefaultRowGroupBytes,
		concurrency:   runtime.GOMAXPROCS(0),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if t := reflect.TypeFor[T](); t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("lake: encoder row type %v is not a struct", t)
	}
	base := parquet.SchemaOf(new(T))
	fields := base.Fields()
	if len(fields) == 0 {
		return nil, fmt.Errorf("lake: encoder row type %v has no parquet columns", reflect.TypeFor[T]())
	}
	e := &Encoder[T]{table: table, version: version, cfg: cfg}
	wrapped := make([]parquet.Field, len(fields))
	for i, f := range fields {
		var cs []leafColumn
		if f.Leaf() {
			c, err := leafOf(f, len(e.cols))
			if err != nil {
				return nil, err
			}
			cs = []leafColumn{c}
		} else {
			var err error
			if cs, err = listLeaves(f, len(e.cols)); err != nil {
				return nil, err
			}
		}
		e.cols = append(e.cols, cs...)
		wrapped[i] = withZstdLevel(f, cfg.zstdLevel)
	}
	e.schema = parquet.NewSchema(base.Name(), &orderedGroup{Node: base, fields: wrapped})
	e.options = []parquet.WriterOption{
		e.schema,
		parquet.KeyValueMetadata(schemas.MetaTable, table),
		parquet.KeyValueMetadata(schemas.MetaVersion, strconv.Itoa(version)),
		parquet.PageBufferSize(cfg.pageSize),
		parquet.DataPageStatistics(cfg.pageStats),
		parquet.WriteBufferSize(0), // the output is a bytes.Buffer already
	}
	return e, nil
}

// withZstdLevel returns f, or a copy of it whose zstd leaves compress at
// level.
func withZstdLevel(f parquet.Field, level zstd.Level) parquet.Field {
	if f.Leaf() {
		if codec, ok := f.Compression().(*zstd.Codec); ok && codec.Level != level {
			return &codecField{Field: f, codec: zstdCodecs[level]}
		}
		return f
	}
	kids := f.Fields()
	wrapped := make([]parquet.Field, len(kids))
	for i, k := range kids {
		wrapped[i] = withZstdLevel(k, level)
	}
	return &groupField{Field: f, fields: wrapped}
}

// listLeaves returns the leaves of a list-of-structs field whose first leaf
// is parquet column first: the three-level LIST layout
//
//	<optional|required> group name (LIST) {
//	  repeated group list { required group element { <flat string or binary fields> } }
//	}
//
// that parquet-go makes of a `parquet:"name,optional,list"` slice of structs.
func listLeaves(f parquet.Field, first int) ([]leafColumn, error) {
	unsupported := fmt.Errorf("lake: column %q: only flat columns and lists of structs of string or binary fields are supported", f.Name())
	if l := f.Type().LogicalType(); l == nil || l.String() != "LIST" || f.Repeated() {
		return nil, unsupported
	}
	list := f.Fields()
	if len(list) != 1 || list[0].Leaf() || !list[0].Repeated() {
		return nil, unsupported
	}
	elem := list[0].Fields()
	if len(elem) != 1 || elem[0].Leaf() || elem[0].Repeated() || elem[0].Optional() {
		return nil, unsupported
	}
	listDef := 0
	if f.Optional() {
		listDef = 1
	}
	var cs []leafColumn
	for _, g := range elem[0].Fields() {
		c, err := leafOf(g, first+len(cs))
		if err != nil {
			return nil, fmt.Errorf("lake: column %q: %w", f.Name(), err)
		}
		if c.class != classString && c.class != classBinary {
			return nil, unsupported
		}
		c.name, c.child, c.list, c.listDef = f.Name(), g.Name(), true, listDef
		c.maxDef = listDef + 1 + c.maxDef
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return nil, unsupported
	}
	return cs, nil
}

func leafOf(f parquet.Field, index int) (leafColumn, error) {
	c := leafColumn{name: f.Name(), index: index, optional: f.Optional()}
	if c.optional {
		c.maxDef = 1
	}
	if !f.Leaf() || f.Repeated() {
		return c, fmt.Errorf("lake: column %q: only flat, non-repeated columns are supported", c.name)
	}
	typ := f.Type()
	var lt format.LogicalTypeValue
	if l := typ.LogicalType(); l != nil {
		lt = l.Value
	}
	unsupported := fmt.Errorf("lake: column %q: parquet type %v %v is not supported", c.name, typ.Kind(), lt)
	switch typ.Kind() {
	case parquet.ByteArray:
		switch lt.(type) {
		case nil:
			c.class = classBinary
		case *format.StringType, *format.JsonType, *format.EnumType:
			c.class = classString
		default:
			return c, unsupported
		}
	case parquet.Int32:
		switch t := lt.(type) {
		case nil:
		case *format.IntType:
			if t.BitWidth != 32 || !t.IsSigned {
				return c, unsupported
			}
		default:
			return c, unsupported
		}
		c.class = classInt32
	case parquet.Int64:
		switch t := lt.(type) {
		case nil:
			c.class = classInt64
		case *format.IntType:
			if t.BitWidth != 64 || !t.IsSigned {
				return c, unsupported
			}
			c.class = classInt64
		case *format.TimestampType:
			c.class = classTimestamp
			switch t.Unit.Value.Duration() {
			case time.Second:
				c.unit = arrow.Second
			case time.Millisecond:
				c.unit = arrow.Millisecond
			case time.Microsecond:
				c.unit = arrow.Microsecond
			case time.Nanosecond:
				c.unit = arrow.Nanosecond
			default:
				return c, unsupported
			}
		default:
			return c, unsupported
		}
	case parquet.Float:
		c.class = classFloat
	case parquet.Double:
		c.class = classDouble
	case parquet.Boolean:
		c.class = classBool
	default:
		return c, unsupported
	}
	return c, nil
}

// accepts reports whether an Arrow column of type t can fill c.
func (c *leafColumn) accepts(t arrow.DataType) bool {
	if c.list {
		lt, ok := t.(*arrow.ListType)
		if !ok {
			return false
		}
		st, ok := lt.Elem().(*arrow.StructType)
		if !ok {
			return false
		}
		f, ok := st.FieldByName(c.child)
		if !ok {
			return false
		}
		flat := *c
		flat.list = false
		return flat.accepts(f.Type)
	}
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return c.class == classString || c.class == classBinary
	case arrow.BINARY, arrow.LARGE_BINARY:
		return c.class == classBinary
	case arrow.INT32:
		return c.class == classInt32
	case arrow.INT64:
		return c.class == classInt64
	case arrow.TIMESTAMP:
		return c.class == classTimestamp && t.(*arrow.TimestampType).Unit == c.unit
	case arrow.FLOAT32:
		return c.class == classFloat
	case arrow.FLOAT64:
		return c.class == classDouble
	case arrow.BOOL:
		return c.class == classBool
	}
	return false
}

func (c *leafColumn) want() string {
	if c.list {
		flat := *c
		flat.list = false
		return "list of struct with field " + c.child + " of " + flat.want()
	}
	switch c.class {
	case classString:
		return "string or large_string"
	case classBinary:
		return "binary, large_binary, string or large_string"
	case classTimestamp:
		return "timestamp[" + c.unit.String() + "]"
	}
	return c.class.String()
}

// codecField overrides the compression codec of a column.
type codecField struct {
	parquet.Field
	codec compress.Codec
}

func (f *codecField) Compression() compress.Codec { return f.codec }

// groupField is a group whose children were replaced.
type groupField struct {
	parquet.Field
	fields []parquet.Field
}

func (f *groupField) Fields() []parquet.Field { return f.fields }

// orderedGroup is the root of T's schema with some fields replaced; unlike
// parquet.Group it keeps the order of the struct fields.
type orderedGroup struct {
	parquet.Node
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

// bound is one record batch with its arrays in the order of the encoder's
// columns.
type bound struct {
	rows   int
	arrays []arrow.Array
}

func (e *Encoder[T]) bind(batches []arrow.RecordBatch) ([]bound, int, error) {
	bs := make([]bound, 0, len(batches))
	total := 0
	for bi, b := range batches {
		if b == nil || b.NumRows() == 0 {
			continue
		}
		sc := b.Schema()
		arrays := make([]arrow.Array, len(e.cols))
		for i := range e.cols {
			c := &e.cols[i]
			idx := sc.FieldIndices(c.name)
			if len(idx) == 0 {
				return nil, 0, fmt.Errorf("%w: batch %d has no column %q (%s)", ErrSchemaMismatch, bi, c.name, c.want())
			}
			if len(idx) > 1 {
				return nil, 0, fmt.Errorf("%w: batch %d has %d columns named %q", ErrSchemaMismatch, bi, len(idx), c.name)
			}
			a := b.Column(idx[0])
			if !c.accepts(a.DataType()) {
				return nil, 0, fmt.Errorf("%w: column %q is %v in batch %d, want %s", ErrSchemaMismatch, c.name, a.DataType(), bi, c.want())
			}
			if err := c.checkNulls(a); err != nil {
				return nil, 0, fmt.Errorf("%w, batch %d", err, bi)
			}
			arrays[i] = a
		}
		bs = append(bs, bound{rows: int(b.NumRows()), arrays: arrays})
		total += int(b.NumRows())
	}
	return bs, total, nil
}

// checkNulls returns an error wrapping ErrNull when a, an array c accepts,
// holds a null where c is required.
func (c *leafColumn) checkNulls(a arrow.Array) error {
	firstNull := func(a arrow.Array) int {
		row := 0
		for a.IsValid(row) {
			row++
		}
		return row
	}
	if !c.list {
		if !c.optional && a.NullN() > 0 {
			return fmt.Errorf("%w: column %q, row %d", ErrNull, c.name, firstNull(a))
		}
		return nil
	}
	l := a.(*array.List)
	// NullN counts the nulls on its first call and keeps the count: it is
	// called here, before the leaves of the list are written at once.
	if n := l.NullN(); c.listDef == 0 && n > 0 {
		return fmt.Errorf("%w: column %q, row %d", ErrNull, c.name, firstNull(l))
	}
	st := l.ListValues().(*array.Struct)
	if st.NullN() > 0 {
		return fmt.Errorf("%w: column %q, element %d", ErrNull, c.name, firstNull(st))
	}
	if idx, _ := st.DataType().(*arrow.StructType).FieldIdx(c.child); !c.optional && st.Field(idx).NullN() > 0 {
		return fmt.Errorf("%w: column %q, element %d", ErrNull, c.path(), firstNull(st.Field(idx)))
	}
	return nil
}

// span is a run of rows of one bound batch.
type span struct{ batch, from, to int }

// Encode returns the bytes of a complete Parquet file holding all rows of the
// batches in order, with key/value metadata schemas.MetaTable=table and
// schemas.MetaVersion=version (decimal). With no rows it is a valid file with
// no row groups. The batches are only read, and may be released once Encode
// returns.
func (e *Encoder[T]) Encode(batches ...arrow.RecordBatch) ([]byte, error) {
	bs, total, err := e.bind(batches)
	if err != nil {
		return nil, err
	}
	inBytes := 0
	for _, b := range bs {
		for _, a := range b.arrays {
			inBytes += spanCost(a, 0, b.rows)
		}
	}
	buf := new(bytes.Buffer)
	// Text compresses about 2x at SpeedFastest: spare the buffer most regrowths.
	buf.Grow(inBytes/2 + 64<<10)
	w := parquet.NewGenericWriter[T](buf, e.options...)
	groups := e.plan(bs, total, inBytes)
	// Row groups are encoded a wave at a time, each column of each group by
	// one worker, then committed in order: memory stays bounded by a wave
	// while both columns and row groups use every core.
	wave := min(2*e.cfg.concurrency, len(groups))
	rgs := make([]*parquet.ConcurrentRowGroupWriter, wave)
	for i := range rgs {
		rgs[i] = w.BeginRowGroup()
	}
	for len(groups) > 0 {
		n := min(wave, len(groups))
		if err := e.writeGroups(rgs[:n], bs, groups[:n]); err != nil {
			return nil, err
		}
		for _, rg := range rgs[:n] {
			if _, err := rg.Commit(); err != nil {
				return nil, fmt.Errorf("lake: writing row group: %w", err)
			}
		}
		groups = groups[n:]
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("lake: closing parquet file: %w", err)
	}
	return buf.Bytes(), nil
}

// plan splits the rows into row groups of equal size (give or take one row),
// as few as keep each within the row and byte limits. The layout depends only
// on the input and the options, never on the number of cores.
func (e *Encoder[T]) plan(bs []bound, total, inBytes int) [][]span {
	if total == 0 {
		return nil
	}
	g := max((total+e.cfg.rowGroupRows-1)/e.cfg.rowGroupRows, (inBytes+e.cfg.rowGroupBytes-1)/e.cfg.rowGroupBytes, 1)
	g = min(g, total)
	groups := make([][]span, 0, g)
	bi, row := 0, 0
	for k := range g {
		n := total / g
		if k < total%g {
			n++
		}
		var spans []span
		for n > 0 {
			c := min(n, bs[bi].rows-row)
			spans = append(spans, span{bi, row, row + c})
			n -= c
			if row += c; row == bs[bi].rows {
				bi, row = bi+1, 0
			}
		}
		groups = append(groups, spans)
	}
	return groups
}

// writeGroups writes each group of rows into its row group writer, every
// column of every group a job for a pool of workers, largest jobs first; each
// job ends by flushing its column's last page, so that compression too runs
// in parallel and Commit only copies bytes.
func (e *Encoder[T]) writeGroups(rgs []*parquet.ConcurrentRowGroupWriter, bs []bound, groups [][]span) error {
	type job struct{ group, col, cost int }
	jobs := make([]job, 0, len(groups)*len(e.cols))
	for g, spans := range groups {
		for i := range e.cols {
			cost := 0
			for _, s := range spans {
				cost += spanCost(bs[s.batch].arrays[i], s.from, s.to)
			}
			jobs = append(jobs, job{g, i, cost})
		}
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(b.cost, a.cost) })
	run := func(j job, scratch []parquet.Value) error {
		return e.writeColumn(rgs[j.group].ColumnWriters()[j.col], j.col, bs, groups[j.group], scratch)
	}
	workers := min(e.cfg.concurrency, len(jobs))
	if workers <= 1 {
		scratch := make([]parquet.Value, valuesPerWrite)
		for _, j := range jobs {
			if err := run(j, scratch); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(jobs))
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			scratch := make([]parquet.Value, valuesPerWrite)
			for {
				k := int(next.Add(1)) - 1
				if k >= len(jobs) {
					return
				}
				errs[k] = run(jobs[k], scratch)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// spanCost estimates the work of encoding rows [from, to) of a: their bytes.
func spanCost(a arrow.Array, from, to int) int {
	switch a := a.(type) {
	case *array.String:
		return a.ValueOffset(to-1) + a.ValueLen(to-1) - a.ValueOffset(from)
	case *array.Binary:
		return a.ValueOffset(to-1) + a.ValueLen(to-1) - a.ValueOffset(from)
	case *array.LargeString:
		return int(a.ValueOffset(to-1)) + a.ValueLen(to-1) - int(a.ValueOffset(from))
	case *array.LargeBinary:
		return int(a.ValueOffset(to-1)) + a.ValueLen(to-1) - int(a.ValueOffset(from))
	}
	return (to - from) * 8
}

func (e *Encoder[T]) writeColumn(cw *parquet.ColumnWriter, i int, bs []bound, spans []span, scratch []parquet.Value) error {
	c := &e.cols[i]
	for _, s := range spans {
		if err := writeArray(cw, c, bs[s.batch].arrays[i], s.from, s.to, scratch); err != nil {
			return fmt.Errorf("lake: column %q: %w", c.path(), err)
		}
	}
	clear(scratch) // drop references to Arrow memory
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("lake: column %q: %w", c.path(), err)
	}
	return nil
}

func writeArray(cw *parquet.ColumnWriter, c *leafColumn, a arrow.Array, from, to int, scratch []parquet.Value) error {
	if c.list {
		return writeList(cw, c, a.(*array.List), from, to, scratch)
	}
	switch a := a.(type) {
	case *array.String:
		return writeBytes(cw, c, a, a.ValueOffsets(), a.ValueBytes(), from, to, scratch)
	case *array.LargeString:
		return writeBytes(cw, c, a, a.ValueOffsets(), a.ValueBytes(), from, to, scratch)
	case *array.Binary:
		return writeBytes(cw, c, a, a.ValueOffsets(), a.ValueBytes(), from, to, scratch)
	case *array.LargeBinary:
		return writeBytes(cw, c, a, a.ValueOffsets(), a.ValueBytes(), from, to, scratch)
	case *array.Int32:
		return writeFixed(cw, c, a, a.Int32Values(), parquet.Int32Value, from, to, scratch)
	case *array.Int64:
		return writeFixed(cw, c, a, a.Int64Values(), parquet.Int64Value, from, to, scratch)
	case *array.Timestamp:
		return writeFixed(cw, c, a, a.TimestampValues(), timestampValue, from, to, scratch)
	case *array.Float32:
		return writeFixed(cw, c, a, a.Float32Values(), parquet.FloatValue, from, to, scratch)
	case *array.Float64:
		return writeFixed(cw, c, a, a.Float64Values(), parquet.DoubleValue, from, to, scratch)
	case *array.Boolean:
		return writeBools(cw, c, a, from, to, scratch)
	}
	return fmt.Errorf("%w: unsupported Arrow array %T", ErrSchemaMismatch, a)
}

func timestampValue(t arrow.Timestamp) parquet.Value { return parquet.Int64Value(int64(t)) }

// writeList writes rows [from, to) of c's child of a list of structs: per
// row one null value for a null list (definition level 0) or an empty one
// (c.listDef), else one value per element, the first at repetition level 0
// and the others at 1.
func writeList(cw *parquet.ColumnWriter, c *leafColumn, l *array.List, from, to int, scratch []parquet.Value) error {
	st := l.ListValues().(*array.Struct)
	idx, _ := st.DataType().(*arrow.StructType).FieldIdx(c.child)
	var value func(j int) []byte
	switch child := st.Field(idx).(type) {
	case *array.String:
		value = func(j int) []byte { s := child.Value(j); return unsafe.Slice(unsafe.StringData(s), len(s)) }
	case *array.LargeString:
		value = func(j int) []byte { s := child.Value(j); return unsafe.Slice(unsafe.StringData(s), len(s)) }
	case *array.Binary:
		value = child.Value
	case *array.LargeBinary:
		value = child.Value
	default:
		return fmt.Errorf("%w: unsupported Arrow array %T in a list", ErrSchemaMismatch, child)
	}
	child := st.Field(idx)
	nulls := l.NullN() > 0
	elemDef := c.listDef + 1
	vals, size := scratch[:0], 0
	flush := func() error {
		_, err := cw.WriteRowValues(vals)
		clear(vals)
		vals, size = vals[:0], 0
		return err
	}
	for i := from; i < to; i++ {
		// Whole rows only: a row must not span two pages.
		if len(vals) >= len(scratch) || size >= bytesPerWrite {
			if err := flush(); err != nil {
				return err
			}
		}
		if nulls && l.IsNull(i) {
			vals = append(vals, parquet.Value{}.Level(0, 0, c.index))
			continue
		}
		start, end := l.ValueOffsets(i)
		if start == end {
			vals = append(vals, parquet.Value{}.Level(0, c.listDef, c.index))
			continue
		}
		for j := int(start); j < int(end); j++ {
			rep := 1
			if j == int(start) {
				rep = 0
			}
			if child.IsNull(j) {
				vals = append(vals, parquet.Value{}.Level(rep, elemDef, c.index))
				continue
			}
			v := value(j)
			size += len(v)
			vals = append(vals, parquet.ByteArrayValue(v).Level(rep, c.maxDef, c.index))
		}
	}
	if len(vals) > 0 {
		return flush()
	}
	return nil
}

// writeBytes writes rows [from, to) of a variable-length Arrow array whose
// offsets (relative to the array's own offset) and value bytes (starting at
// offs[0]) are given.
func writeBytes[O int32 | int64](cw *parquet.ColumnWriter, c *leafColumn, a arrow.Array, offs []O, data []byte, from, to int, scratch []parquet.Value) error {
	base := offs[0]
	nulls := a.NullN() > 0
	for i := from; i < to; {
		n, size := 0, 0
		for ; i < to && n < len(scratch) && size < bytesPerWrite; i++ {
			if nulls && a.IsNull(i) {
				scratch[n] = parquet.Value{}.Level(0, 0, c.index)
			} else {
				v := data[offs[i]-base : offs[i+1]-base : offs[i+1]-base]
				size += len(v)
				scratch[n] = parquet.ByteArrayValue(v).Level(0, c.maxDef, c.index)
			}
			n++
		}
		if _, err := cw.WriteRowValues(scratch[:n]); err != nil {
			return err
		}
	}
	return nil
}

func writeFixed[E any](cw *parquet.ColumnWriter, c *leafColumn, a arrow.Array, vals []E, value func(E) parquet.Value, from, to int, scratch []parquet.Value) error {
	nulls := a.NullN() > 0
	for i := from; i < to; {
		n := 0
		for ; i < to && n < len(scratch); i++ {
			if nulls && a.IsNull(i) {
				scratch[n] = parquet.Value{}.Level(0, 0, c.index)
			} else {
				scratch[n] = value(vals[i]).Level(0, c.maxDef, c.index)
			}
			n++
		}
		if _, err := cw.WriteRowValues(scratch[:n]); err != nil {
			return err
		}
	}
	return nil
}

func writeBools(cw *parquet.ColumnWriter, c *leafColumn, a *array.Boolean, from, to int, scratch []parquet.Value) error {
	nulls := a.NullN() > 0
	for i := from; i < to; {
		n := 0
		for ; i < to && n < len(scratch); i++ {
			if nulls && a.IsNull(i) {
				scratch[n] = parquet.Value{}.Level(0, 0, c.index)
			} else {
				scratch[n] = parquet.BooleanValue(a.Value(i)).Level(0, c.maxDef, c.index)
			}
			n++
		}
		if _, err := cw.WriteRowValues(scratch[:n]); err != nil {
			return err
		}
	}
	return nil
}

// ReadRows decodes a whole Parquet file into Go rows (parquet.GenericReader[T]
// matches columns by name).
func ReadRows[T any](data []byte) (_ []T, err error) {
	defer recoverCorrupt(&err)
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("lake: reading parquet rows: %w", err)
	}
	return rows, nil
}

// ErrCorrupt is wrapped by the errors of reading a Parquet file that is
// damaged in a way the Parquet library does not check (it panics there).
var ErrCorrupt = errors.New("lake: corrupt parquet file")

// recoverCorrupt turns a panic of the Parquet library on damaged input into
// an error wrapping ErrCorrupt.
func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrCorrupt, r)
	}
}

// FileMeta returns the key/value metadata and row count of a Parquet file.
func FileMeta(data []byte) (meta map[string]string, rows int64, err error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, 0, fmt.Errorf("lake: reading parquet footer: %w", err)
	}
	kv := f.Metadata().KeyValueMetadata
	meta = make(map[string]string, len(kv))
	for _, m := range kv {
		meta[m.Key] = m.Value
	}
	return meta, f.NumRows(), nil
}
