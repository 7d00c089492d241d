// Package lake is how thresher stores its tables: object keys and segment
// names, the Store that reaches storage, and the Parquet encoding of Arrow
// record batches. The tables themselves (columns, versions, metadata keys)
// are defined in package schemas.
//
// # Store
//
// A Store holds immutable objects under slash-separated keys and offers
// exactly what an S3-compatible object store can: put-if-absent (Put, which
// fails with ErrExist), whole replacement of small pointer objects such as
// checkpoints/CURRENT (Replace), Get (ErrNotExist), List by key prefix, sorted
// by key, and Delete. Nothing relies on appending to an object or renaming a
// folder. Keys are checked by CheckKey: relative, no empty, "." or ".."
// elements, no element starting with ".tmp-" (reserved for temporary files).
// Every Store is safe for concurrent use.
//
// Dir is the Store on a local folder. An object becomes visible only by an
// atomic commit:
//
//	write <dir>/.tmp-<random>-<name>.partial, fsync it
//	link it to <dir>/<name> (Put: fails if <name> exists) or rename it (Replace)
//	remove the temporary name, fsync <dir>
//
// so a reader globbing LAKE/<table>/**/*.parquet sees whole committed files
// only, and a crash leaves at worst a temporary file, which List never shows
// and a later OpenDir removes once it is 10 minutes old (younger ones may
// belong to another process writing the same lake). Folders are created as
// needed, and their parents fsynced. Mem is an in-memory Store for tests.
//
// # Segments
//
// A table of Kafka records is made of segments, one Parquet object per range
// of offsets of one partition:
//
//	<table>/topic=<topic>/partition=<partition>/<first>-<last>.parquet
//
// with first and last, inclusive, written as 20 zero-padded digits so that
// names sort like offsets (SegmentKey, ParseSegmentKey; Range). Topics are
// Kafka topic names: 1 to 249 characters of [a-zA-Z0-9._-]. The name is a
// function of the input range, so redoing a segment after a crash produces the
// same key and Put reports ErrExist instead of writing the records twice.
// Segments lists the committed ranges of a partition and NextOffset returns
// where its consumer resumes: after the last committed offset of that table.
// Put-if-absent protects identical names only: two writers of one partition
// must cut the same ranges, which claims ensure (below), and a stage that
// commits one range to several tables (raw and dlq) decides which of them
// marks its progress.
//
// # Readers resolve segments
//
// A segment contained in another is superseded: it is part of a run that a
// compaction merged and has not deleted yet. Two segments of a partition
// that share offsets without one containing the other overlap: two writers
// committed the same records, and no reader may guess which copy is right.
// Resolve splits a partition's ranges into live and superseded ones and
// returns *OverlapError (ErrOverlap) for an overlap; ListSegments and
// PartitionSegments list a table's or a partition's segments resolved that
// way, and ReadTable reads the live ones. Every reader of raw and dlq goes
// through them, so it reads each record once and fails loudly on an
// overlap. A plain glob of a table sees each record once too, except in the
// moment between a compaction's put and its deletes.
//
// # Claims
//
// A writer claims each span of offsets before any segment of it becomes
// visible: a small object, put-if-absent, keyed by the span's first offset,
//
//	_claims/topic=<topic>/partition=<partition>/<first>
//
// holding the span's last offset and the writer's owner token (JSON, with a
// version; EncodeClaim, DecodeClaim). The claims of a partition form one
// chain: each span starts where the previous one ends. A writer that takes
// a partition over (Takeover) resumes where the lake ends, walks the claims
// from there (spans an earlier holder claimed and may still write: it must
// cut exactly the same ones), and claims the first free offset alone. From
// then on an earlier holder, paused past its session timeout, can only reach
// offsets of the chain that hold another owner's claim: its PutClaim fails
// with ErrClaimed and it writes nothing, while a span it had claimed before
// has the same range, and so the same key, whoever writes it. Overlapping
// segments are impossible, not unlikely, and a writer keeps its position in
// memory instead of listing the partition before each commit.
//
// Claims are never deleted: a deleted claim could be won again by a writer
// paused before it. They are tiny, no reader or commit lists them (a writer
// lists a partition's claims only when the partition has no segment), and
// compaction leaves them alone, so merging segments never reopens one.
//
// For example, ingest takes a partition over and commits a span like this:
//
//	next, ok, err := lake.NextOffset(ctx, store, schemas.TableRaw, topic, p) // once, at takeover
//	cuts, err := lake.Takeover(ctx, store, topic, p, next, owner)
//	// ... consume from next into batch, cutting spans at the cuts' ends ...
//	err = lake.PutClaim(ctx, store, topic, p, lake.Claim{Range: r, Owner: owner}) // ErrClaimed: fenced
//	data, err := enc.Encode(batch) // enc: lake.NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion)
//	err = store.Put(ctx, lake.SegmentKey(schemas.TableRaw, topic, p, r), data) // ErrExist: same claim, already written
//
// # Compaction
//
// Segments roll every few seconds, so a partition would gather thousands a
// day. Compact and CompactPartition merge, in raw and then dlq, runs of
// adjacent segments each below a target size (DefaultCompactTarget, 64 MiB)
// into one segment <first>-<last>, however recent: the merged segment is
// put first (readers then resolve the run as superseded), then the run is
// deleted, so readers see the run or the merge, never both, never neither;
// a crash in between leaves superseded segments, which the next compaction
// deletes. Rows are copied as Parquet rows (values, nulls and order kept).
// A raw run is contiguous (never across a hole of offsets); a dlq run lies
// within one live raw segment, so each dlq segment stays a sub-range of one
// raw segment, as ingest writes them. Segments of another format version are
// left alone. A merge that finds another compaction's segment crossing its
// own deletes its own again (ErrCompactRace) before deleting anything else.
//
// # Parquet
//
// Encoder[T] writes Arrow record batches into one Parquet file in memory,
// with the schema of the Go row type T (schemas.Raw, schemas.DLQ): column
// names, order, optional columns, encodings and compression come from T's
// parquet tags; the key/value metadata carries schemas.MetaTable and
// schemas.MetaVersion. It hands parquet-go references into the Arrow buffers,
// column by column, without per-row reflection, and encodes columns and row
// groups on every core. Its defaults (zstd SpeedFastest, 1 MiB pages, row
// groups of at most 16 MiB of input or 128Ki rows, split evenly) were chosen
// by BenchmarkEncodeTuning on the real stream; the figures are in encode.go.
// ReadRows and FileMeta read such files back.
//
// # Checking a lake
//
// Check (thresher lake check) reads every segment of the raw, dlq and gaps
// tables and proves, per partition, that the segments account for each
// offset once. Each problem is a Finding naming table, topic, partition,
// offsets and the keys involved:
//
//   - stray (error): a .parquet object under raw/, dlq/ or gaps/ whose key
//     SegmentKey would not produce; a glob of the table reads it.
//   - overlap (error): two segments of a table share offsets and neither
//     contains the other (Resolve refuses them), or a gaps segment records
//     as missing offsets a raw segment holds. Every such pair is listed.
//   - superseded (info): a segment contained in another of its table, the
//     run a compaction merged, awaiting deletion; readers use the merge.
//   - hole (error): offsets between the partition's first and last raw or
//     gaps segment that no live raw or gaps range covers. Offsets before
//     the first segment are not the lake's (it may start anywhere).
//   - dlq_outside_raw (error): offsets of a dlq range that no raw range
//     covers. Ingest commits a span's dlq segment, over
//     [max(first, end of the dlq so far), last], just before its raw
//     segment over [first, last]; after a crash between the two, the redo
//     may cut the raw ranges elsewhere, so a dlq range lies in the raw
//     ranges together, not always in one.
//   - dlq_pending (warning): offsets of a dlq range past the partition's
//     last raw segment: that crash, before the redo; ingest commits the raw
//     segment when it resumes (and does not write those dlq rows again).
//   - unreadable (error): not a Parquet file of its table (its metadata
//     names another table, or it lacks the columns the check reads).
//   - row_outside_range (error): rows of another topic or partition, or
//     whose offset (a gaps row: its missing range) is outside the segment's
//     range. Offsets inside a range without a row are fine: transaction
//     markers and aborted records are consumed but land in no table.
//   - row_order (error): offsets not strictly increasing within a file.
//   - raw_and_dlq (error): an offset with a row in a live raw segment and
//     one in a live dlq segment.
//   - gap_rows (error): offsets of a gaps segment's range that none of its
//     rows records as missing.
//   - vanished (warning): a segment deleted between the listing and its
//     reading (a compaction ran meanwhile).
//
// Check reads only the topic, partition and offset columns, a bounded
// number of files at once, the dlq and gaps tables first and then the raw
// table against the dlq's offsets, so its memory does not grow with the
// raw table.
package lake
