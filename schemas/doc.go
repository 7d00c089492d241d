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
//	gaps/topic=T/partition=P/<first>-<last>.parquet  offsets the broker no longer had (GapsVersion)
//
// <first> and <last> are Kafka offsets written as 20 zero-padded digits, so a
// name sorts like the offsets it carries. A segment accounts for every offset
// of its partition from first to last inclusive: a valid record in that range
// is in the raw segment, a malformed one in the DLQ segment whose range covers
// it; an offset holding a transaction marker, or a record of an aborted
// transaction (ingest reads read_committed by default), is in the range of
// the segment that consumed it but in no table. Within one table the ranges
// of a partition never overlap, except that a compaction's merged segment
// contains the run it replaces until the run is deleted (readers skip a
// segment another contains: lake.ListSegments), so the same input record is
// never read twice. A dlq segment's range lies within one raw segment's.
// Each file carries the key/value metadata "thresher.table" and
// "thresher.version". Beside the tables, _claims/topic=T/partition=P/<first>
// holds ingest's claim on each span (package lake); it is not a table.
//
// # Table raw (version 2)
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
//	headers    list, optional        The Kafka record headers, in record order, each a
//	                                 struct {key string, required; value binary,
//	                                 optional (null when the header has no value)}; null
//	                                 when the record has none. (Header, HeaderType.)
//
// With --format text the whole value is the text and the optional fields are null.
//
// Version 1 had no headers column; version 2 added it at the end and changed
// nothing else. Readers read a version 1 segment's headers as null, so a lake
// may hold segments of both versions. DuckDB reads such a lake with
// read_parquet('LAKE/raw/**/*.parquet', union_by_name = true).
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
//
// # Table gaps (version 1)
//
// With on_gap: record, ingest lands one row, in a segment named by the
// missing range, for every run of offsets that retention (or DeleteRecords)
// removed before the lake consumed them; with the default on_gap: fail it
// stops instead. Raw, dlq and gaps ranges together cover each partition's
// offsets from its first segment on, each offset once.
//
//	topic, partition                 as in raw.
//	first_offset int64, required     First missing offset.
//	last_offset  int64, required     Last missing offset (inclusive).
//	detected_at  timestamp(ms, UTC)  When ingest found the gap.
//	reason       string, required    Why the offsets are missing: GapRetention.
//
// # Curate tables
//
// Package curate writes one file per window (a commit of a bounded number
// of input records), named by the window number:
//
//	audit/records/<window>.parquet   AuditRecord, one row for EVERY input record (AuditRecordsVersion)
//	audit/summary/<window>.parquet   AuditSummary, per window and domain (AuditSummaryVersion)
//	curated/<window>.parquet         Curated, the kept records (CuratedVersion)
//	curriculum/<window>.parquet      CurriculumPlan, the plan version of the window (CurriculumVersion)
//
// Table audit/records (version 1):
//
//	topic, partition, offset, kafka_ts, id, source, domain   as in raw; (topic, partition, offset) is unique
//	decision           kept, exact_duplicate, near_duplicate or filtered
//	reason             why it was not kept: "exact duplicate after normalisation", the estimated
//	                   Jaccard of a near duplicate, or the quality flag that filtered it; null when kept
//	cluster_id         "topic/partition/offset" of the first record of its duplicate cluster; never
//	                   null, and two records share it exactly when dedup judged them duplicates
//	dup_of             "topic/partition/offset" of the record it duplicates; null unless a duplicate
//	                   (with dedup.enabled: false, set on the duplicates it keeps too)
//	and the audit columns below.
//
// Audit columns (audit/records and curated):
//
//	length_chars        Unicode code points
//	length_words        whitespace-separated words
//	char_entropy        Shannon entropy of the characters, bits per character
//	word_entropy        Shannon entropy of the lower-cased words, bits per word
//	compression_ratio   bytes over an estimate of the zstd-compressed size (higher: more redundant)
//	dup_line_frac       Gopher: characters in lines that repeat an earlier line, over all characters
//	top2gram_frac, top3gram_frac, top4gram_frac
//	                    Gopher: characters covered by the most frequent repeated word n-gram
//	alpha_word_frac     words holding at least one letter, over all words
//	stop_words          English stop words (the, be, to, of, and, that, have, with)
//	lang_guess          en, de, fr, es, it, nl, pt, a script-implied language, "other" or "und"
//	script              Latin, Greek, Cyrillic, ..., "Mixed" or "None"
//	pii_flags           list: email, phone, ip, credit_card (Luhn-checked), secret
//	target_similarity   mean log importance weight of the record's hashed word 1- and 2-grams,
//	                    target against stream (DSIR); typicality in the stream without a target
//	quality_flags       list: too_short, too_long, low_alpha, high_dup_lines, high_ngram_repetition,
//	                    low_entropy, no_stop_words, high_compression, binary
//	difficulty          weighted mean of standardised word entropy, -compression_ratio,
//	                    log(1+words) and -target_similarity
//	curriculum_stage    0 (easiest) to stages-1: the difficulty quantile of the window's plan
//
// Table curated (version 1): topic, partition, offset, kafka_ts, id, source,
// domain, lang and text as in raw (text with PII replaced by placeholders
// when redacted is true), cluster_id, and the audit columns.
//
// Table audit/summary (version 1), one row per window and domain, domain "*"
// for all:
//
//	window, window_start, window_end   the window number and its kafka_ts range
//	records, kept, exact_duplicates, near_duplicates, filtered, dup_rate
//	mean_char_entropy, mean_word_entropy, mean_words
//	entropy_hist        char entropy counts in half-bit bins from 0 to 8
//	length_hist         word counts in bins 0, 1, 2-3, 4-7, ..., 1024+
//	distinct_bigram_ratio, vocab_size   diversity of up to 2000 sampled records
//	domain_share        records over the window's records
//	cross_domain_dups   duplicates whose original in the window has another domain
//	vocab_overlap       share of the domain's sampled vocabulary other domains also use
//	mean_target_similarity, target_gap   the domain's mean, and the window mean minus it
//	pii_records         records with a PII flag
//
// Table curriculum (version 1), per plan version, pacing and stage:
//
//	version, records    the window that made the plan and the records it has seen
//	stage, difficulty_lo, difficulty_hi, stage_records
//	pacing, start_fraction   linear, root or step, and the training progress in [0, 1]
//	                    at which the stage opens
//
// # Trainer tables
//
// The trainer (thresher train) writes two tables beside its checkpoints:
//
//	train/history/<first step>.parquet   TrainHistory, one row per optimiser step (TrainHistoryVersion)
//	eval/<step>.parquet                  Eval, the evaluation of the checkpoint at step (EvalVersion)
//
// <first step> and <step> are written as 20 zero-padded digits.
//
// Table train/history (version 2), one object per flush: the rows of the
// steps since the previous flush, written just before each checkpoint.
//
//	step               optimiser step (1, 2, ...); the name's step is the object's first row
//	time               when the step finished (UTC)
//	examples_seen      examples trained on up to this step, across restarts
//	tokens_seen        words of the source texts trained on, likewise
//	lr                 dense learning rate of the step
//	loss, loss_infonce, loss_mlm   total and per-objective loss of the step (loss_mlm 0 when off)
//	accuracy           instance-discrimination accuracy of the step's batch
//	std, alignment, uniformity, rankme, collapsed
//	                   the figures of the latest health check at or before the step
//	                   (every health_every steps; 0 before the first)
//	curriculum_stage   highest open curriculum stage of the step's batch
//	drift_mix_tv       total variation between the recent and the trailing domain mix
//	                   of the examples trained on, at the latest health check (version 2)
//	drift_alert        whether the domain-mix drift alert was raised then (version 2)
//
// Version 1 files lack the two drift columns; readers get 0 and false.
//
// Exactness: a checkpoint is committed only after the history of its steps,
// and a resumed run deletes every history object whose first step is after
// the checkpoint it resumed from, then replays those steps. So the rows
// with step <= the step of the checkpoint checkpoints/CURRENT names are
// exactly one per step 1..that step. Rows with a greater step are from
// the live run, or from a run that crashed after writing them: they may
// be deleted and rewritten (with other values unless the run is
// deterministic) when it resumes. Readers that need final figures filter
// on step <= CURRENT's step.
//
// Table eval (version 1), one object per evaluated checkpoint: the linear
// probe's scores on each labeled task and label budget, and one decision
// row of the promotion gate.
//
//	step               the checkpoint's optimiser step
//	time               when the evaluation finished (UTC)
//	checkpoint         the checkpoint's object key (checkpoints/<step>.ckpt)
//	task               task name (the task folder's base name); "" on the decision row
//	features           "encoder" (the checkpoint's frozen encoder); "" on the decision row
//	classifier         "linear"; "" on the decision row
//	labels_per_class   label budget; 0 means all
//	metric             "accuracy" or "macro_f1" (test split, mean over the draws),
//	                   or "decision" for the promotion decision
//	value              the metric; on the decision row the smallest difference,
//	                   candidate minus promoted, over the gated (accuracy) scores
//	std                sample standard deviation over the draws
//	draws              seeded label draws averaged
//	promoted           the gate's decision, on every row of the object
//	reason             why, with the figures (on every row)
//	baseline_step      the promoted checkpoint's step it was compared with, -1 for none
//
// The gate promotes a checkpoint unless some accuracy score both it and
// the promoted checkpoint have falls below the promoted one's by more than
// promote_tolerance; the first evaluated checkpoint is promoted.
// checkpoints/PROMOTED names the newest promoted checkpoint (the eval table
// is its record: a resume re-points PROMOTED at the newest promoted row).
// Objects after the resumed checkpoint's step are deleted by a resume, like
// history objects.
package schemas
