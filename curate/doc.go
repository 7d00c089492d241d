// Package curate audits, deduplicates and orders the raw table into the
// tables people query and the sampler follows.
//
// # The stage
//
// A Stage tails the raw table (package schemas) a window at a time. A
// window is up to WindowRecords input records: raw offsets not yet curated
// (at or past each partition's cursor) of the live raw segments
// (lake.ListSegments: a compaction's merged segment, not the run it
// replaces; partially overlapping segments stop the stage with
// lake.ErrOverlap), taken a segment at a time, at most a window's worth of
// offsets, round robin over the partitions. A merged segment that holds
// offsets already curated is read from the cursor on, so compaction never
// makes a record curated twice or skipped. For each
// record, in window order, it computes the audit metrics (Analyzer: lengths,
// entropies, compression ratio, Gopher repetition, alphabetic and stop
// words, language and script guesses, PII flags, quality flags), the
// similarity to the target domain (Target, DSIR-style hashed n-gram
// importance weights), the dedup decision (package dedup: exact and
// near-duplicate, cluster id, dup_of) and a difficulty score; then it
// decides: exact_duplicate or near_duplicate when dedup says so, filtered
// when a quality flag listed in Config.Drop is set, kept otherwise.
//
// The pure part of that work (metrics, features, dedup signatures) runs on
// every core, into a ring of reused chunks (so memory does not grow with the
// window); the dedup decisions run in order on a goroutine of their own,
// and what else depends on earlier records (target model, difficulty
// moments) runs in order on the stage's goroutine, so the outcome does not
// depend on the number of cores.
//
// # Tables
//
//	audit/records/<window>.parquet   one row for EVERY input record: decision, reason, cluster_id, dup_of, metrics
//	audit/summary/<window>.parquet   per window and domain ("*" for all): counts, duplicate rates,
//	                                 entropy and length histograms, diversity, vocabulary, balance,
//	                                 overlap between domains, gap to the target
//	curated/<window>.parquet         kept records with their audit columns, cluster id and stage
//	curriculum/<window>.parquet      the curriculum plan version of that window
//
// Columns are documented on the row types in package schemas.
//
// # Commits and crashes
//
// Before writing a window the stage puts its plan (_curate/plan/<window>.plan,
// the ranges of raw offsets it reads, per partition; not segment keys, which
// a compaction may delete before a redo or a replay reads them again; plans
// written as segment keys by earlier versions read as those keys' ranges). It then writes the window's four
// tables and, last, its state (_curate/state/<window>.state: the cursor of
// every raw partition, the target model, the difficulty moments and the
// window of the last saved dedup index), which is the commit point. The
// dedup index, hundreds of bytes a record, is not copied into every state:
// it is saved as an object of its own (_curate/index/<window>.dedup, put
// before the state that names it) once Config.IndexEvery input records have
// passed since the last save. On start the stage loads the newest state and
// the index it names, then replays the windows since through dedup (their
// plans and raw segments, signatures only: about 5 s per million records on
// 2 cores), which rebuilds the index exactly, since dedup is deterministic.
// A plan without a state is redone from that state, and a redo builds
// byte-identical files (everything is deterministic given the plan and the
// state), so a table file already there from the crashed run is kept as it
// is and no input record is ever in two files. Writing a window overlaps
// curating the next; only one window is written at a time. The two newest
// states are kept, with the index objects they name. Readers of the tables
// take windows up to CommittedWindow.
//
// # Target sample
//
// Config.Target names a file of texts from the domain the user cares about
// (ReadTargetFile gives the format: JSON Lines with a non-empty string
// "text" member, or plain text one record per line; gzip when named .gz;
// at least MinTargetTexts texts). Config.Validate reads it, and a file that
// is missing, empty, binary, not the gzip its name says, or holds lines
// without a usable text is listed with the other configuration problems,
// naming the first bad line; the error matches ErrTargetFile. The stage
// fits its target model on those texts when it starts on a lake it has
// never curated, and records the sample in _curate/target.json before its
// first window commits:
//
//	{"version": 1, "file": "train.jsonl.gz", "texts": 22034,
//	 "sha256": "<hex SHA-256 of the file's bytes>", "fitted_at": "2025-01-02T03:04:05Z"}
//
// ReadTargetInfo reads it back, telling downstream readers (the sampler)
// whether target_similarity measures a target sample or only the stream's
// typicality. A start that committed no window leaves it to the next fresh
// start, which replaces it (or deletes it, without a target); a resume
// keeps it and the model in the state, and warns when given another target
// file.
//
// # Configuration
//
// Config is read from a YAML file (keys as its yaml tags, the dedup and
// metrics sections included), then THRESHER_CURATE_<KEY> environment
// variables (the key path in upper case: THRESHER_CURATE_DEDUP_THRESHOLD),
// then flags; Validate lists every problem. The process's soft memory limit
// (--memory-limit, THRESHER_CURATE_MEMORY_LIMIT) defaults to 768 MiB plus
// 800 bytes per record the dedup index may hold (dedup max_records).
//
// # Curriculum
//
// The difficulty of a record is a weighted mean of four statistics, each
// standardised by the running mean and deviation of the records before it:
// word entropy, minus the compression ratio, log word count, minus target
// similarity (DifficultyWeights). Stages are quantiles of the difficulty of
// every record so far (Config.Stages, equal shares), and every window writes
// a new plan version giving, for the linear, root and step pacing of
// competence-based curricula, the training progress at which each stage
// opens. Every version is kept.
//
// # Metrics
//
//	thresher_curate_records_total{decision}   input records curated
//	thresher_curate_windows_total             windows committed
//	thresher_curate_window_seconds            histogram: curate one window
//	thresher_curate_dedup_index_bytes         memory of the dedup index
package curate
