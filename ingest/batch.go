package ingest

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thresher-ml/thresher/schemas"
)

// Meta is the Kafka metadata of a record.
type Meta struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte             // nil when the record has no key
	Headers   []kgo.RecordHeader // the record's headers, in order
}

// metaBytes approximates the payload of a row's topic, partition, offset,
// kafka_ts and key.
func metaBytes(m Meta) int { return len(m.Topic) + 4 + 8 + 8 + len(m.Key) }

// RawBuilder accumulates the rows of one raw-table segment
// (schemas.RawSchema, same column order). It copies everything it is given,
// so the Record's and Meta's slices may be reused as soon as Append returns.
// It is not safe for concurrent use.
type RawBuilder struct {
	rb        *array.RecordBuilder
	topic     *array.StringBuilder
	partition *array.Int32Builder
	offset    *array.Int64Builder
	kafkaTS   *array.TimestampBuilder
	key       *array.BinaryBuilder
	id        *array.StringBuilder
	source    *array.StringBuilder
	domain    *array.StringBuilder
	lang      *array.StringBuilder
	ts        *array.TimestampBuilder
	text      *array.StringBuilder
	attrs     *array.StringBuilder
	headers   *array.ListBuilder
	header    *array.StructBuilder
	hkey      *array.StringBuilder
	hvalue    *array.BinaryBuilder
	bytes     int
}

// NewRawBuilder returns an empty RawBuilder that allocates from mem
// (memory.DefaultAllocator when nil).
func NewRawBuilder(mem memory.Allocator) *RawBuilder {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rb := array.NewRecordBuilder(mem, schemas.RawSchema)
	b := &RawBuilder{
		rb:        rb,
		topic:     column[*array.StringBuilder](rb, "topic"),
		partition: column[*array.Int32Builder](rb, "partition"),
		offset:    column[*array.Int64Builder](rb, "offset"),
		kafkaTS:   column[*array.TimestampBuilder](rb, "kafka_ts"),
		key:       column[*array.BinaryBuilder](rb, "key"),
		id:        column[*array.StringBuilder](rb, "id"),
		source:    column[*array.StringBuilder](rb, "source"),
		domain:    column[*array.StringBuilder](rb, "domain"),
		lang:      column[*array.StringBuilder](rb, "lang"),
		ts:        column[*array.TimestampBuilder](rb, "ts"),
		text:      column[*array.StringBuilder](rb, "text"),
		attrs:     column[*array.StringBuilder](rb, "attrs"),
	}
	b.headers = column[*array.ListBuilder](rb, "headers")
	b.header = b.headers.ValueBuilder().(*array.StructBuilder)
	b.hkey = b.header.FieldBuilder(0).(*array.StringBuilder)
	b.hvalue = b.header.FieldBuilder(1).(*array.BinaryBuilder)
	return b
}

// Append adds the row of a decoded record: nil slices become nulls, as do
// headers when the record has none, and kafka_ts is m.Timestamp in
// milliseconds (UTC).
func (b *RawBuilder) Append(m Meta, r Record) {
	b.topic.Append(m.Topic)
	b.partition.Append(m.Partition)
	b.offset.Append(m.Offset)
	b.kafkaTS.Append(arrow.Timestamp(m.Timestamp.UnixMilli()))
	appendBinary(b.key, m.Key)
	appendString(b.id, r.ID)
	appendString(b.source, r.Source)
	appendString(b.domain, r.Domain)
	appendString(b.lang, r.Lang)
	if r.HasTS {
		b.ts.Append(arrow.Timestamp(r.TS))
	} else {
		b.ts.AppendNull()
	}
	b.text.BinaryBuilder.Append(r.Text)
	appendString(b.attrs, r.Attrs)
	b.bytes += metaBytes(m) + len(r.ID) + len(r.Source) + len(r.Domain) + len(r.Lang) +
		8 + len(r.Text) + len(r.Attrs)
	if len(m.Headers) == 0 {
		b.headers.AppendNull()
		return
	}
	b.headers.Append(true)
	for _, h := range m.Headers {
		b.header.Append(true)
		b.hkey.Append(h.Key)
		appendBinary(b.hvalue, h.Value)
		b.bytes += len(h.Key) + len(h.Value)
	}
}

// Len returns the number of rows appended since the last NewRecordBatch.
func (b *RawBuilder) Len() int { return b.topic.Len() }

// Bytes returns the approximate payload size of the rows appended since the
// last NewRecordBatch (string and binary lengths plus 8 bytes per number),
// for rolling segments by size.
func (b *RawBuilder) Bytes() int { return b.bytes }

