// Package sampler turns the curated tables of a lake into an endless
// stream of training batches: curriculum-paced, mixed over domains, with a
// replay reservoir of past data, two augmented views of every record and
// candidate negatives. A batch is a Go value (Batch) and an Arrow record
// (Batch.Record, FromRecord); Serve streams batches to remote trainers as
// Arrow IPC and Dial reads them back.
//
// # Reading the lake
//
// The sampler follows curate's commit point: curate.CommittedWindow names
// the newest committed window, and only windows up to it are read
// (curated/<window>.parquet, and curriculum/<window>.parquet for the plan),
// so a file a crashed curate left above it is never seen. The first Next
// loads every committed window, in order; then a background poll (every
// Config.Poll, at most four windows at a time) reads new windows, which
// the next Next takes in before it makes its batch. Batch production never
// waits for a poll once there is data; with none eligible, Next waits for
// the lake (or its ctx).
//
// The pool holds the newest PoolRecords records loaded (older ones leave
// it, oldest first). The replay reservoir keeps, per domain, a uniform
// sample of ReplayPerDomain records of everything the domain has had
// (bottom-k sampling on a seeded hash of the record, which makes it a
// function of the records loaded), so old domains stay represented after
// the pool moved on.
//
// # Making a batch
//
// Curriculum. Training progress t is the number of examples emitted over
// CurriculumExamples, capped at 1. The newest plan's rows of Config.Pacing
// (linear, root or step; curate/curriculum.go) give the progress at which
// each stage opens; records of a stage not yet open are not eligible (when
// no open stage has a record, the easiest stage that has one opens too).
// Batch.Stage is the highest open stage and Batch.Competence is c(t), with
// c0 recovered from the plan; pacing "none" opens every stage (c = 1).
//
// Mixture. Each fresh example picks a domain with probability p_d ∝ n_d
// (proportional), n_d^(1/T) (temperature) or Weights[d] (fixed), n_d being
// the domain's eligible pool records; then a stage of that domain ∝ its
// eligible records; then the next record of that (domain, stage) queue.
//
// Target weighting. On a lake curated with a target sample (curate
// --target, which leaves _curate/target.json), each record weighs
// w = exp(TargetWeight × target_similarity) (TargetRecordWeight), in the
// manner of DSIR importance resampling: n_d becomes the domain's summed
// weights, and a queue keeps a drawn record with probability
// min(1, w / w90), w90 being the 90th percentile of its live records'
// weights (a record it does not keep is consumed for the pass). So a
// record's chance to be drawn follows its capped importance weight, and a
// domain's share its importance mass. Status().Mixture and BaseMixture
// show each domain's share with and without the levers.
//
// Novelty boost. A domain sampled less than its mixture share recently (a
// domain that just appeared in the stream) catches up: with a_d its share
// of the last ~NoveltyExamples examples (an exponential moving average)
// and p_d its mixture share, its weight is multiplied by
// 1 + NoveltyBoost × max(0, 1 - a_d/p_d). The deficit closes as the
// domain is drawn, and the mixture returns to p_d.
//
// Epochs. A queue draws its records without replacement in a shuffled
// order (a seeded hash of epoch and record), so each record is used once
// per pass; at the end of a pass it starts the next in a new order. A
// record that arrives mid-pass falls in the current pass when its place in
// the order is still ahead, in the next otherwise. Batch.Epoch is the
// fewest passes completed by any queue that is being sampled; the sampler
// never runs dry: it keeps making batches, pass after pass.
//
// Replay. round(ReplayRatio × BatchSize) examples of each batch are drawn
// uniformly from the reservoir's eligible records not already in the
// batch (Example.Replay); a slot it cannot fill takes a fresh record. A
// batch holds its fresh examples first, then the replayed ones.
//
// Views. Each example carries two views of its source text's words
// (whitespace-separated). With Views "split" (the default) the words are
// dealt at random into two disjoint halves, each keeping the record's
// order (a record of two words or more leaves neither empty; a record of
// one word gives it to both), and each view's MaskedA/MaskedB lists the
// other view's words: the targets a word-prediction objective would
// predict. Views that share no words make the contrastive task topical
// rather than lexical, which probes better downstream (docs/results.md).
// With Views "augment" each view is built independently: a random crop (a
// contiguous window of at least 1-Strength×(1-CropMin) of the words), then
// token dropout (each word dropped with probability Strength×Dropout,
// never all), then span masking (Strength×MaskFraction of the words, in
// spans of geometric length with mean MaskSpan, at least one word left):
// each masked word is replaced by MaskToken ("[MASK]") in the view and
// listed in MaskedA/MaskedB in view order, so replacing the view's mask
// tokens in order by them gives back the cropped, dropped-out words.
//
// Negatives. A ring of the NegativePool records most recently emitted
// (the newest pool records before the first batch) supplies up to
// Negatives candidates per batch: records of the batch's domains first
// (harder), then of any domain; never of a cluster of the batch's
// examples, never twice the same cluster. Negatives carry no views.
//
// # Determinism and the cursor
//
// Every random choice comes from one PCG generator seeded by Config.Seed,
// or from seeded hashes. With the same lake contents, Config and cursor,
// the batches are the same bit for bit. Windows are taken in only at batch
// boundaries; when every window is committed before the sampler starts
// (the deterministic setting), all of them are loaded before the first
// batch and the result does not depend on timing. Windows that arrive
// while it runs are taken in at the first batch after a poll read them.
//
// Cursor returns the state after the last batch: the windows loaded (the
// pool, reservoir and queue members follow from them and are rebuilt by
// reading those windows again), the generator's state, each (domain,
// stage) queue's pass and position (its last drawn key, not a
// permutation), the negative ring (record numbers), counters and the drift
// histograms. It is versioned and checksummed (format in cursor.go).
// Restore on a fresh Sampler over the same lake continues exactly where
// the cursor was taken; a cursor that does not fit the lake (windows
// missing or changed) is an error wrapping ErrCursor.
//
// # Drift
//
// Status().Drift compares the newest loaded window with the examples
// emitted so far: the total variation distance of the domain mixes, and
// the population stability index (sum of (p-q) ln(p/q), bins floored at
// 1e-4) of word entropy (half-bit bins) and of length_words (power-of-two
// bins).
//
// # Arrow layout (BatchVersion 1)
//
// Schema: one row per example (role "example") then one per negative
// (role "negative"): topic, partition, offset, cluster_id, domain, text,
// words, stage, difficulty, char_entropy, word_entropy, length_words,
// view_a, view_b, masked_a and masked_b (list<utf8>), replay; and the
// batch's fields on every row: batch_seq, batch_stage, batch_competence,
// batch_plan_version, batch_epoch. No column has nulls. The schema's
// metadata holds thresher.table = "sampler/batch" and thresher.version.
//
// # Serving
//
// Serve gives each client an Arrow IPC stream (the schema, then one record
// per batch) of batches pulled from one shared Source: each batch goes to
// exactly one client. `thresher sample --listen HOST:PORT` serves a lake
// this way; Dial and Remote.Next read it (a trainer's --sampler).
//
// # Concurrency
//
// Next, Cursor, Restore and Close of a Sampler must not run concurrently
// with each other; Status may be called at any time. Register exports:
//
//	thresher_sampler_batches_total            batches made
//	thresher_sampler_examples_total{domain}   examples emitted, by domain
//	thresher_sampler_replayed_total           examples drawn from the reservoir
//	thresher_sampler_window                   newest committed window loaded
//	thresher_sampler_pool_records             records in the pool
//	thresher_sampler_reservoir_records        records in the replay reservoir
//	thresher_sampler_epoch                    passes over the sampled data
//	thresher_sampler_stage                    highest open curriculum stage
//	thresher_sampler_competence               curriculum competence c(t)
//	thresher_sampler_drift{measure}           domain_tv, entropy_psi, length_psi
package sampler
