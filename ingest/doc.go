// Package ingest lands Kafka records in the lake, exactly once.
//
// An Ingester is one member of a Kafka consumer group (kafka-go's
// ConsumerGroup and Generation API). Several processes, on any machines,
// share the partitions of the topics by joining the same group and writing to
// the same lake; adding or killing one rebalances the group. Each assigned
// partition is read by a franz-go client of its own that consumes exactly
// that partition from an exact offset, never resetting it.
//
// # Exactly once: the lake holds the offsets
//
// For every assigned partition the member reads where to resume from the
// lake, not from Kafka: the raw table's highest committed segment name carries
// the last offset it accounts for (see package schemas for the layout). It
// then takes the partition over (lake.Takeover): it walks the claims of spans
// that earlier holders made from there and claims the next free offset for
// itself. The member then fetches from that offset, decodes each value
// (Decoder), and appends it to the open span of the partition: a valid record
// to the raw Arrow batch, a malformed one to the DLQ batch with its reason. A
// span is committed when it holds roll_records records, roll_bytes bytes, or
// its first record is roll_interval old:
//
//  0. the span's offsets are claimed (lake.PutClaim, put-if-absent on its
//     first offset); spans an earlier holder claimed are cut exactly as
//     claimed instead, joining or splitting what the reader handed over;
//  1. the DLQ segment, if the span has malformed records, is put;
//  2. the raw segment, which is the span's commit point, is put (even with
//     zero rows when every record of the span was malformed);
//  3. the group offset is committed to Kafka, as a lag signal only.
//
// Each put is atomic and refuses to replace an object (lake.Store), so a crash
// at any moment leaves whole segments only. After a crash between 1 and 2 the
// redo starts at the same offset, cuts the same span (its claim) and skips the
// malformed records the DLQ already holds, so no record is lost and none is
// written twice.
//
// # Fencing
//
// A member paused past its session timeout (SIGSTOP, a long GC, a slow disk)
// wakes holding spans of partitions that the group gave to another member.
// The new holder's takeover claim sits on the chain of claims where the
// paused member's next span starts, so the paused member's claim fails
// (lake.ErrClaimed): the partition is fenced. The member drops what it holds
// of that partition, stops reading it, counts thresher_ingest_fenced_total
// and goes on with its other partitions; it neither fails nor disturbs the
// new holder. A span it had claimed before the pause has the same range as
// the new holder's copy, so both write the same key and the put-if-absent
// keeps one. Overlapping segments cannot happen, and the member's position
// lives in memory: a commit lists nothing, whatever the lake's age.
//
// # Compaction
//
// Every compact_interval (default 10m; 0 turns it off) the committer of each
// held partition, between two of its commits, merges runs of small segments
// of raw and dlq up to compact_target_size (default 64MiB; see
// lake.CompactPartition), so a partition holds few files however long it
// runs. `thresher compact` does the same for a whole lake by hand.
//
// # Transactions
//
// With isolation read_committed (the default) the fetch leaves out the
// records of aborted transactions and of transactions still open. Neither
// they nor the transaction markers land in any table, but their offsets do
// belong to a span: a span ends at the last offset consumed, a marker
// included, so the segments of a partition still follow each other without
// a hole. With read_uncommitted aborted records land like any other.
//
// # Missing offsets
//
// Before it reads a partition, and again whenever a fetch reports its
// position out of range, the member lists the partition's log start and end
// offsets. When the lake's position is below the log start (retention or
// DeleteRecords removed offsets the lake never held), on_gap decides: fail
// (default) stops the member with an error wrapping ErrOffsetGap that names
// the topic, the partition and the missing range; record commits the open
// span, then the range as one row of the gaps table (a segment named by the
// range, claimed like a span), and reads on from the log start. The lake's
// position is after the last offset its raw or gaps segments account for,
// so a recorded gap is not found again. Missing offsets that an earlier
// holder claimed without committing them stop the member whatever on_gap
// says: that holder may still write them as a raw segment of its claimed
// range, which a gaps segment would overlap. A position beyond the log end,
// or a topic id that changes while it is read, means the topic was deleted
// and recreated: ErrOffsetsBackwards, whatever on_gap says. (A topic
// recreated and refilled past the lake's position before the member looks
// cannot be told apart: the lake does not record topic ids.)
//
// At a rebalance or a stop (SIGTERM, ExitOnIdle) the generation's context
// ends: every partition stops fetching, commits its open span, and only then
// does the member rejoin or leave the group, so the next owner of a partition
// resumes exactly where this one stopped.
//
// # Idle
//
// With ExitOnIdle, a member drains and exits once, for that whole duration, it
// has held an assignment and every partition of its topics has been consumed
// to the high watermark: its own by its position, the others by what the lake
// holds. A partition whose owner was killed is therefore not caught up until
// its session expires, the group rebalances and the new owner commits it.
//
// # Health
//
// A member that runs without landing anything while it should is degraded:
// no fetch has returned records for Config.StallTimeout, while its
// partitions are not caught up (or while it holds no generation at all,
// when the group coordinator cannot be reached). A member seen caught up
// is not degraded, however long it has been idle. Status reports it
// (Status.Stalled: why, since when, the latest Kafka error), and so do
// `thresher ingest`'s /healthz and /readyz (503) and the degraded gauge.
// Status.Ready is set once the first generation knows where each of its
// partitions starts.
//
// Kafka errors (the client's own and those of fetches and group joins) are
// logged at WARN: the first of each kind at once, then one line per
// WarnInterval with the count of the others, so a broker that is down does
// not flood the log. Nothing more is needed to survive a broker restart:
// the generation ends (every partition commits what it holds), the member
// rejoins when the broker is back, and the next generation resumes from the
// lake.
//
// # Concurrency
//
// Each partition has a fetch-and-decode goroutine and a committer goroutine
// that encodes Parquet and writes the lake, so the stages overlap across
// cores; the hand-off between them is unbuffered, which bounds memory to two
// spans a partition (see Memory).
//
// # Memory
//
// memory_limit (default 512MiB) is a budget the member holds, however many
// partitions it is given: at each generation it is shared among the
// partitions held (BudgetFor). Each partition holds at once about two fetch
// responses, its open span (Arrow buffers grow by doubling) and the span
// being committed with its Parquet encoding, so
//
//	share = (memory_limit - min(64MiB, memory_limit/4)) / 2 / partitions
//	fetch size = roll size = share / 6, at least 64KiB
//
// with fetch_max_bytes and roll_bytes as upper bounds (a member with few
// partitions uses them as configured). Half of the budget after the reserve
// is left to the garbage collector, whose soft limit is memory_limit too
// (GOMEMLIMIT wins when set). A record larger than its partition's fetch
// size still lands: the broker returns the first batch of a fetch whole and
// the client accepts up to max(fetch_max_bytes, max_value_bytes) plus 1MiB.
//
// # Secured clusters
//
// Config.Security, SASL and TLS (and the same fields of ProduceConfig) take
// Kafka's security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL),
// sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), sasl.username,
// sasl.password_file (or the password from PasswordEnv), tls.ca_file and an
// optional client certificate, tls.cert_file and tls.key_file. Validate
// reads the files and lists every problem, including settings the protocol
// would ignore. Every client (the consumer group, the admin calls, the
// readers, the producer) connects through the same settings. At start,
// CheckBrokers and Produce turn a refused authentication into an error
// wrapping ErrAuthentication that names the user and mechanism, and a failed
// TLS handshake (an untrusted certificate, a listener that does or does not
// speak TLS, a missing client certificate) into one wrapping ErrTLS that
// says which. The password prints as [redacted] wherever the configuration
// is printed or logged.
//
// # Producing
//
// Produce feeds a topic from JSON Lines or text lines (gzip detected by its
// magic bytes), keyed by each record's "id" and hashed with murmur2 as Java
// and librdkafka clients do; it backs `thresher produce`, the demo and the
// benchmarks. It does not validate records: the consumer's DLQ judges them.
//
// # Metrics
//
// New registers these on the registry it is given:
//
//	thresher_ingest_records_total{topic}              valid records committed to raw
//	thresher_ingest_bytes_total{topic}                value bytes committed (raw and DLQ)
//	thresher_ingest_dlq_records_total{topic,reason}   malformed records committed to the DLQ
//	thresher_ingest_lag_records{topic,partition}      high watermark minus position, per assigned partition
//	thresher_ingest_commit_seconds                    histogram: encode and commit of one span
//	thresher_ingest_segments_total{table}             segments committed, raw, dlq or gaps
//	thresher_ingest_assigned_partitions               partitions held in the current generation
//	thresher_ingest_generations_total                 generations joined
//	thresher_ingest_idle                              1 while the member is idle
//	thresher_ingest_degraded                          1 while the member is degraded (see Health)
//	thresher_ingest_last_fetch_timestamp_seconds      unix time of the last fetch that returned records
//	thresher_ingest_fenced_total{topic}               partitions given up to a newer holder
//	thresher_ingest_compacted_segments_total          segments replaced by compaction (raw and dlq)
//	thresher_ingest_offset_gaps_total{topic,partition} gaps recorded in the gaps table (on_gap: record)
package ingest