// NewRecordBatch returns the rows appended so far and resets the builder for
// the next segment. The caller must Release the batch.
//
// The builder then reserves room for as many rows and text bytes as the batch
// holds, since the next segment of a partition is most likely as large, so
// appends do not regrow and copy the column buffers.
func (b *RawBuilder) NewRecordBatch() arrow.RecordBatch {
	n, text := b.Len(), b.text.DataLen()
	b.bytes = 0
	rec := b.rb.NewRecordBatch()
	b.rb.Reserve(n)
	b.text.ReserveData(text)
	return rec
}

// Release frees the memory of rows appended and not yet returned. The
// builder must not be used afterwards.
func (b *RawBuilder) Release() { b.rb.Release() }

// DLQBuilder accumulates the rows of one dlq-table segment
// (schemas.DLQSchema, same column order). Like RawBuilder it copies what it
// is given and is not safe for concurrent use.
type DLQBuilder struct {
	rb        *array.RecordBuilder
	topic     *array.StringBuilder
	partition *array.Int32Builder
	offset    *array.Int64Builder
	kafkaTS   *array.TimestampBuilder
	key       *array.BinaryBuilder
	value     *array.BinaryBuilder
	reason    *array.StringBuilder
	bytes     int
}

// NewDLQBuilder returns an empty DLQBuilder that allocates from mem
// (memory.DefaultAllocator when nil).
func NewDLQBuilder(mem memory.Allocator) *DLQBuilder {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rb := array.NewRecordBuilder(mem, schemas.DLQSchema)
	return &DLQBuilder{
		rb:        rb,
		topic:     column[*array.StringBuilder](rb, "topic"),
		partition: column[*array.Int32Builder](rb, "partition"),
		offset:    column[*array.Int64Builder](rb, "offset"),
		kafkaTS:   column[*array.TimestampBuilder](rb, "kafka_ts"),
		key:       column[*array.BinaryBuilder](rb, "key"),
		value:     column[*array.BinaryBuilder](rb, "value"),
		reason:    column[*array.StringBuilder](rb, "reason"),
	}
}

// Append adds the row of a rejected record: its value byte for byte and the
// reason (one of the schemas.Reason* constants). A nil value is stored as an
// empty one, as the column is required.
func (b *DLQBuilder) Append(m Meta, value []byte, reason string) {
	b.topic.Append(m.Topic)
	b.partition.Append(m.Partition)
	b.offset.Append(m.Offset)
	b.kafkaTS.Append(arrow.Timestamp(m.Timestamp.UnixMilli()))
	appendBinary(b.key, m.Key)
	b.value.Append(value)
	b.reason.Append(reason)
	b.bytes += metaBytes(m) + len(value) + len(reason)
}

// Len returns the number of rows appended since the last NewRecordBatch.
func (b *DLQBuilder) Len() int { return b.topic.Len() }

// Bytes returns the approximate payload size of the rows appended since the
// last NewRecordBatch.
func (b *DLQBuilder) Bytes() int { return b.bytes }

// NewRecordBatch returns the rows appended so far and resets the builder for
// the next segment. The caller must Release the batch.
func (b *DLQBuilder) NewRecordBatch() arrow.RecordBatch {
	b.bytes = 0
	return b.rb.NewRecordBatch()
}

// Release frees the memory of rows appended and not yet returned. The
// builder must not be used afterwards.
func (b *DLQBuilder) Release() { b.rb.Release() }

// column returns the builder of the schema field called name. It panics when
// the schema has no such field or another type: a mismatch between this file
// and package schemas, caught by any test.
func column[T array.Builder](rb *array.RecordBuilder, name string) T {
	idx := rb.Schema().FieldIndices(name)
	if len(idx) != 1 {
		panic(fmt.Sprintf("ingest: schema has %d fields named %q", len(idx), name))
	}
	col, ok := rb.Field(idx[0]).(T)
	if !ok {
		panic(fmt.Sprintf("ingest: field %q is built by %T", name, rb.Field(idx[0])))
	}
	return col
}

// appendString appends v to a string column, or a null when v is nil,
// without converting it to a Go string.
func appendString(b *array.StringBuilder, v []byte) {
	appendBinary(b.BinaryBuilder, v)
}

func appendBinary(b *array.BinaryBuilder, v []byte) {
	if v == nil {
		b.AppendNull()
	} else {
		b.Append(v)
	}
}
