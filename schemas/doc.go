// Package schemas defines every table thresher writes to its lake: the Arrow
// schema, the Go row type (with parquet tags, used by readers and tests) and a
// format version for each. It imports nothing of thresher's.
//
// # Layout
//
// A lake is a folder (or an object-store prefix). Each table lives under its
// own prefix and is made only of immutable Parquet files (zstd) that appear by
// an atomic commit, so globbing LAKE/<table>/**/*.parquet shows exactly the
// committed rows:
//
//	raw/topic=T/partition=P/<first>-<last>.parquet   every valid record (RawVersion)
//	dlq/topic=T/partition=P/<first>-<last>.parquet   records that failed to decode (DLQVersion)
//
// <first> and <last> are Kafka offsets written as 20 zero-padded digits, so a
// name sorts like the offsets it carries. A segment accounts for every offset
// of its partition from first to last inclusive: a valid record in that range
// is in the raw segment, a malformed one in the DLQ segment whose range covers
// it. Within one table the ranges of a partition never overlap, so the same
// input record is never in two files. Each file carries the key/value metadata
// "thresher.table" and "thresher.version".
//
// # Table raw (version 1)
//
//	topic      string, required      Kafka topic the record was read from.
//	partition  int32, required       Kafka partition.
//	offset     int64, required       Kafka offset. (topic, partition, offset) is the
//	                                 record's identity; it is unique in the table.
//	kafka_ts   timestamp(ms, UTC)    Kafka record timestamp (producer or log-append time).
//	key        binary, optional      Kafka record key, as produced; null when absent.
//	id         string, optional      The producer's "id" field. Kept, but not unique:
//	                                 the real stream repeats some.
//	source     string, optional      The producer's "source" field (for example "wordnet").
//	domain     string, optional      The producer's "domain" field (for example "lexicon").
//	lang       string, optional      The producer's "lang" field (for example "en").
//	ts         timestamp(ms), opt.   The producer's "ts" field: RFC 3339 text, or a
//	                                 number of seconds (or of milliseconds when above
//	                                 1e11) since the Unix epoch.
//	text       string, required      The record's text, never empty, valid UTF-8.
//	attrs      string (JSON), opt.   Every other top-level field of the JSON object, as a
//	                                 JSON object in input order; null when there are none.
//
// With --format text the whole value is the text and the optional fields are null.
//
// # Table dlq (version 1)
//
//	topic, partition, offset, kafka_ts, key   as in raw.
//	value      binary, required      The record's value, byte for byte as consumed.
//	reason     string, required      Why it was rejected; one of the Reason* constants.
//
// The reasons, one per kind of fault, are stable strings meant for GROUP BY:
// ReasonInvalidJSON, ReasonNotObject, ReasonMissingText, ReasonTextNotString,
// ReasonEmptyText, ReasonInvalidUTF8, ReasonTooLarge and ReasonInvalidTS.
package schemas
