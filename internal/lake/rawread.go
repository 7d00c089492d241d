package lake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/thresher-ml/thresher/schemas"
)

// ReadRaw reads a raw segment into rows, as ReadRows[schemas.Raw] does, a
// column at a time: each string column's values are copied once into one
// buffer that the row strings point into, and dictionary values are shared.
// That is several times faster than building rows value by value, and
// leaves the garbage collector a few large objects instead of one per
// string. A file whose columns are not those of schemas.Raw is read with
// ReadRows.
func ReadRaw(data []byte) (_ []schemas.Raw, err error) {
	f, err := openRaw(data)
	if err != nil {
		return nil, err
	}
	return readRawInto(f, data, make([]schemas.Raw, 0, min(f.NumRows(), 1<<20)))
}

// RawFile is an opened raw segment: NumRows tells how many rows ReadInto
// fills, so that a caller reading many segments in parallel can lay them
// out in one slice.
type RawFile struct {
	f    *parquet.File
	data []byte
}

// OpenRaw opens a raw segment's footer.
func OpenRaw(data []byte) (*RawFile, error) {
	f, err := openRaw(data)
	if err != nil {
		return nil, err
	}
	return &RawFile{f, data}, nil
}

// NumRows returns the rows of the segment.
func (r *RawFile) NumRows() int { return int(r.f.NumRows()) }

// ReadInto reads the segment's rows into dst, which must hold exactly
// NumRows rows, as ReadRaw would return them.
func (r *RawFile) ReadInto(dst []schemas.Raw) error {
	if len(dst) != r.NumRows() {
		return fmt.Errorf("lake: reading %d raw rows into %d", r.NumRows(), len(dst))
	}
	got, err := readRawInto(r.f, r.data, dst[:0])
	if err == nil && (len(got) != len(dst) || (len(got) > 0 && &got[0] != &dst[0])) {
		err = fmt.Errorf("lake: raw segment read %d rows, its footer says %d", len(got), len(dst))
	}
	return err
}

func openRaw(data []byte) (_ *parquet.File, err error) {
	defer recoverCorrupt(&err)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("lake: reading parquet rows: %w", err)
	}
	if n := f.NumRows(); n < 0 || n > maxRawRows {
		return nil, fmt.Errorf("lake: reading parquet rows: a file of %d rows", n)
	}
	return f, nil
}

// readRawInto appends the rows of f to rows.
func readRawInto(f *parquet.File, data []byte, rows []schemas.Raw) (_ []schemas.Raw, err error) {
	defer recoverCorrupt(&err)
	cols := map[string]int{}
	headers := [2]int{-1, -1} // key, value: absent from version 1 segments
	withHeaders := false
	for i, path := range f.Schema().Columns() {
		if len(path) == 1 {
			cols[path[0]] = i
		}
		if path[0] == "headers" {
			withHeaders = true
			for k, want := range headerColumns {
				if slices.Equal(path, want) {
					headers[k] = i
				}
			}
		}
	}
	fallback := withHeaders && !headerLayout(f.Schema(), headers)
	for _, name := range rawColumns {
		if _, ok := cols[name]; !ok {
			fallback = true
		}
	}
	if fallback {
		other, err := ReadRows[schemas.Raw](data)
		return append(rows, other...), err
	}
	for _, rg := range f.RowGroups() {
		n := int(rg.NumRows())
		if n < 0 || n > maxRawRowGroup {
			return nil, fmt.Errorf("lake: reading parquet rows: a row group of %d rows", n)
		}
		base := len(rows)
		rows = slices.Grow(rows, n)[:base+n]
		part := rows[base:]
		chunks := rg.ColumnChunks()
		for _, name := range rawColumns {
			c := &rawColumn{rows: part, name: name}
			if err := c.read(chunks[cols[name]]); err != nil {
				return nil, fmt.Errorf("lake: reading parquet column %s: %w", name, err)
			}
			if c.row != n {
				return nil, fmt.Errorf("lake: reading parquet column %s: %d values for %d rows", name, c.row, n)
			}
		}
		if withHeaders {
			if err := readHeaders(part, chunks[headers[0]], chunks[headers[1]]); err != nil {
				return nil, fmt.Errorf("lake: reading parquet column headers: %w", err)
			}
		}
	}
	return rows, nil
}

// headerColumns are the paths of the headers column's leaves (key, value)
// in the three-level LIST layout.
var headerColumns = [2][]string{
	{"headers", "list", "element", "key"},
	{"headers", "list", "element", "value"},
}

