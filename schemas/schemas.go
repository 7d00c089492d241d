package schemas

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Table names: the first element of every object key of the table.
const (
	TableRaw  = "raw"
	TableDLQ  = "dlq"
	TableGaps = "gaps"
)

// Format versions. A change that a reader of the previous version would
// misread bumps the version.
const (
	RawVersion  = 2
	DLQVersion  = 1
	GapsVersion = 1
)

// Metadata keys written into every Parquet file's key/value metadata.
const (
	MetaTable   = "thresher.table"
	MetaVersion = "thresher.version"
)

// DLQ reasons. Each kind of malformed value has exactly one.
const (
	ReasonInvalidJSON   = "invalid_json"
	ReasonNotObject     = "not_json_object"
	ReasonMissingText   = "missing_text"
	ReasonTextNotString = "text_not_string"
	ReasonEmptyText     = "empty_text"
	ReasonInvalidUTF8   = "invalid_utf8"
	ReasonTooLarge      = "too_large"
	ReasonInvalidTS     = "invalid_ts"
)

// Reasons lists every DLQ reason, in a stable order.
var Reasons = []string{
	ReasonInvalidJSON, ReasonNotObject, ReasonMissingText, ReasonTextNotString,
	ReasonEmptyText, ReasonInvalidUTF8, ReasonTooLarge, ReasonInvalidTS,
}

// Raw is one row of the raw table.
type Raw struct {
	Topic     string    `parquet:"topic,dict,zstd"`
	Partition int32     `parquet:"partition,zstd"`
	Offset    int64     `parquet:"offset,delta,zstd"`
	KafkaTS   time.Time `parquet:"kafka_ts,timestamp(millisecond),delta,zstd"`
	Key       []byte    `parquet:"key,optional,zstd"`
	ID        string    `parquet:"id,optional,zstd"`
	Source    string    `parquet:"source,optional,dict,zstd"`
	Domain    string    `parquet:"domain,optional,dict,zstd"`
	Lang      string    `parquet:"lang,optional,dict,zstd"`
	TS        time.Time `parquet:"ts,optional,timestamp(millisecond),zstd"`
	Text      string    `parquet:"text,zstd"`
	Attrs     string    `parquet:"attrs,optional,json,zstd"`
	Headers   []Header  `parquet:"headers,optional,list"`
}

// Header is one Kafka record header, as the raw table keeps it.
type Header struct {
	Key   string `parquet:"key,dict,zstd"`
	Value []byte `parquet:"value,optional,zstd"`
}

// DLQ is one row of the dlq table.
type DLQ struct {
	Topic     string    `parquet:"topic,dict,zstd"`
	Partition int32     `parquet:"partition,zstd"`
	Offset    int64     `parquet:"offset,delta,zstd"`
	KafkaTS   time.Time `parquet:"kafka_ts,timestamp(millisecond),delta,zstd"`
	Key       []byte    `parquet:"key,optional,zstd"`
	Value     []byte    `parquet:"value,zstd"`
	Reason    string    `parquet:"reason,dict,zstd"`
}

// Gap reasons: why offsets of a partition never reached the lake.
const (
	// GapRetention: the partition's log start moved past offsets the lake
	// had not consumed (retention or DeleteRecords removed them).
	GapRetention = "retention"
)

// Gap is one row of the gaps table: a run of offsets of one partition that
// the broker no longer had when ingest asked for them.
type Gap struct {
	Topic       string    `parquet:"topic,dict,zstd"`
	Partition   int32     `parquet:"partition,zstd"`
	FirstOffset int64     `parquet:"first_offset,zstd"`
	LastOffset  int64     `parquet:"last_offset,zstd"`
	DetectedAt  time.Time `parquet:"detected_at,timestamp(millisecond),zstd"`
	Reason      string    `parquet:"reason,dict,zstd"`
}

var tsMillis = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// HeaderType is the Arrow type of one element of the raw table's headers
// column, field for field as Header.
var HeaderType = arrow.StructOf(
	arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true},
)

// RawSchema is the Arrow schema of the raw table, column for column as Raw.
var RawSchema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "kafka_ts", Type: tsMillis},
	{Name: "key", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "source", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "domain", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "lang", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: tsMillis, Nullable: true},
	{Name: "text", Type: arrow.BinaryTypes.String},
	{Name: "attrs", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "headers", Type: arrow.ListOfNonNullable(HeaderType), Nullable: true},
}, &arrow.Metadata{})

// DLQSchema is the Arrow schema of the dlq table, column for column as DLQ.
var DLQSchema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "kafka_ts", Type: tsMillis},
	{Name: "key", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "value", Type: arrow.BinaryTypes.Binary},
	{Name: "reason", Type: arrow.BinaryTypes.String},
}, &arrow.Metadata{})

// GapsSchema is the Arrow schema of the gaps table, column for column as Gap.
var GapsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "first_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "last_offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "detected_at", Type: tsMillis},
	{Name: "reason", Type: arrow.BinaryTypes.String},
}, &arrow.Metadata{})