// headerLayout reports whether the headers leaves found are those of
// schemas.Raw: an optional list (definition level 1 when present, 2 for an
// element), a required key and an optional value.
func headerLayout(s *parquet.Schema, idx [2]int) bool {
	if idx[0] < 0 || idx[1] < 0 {
		return false
	}
	for k, wantDef := range [2]int{2, 3} {
		leaf, ok := s.Lookup(headerColumns[k]...)
		if !ok || leaf.MaxRepetitionLevel != 1 || leaf.MaxDefinitionLevel != wantDef {
			return false
		}
	}
	return true
}

// levelled is a repeated byte-array column of a row group: its levels, and
// its non-null values in order.
type levelled struct {
	rep, def []byte
	values   [][]byte
}

func readLevelled(chunk parquet.ColumnChunk, maxDef byte) (*levelled, error) {
	var l levelled
	var dict [][]byte
	pages := chunk.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return &l, nil
		}
		if err != nil {
			return nil, err
		}
		err = l.page(p, maxDef, &dict)
		parquet.Release(p)
		if err != nil {
			return nil, err
		}
	}
}

func (l *levelled) page(p parquet.Page, maxDef byte, dict *[][]byte) error {
	n := int(p.NumValues())
	rep, def := p.RepetitionLevels(), p.DefinitionLevels()
	if len(rep) != n || len(def) != n {
		return fmt.Errorf("%w: %d values, %d repetition and %d definition levels", errRawColumn, n, len(rep), len(def))
	}
	present := 0
	for _, d := range def {
		if d > maxDef {
			return fmt.Errorf("%w: definition level %d above %d", errRawColumn, d, maxDef)
		}
		if d == maxDef {
			present++
		}
	}
	l.rep, l.def = append(l.rep, rep...), append(l.def, def...)
	values := p.Data()
	if d := p.Dictionary(); d != nil {
		if *dict == nil || len(*dict) != d.Len() {
			*dict = make([][]byte, d.Len())
			for i := range *dict {
				(*dict)[i] = bytes.Clone(d.Index(int32(i)).ByteArray())
			}
		}
		idx := values.Int32()
		if len(idx) != present {
			return fmt.Errorf("%w: %d dictionary indexes for %d values", errRawColumn, len(idx), present)
		}
		for _, k := range idx {
			if k < 0 || int(k) >= len(*dict) {
				return fmt.Errorf("%w: dictionary index %d of %d", errRawColumn, k, len(*dict))
			}
			l.values = append(l.values, (*dict)[k])
		}
		return nil
	}
	if values.Kind() != encoding.ByteArray {
		return fmt.Errorf("%w: value kind %v", errRawColumn, values.Kind())
	}
	buf, offs := values.ByteArray()
	if present == 0 {
		return nil
	}
	if len(offs) != present+1 || offs[0] > offs[len(offs)-1] || int(offs[len(offs)-1]) > len(buf) {
		return fmt.Errorf("%w: byte array offsets", errRawColumn)
	}
	own := bytes.Clone(buf[offs[0]:offs[len(offs)-1]])
	base := offs[0]
	for i := range present {
		lo, hi := offs[i]-base, offs[i+1]-base
		if lo > hi || int(hi) > len(own) {
			return fmt.Errorf("%w: byte array offsets", errRawColumn)
		}
		l.values = append(l.values, own[lo:hi:hi])
	}
	return nil
}

// readHeaders fills the Headers of rows, one row group, from the key and
// value leaves of the headers column: a null list leaves Headers nil.
func readHeaders(rows []schemas.Raw, keyChunk, valueChunk parquet.ColumnChunk) error {
	k, err := readLevelled(keyChunk, 2)
	if err != nil {
		return err
	}
	v, err := readLevelled(valueChunk, 3)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.rep, v.rep) || len(k.def) != len(v.def) {
		return fmt.Errorf("%w: key and value levels differ", errRawColumn)
	}
	elems := 0
	for _, d := range k.def {
		if d == 2 {
			elems++
		}
	}
	if elems != len(k.values) {
		return fmt.Errorf("%w: %d keys for %d elements", errRawColumn, len(k.values), elems)
	}
	hs := make([]schemas.Header, elems)
	row, e, start, vi := -1, 0, 0, 0
	for x, d := range k.def {
		if k.rep[x] == 0 {
			if row++; row >= len(rows) {
				return fmt.Errorf("%w: more lists than rows", errRawColumn)
			}
			start = e
		} else if row < 0 || d != 2 || k.rep[x] != 1 {
			return fmt.Errorf("%w: repetition level %d", errRawColumn, k.rep[x])
		}
		switch d {
		case 0: // null: no headers
		case 1:
			rows[row].Headers = hs[e:e:e]
		case 2:
			hs[e].Key = string(k.values[e])
			switch v.def[x] {
			case 3:
				if vi >= len(v.values) {
					return fmt.Errorf("%w: more header values than stored", errRawColumn)
				}
				hs[e].Value = v.values[vi]
				vi++
			case 2:
			default:
				return fmt.Errorf("%w: header value definition level %d", errRawColumn, v.def[x])
			}
			e++
			rows[row].Headers = hs[start:e:e]
		}
	}
	if row+1 != len(rows) || vi != len(v.values) {
		return fmt.Errorf("%w: %d lists for %d rows", errRawColumn, row+1, len(rows))
	}
	return nil
}

// maxRawRowGroup and maxRawRows bound the rows of one row group and of a
// file ReadRaw accepts, so that a damaged footer cannot make it allocate
// without bound.
const (
	maxRawRowGroup = 1 << 22
	maxRawRows     = 1 << 26
)

var rawColumns = []string{"topic", "partition", "offset", "kafka_ts", "key", "id", "source", "domain", "lang", "ts", "text", "attrs"}

// rawColumn fills one column of rows from the pages of its chunk.
type rawColumn struct {
	rows []schemas.Raw
	name string
	row  int
	dict []string // the strings of the current dictionary
}

var errRawColumn = errors.New("unexpected page layout")

func (c *rawColumn) read(chunk parquet.ColumnChunk) error {
	pages := chunk.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		err = c.page(p)
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}

func (c *rawColumn) page(p parquet.Page) error {
	if len(p.RepetitionLevels()) > 0 {
		return errRawColumn
	}
	n := int(p.NumValues())
	if c.row+n > len(c.rows) {
		return fmt.Errorf("%w: more values than rows", errRawColumn)
	}
	def := p.DefinitionLevels()
	if len(def) != 0 && len(def) != n {
		return errRawColumn
	}
	present := func(i int) bool { return len(def) == 0 || def[i] != 0 }
	values := p.Data()
	var strs []string
	var raw [][]byte // the key column's values
	var ints32 []int32
	var ints64 []int64
	if d := p.Dictionary(); d != nil {
		if c.dict == nil || len(c.dict) != d.Len() {
			c.dict = make([]string, d.Len())
			for i := range c.dict {
				c.dict[i] = string(d.Index(int32(i)).ByteArray())
			}
		}
		idx := values.Int32()
		strs = make([]string, len(idx))
		for i, k := range idx {
			if k < 0 || int(k) >= len(c.dict) {
				return fmt.Errorf("%w: dictionary index %d of %d", errRawColumn, k, len(c.dict))
			}
			strs[i] = c.dict[k]
		}
	} else {
		switch values.Kind() {
		case encoding.ByteArray:
			buf, offs := values.ByteArray()
			if len(offs) == 0 {
				break
			}
			if offs[0] > offs[len(offs)-1] || int(offs[len(offs)-1]) > len(buf) {
				return fmt.Errorf("%w: byte array offsets", errRawColumn)
			}
			own := bytes.Clone(buf[offs[0]:offs[len(offs)-1]])
			base := offs[0]
			if c.name == "key" {
				raw = make([][]byte, len(offs)-1)
			} else {
				strs = make([]string, len(offs)-1)
			}
			for i := range len(offs) - 1 {
				lo, hi := offs[i]-base, offs[i+1]-base
				if lo > hi || int(hi) > len(own) {
					return fmt.Errorf("%w: byte array offsets", errRawColumn)
				}
				switch {
				case raw != nil:
					raw[i] = own[lo:hi:hi]
				case hi > lo:
					strs[i] = unsafe.String(&own[lo], int(hi-lo))
				}
			}
		case encoding.Int32:
			ints32 = values.Int32()
		case encoding.Int64:
			ints64 = values.Int64()
		default:
			return fmt.Errorf("%w: value kind %v", errRawColumn, values.Kind())
		}
	}
	v := 0 // the next non-null value
	for i := range n {
		r := &c.rows[c.row+i]
		if !present(i) {
			continue
		}
		switch c.name {
		case "partition":
			if v >= len(ints32) {
				return errRawColumn
			}
			r.Partition = ints32[v]
		case "offset", "kafka_ts", "ts":
			if v >= len(ints64) {
				return errRawColumn
			}
			switch c.name {
			case "offset":
				r.Offset = ints64[v]
			case "kafka_ts":
				r.KafkaTS = time.UnixMilli(ints64[v]).UTC()
			case "ts":
				r.TS = time.UnixMilli(ints64[v]).UTC()
			}
		case "key":
			if v >= len(raw) {
				return errRawColumn
			}
			r.Key = raw[v]
		default:
			if v >= len(strs) {
				return errRawColumn
			}
			s := strs[v]
			switch c.name {
			case "topic":
				r.Topic = s
			case "id":
				r.ID = s
			case "source":
				r.Source = s
			case "domain":
				r.Domain = s
			case "lang":
				r.Lang = s
			case "text":
				r.Text = s
			case "attrs":
				r.Attrs = s
			}
		}
		v++
	}
	c.row += n
	return nil
}
