// Package dedup decides, record by record, whether a text duplicates one
// seen before, exactly or nearly, and gives every record a cluster id. It
// keeps its state in memory and does no I/O beyond serialising that state
// (MarshalBinary): the curate stage commits it with the output it derived.
//
//	ix, err := dedup.NewIndex(dedup.Config{}) // defaults
//	...
//	for _, r := range records { // in offset order
//		res := ix.Add(dedup.RecordID{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, r.Text)
//		// res.Decision: Unique, ExactDuplicate or NearDuplicate
//		// res.ClusterID.String(): the cluster_id column, "topic/partition/offset"
//		// res.DupOf.String(): the dup_of column (empty for a unique record)
//	}
//	state, err := ix.MarshalBinary() // commit with the output
//
// # Pipeline
//
//  1. Normalize: NFKC, case folding, punctuation policy, whitespace folding
//     (see Normalize). ASCII text, most of it, takes a table-driven path
//     with no NFKC and no allocation.
//  2. Exact key: xxhash64 of the normal form. An exact duplicate is any
//     record whose normal form the index remembers.
//  3. Shingles: every window of ShingleWords words of the normal form, one
//     hash each (each word is hashed once and windows mix word hashes).
//  4. MinHash by one-permutation hashing with optimal densification: one
//     pass over the shingles fills NumPerm = Bands*Rows values, and every
//     Rows of them make one LSH key (band). Two texts with Jaccard
//     similarity J share at least one key with probability 1-(1-J^Rows)^Bands.
//  5. Verification: candidates (cluster representatives sharing a key) are
//     verified on a bottom-k sketch of their shingle hashes (the SketchSize
//     smallest). When both texts have fewer than SketchSize distinct
//     shingles (95% of the real stream) the similarity is their exact
//     Jaccard similarity; otherwise an estimate with standard error about
//     sqrt(J(1-J)/SketchSize). A record is a near duplicate of the
//     representative with the highest similarity at or above Threshold.
//
// Signer and AddSignature split steps 1-4 (pure, parallel) from 5 and the
// insertion (serial, in offset order): a caller with spare cores signs on
// worker goroutines, one Signer each, and adds the signatures in order.
//
// # Clusters, survivors and dup_of
//
// Every record gets a cluster id: the RecordID of its cluster's survivor,
// the first record of the cluster the index saw. A unique record is the
// survivor of a new cluster (its own id); two records share a cluster id
// exactly when dedup judged them duplicates. The survivor rule is "first
// seen survives": fed in offset order, that is the lowest offset of a
// partition; across partitions, whichever the caller added first. DupOf
// names the earlier record a duplicate duplicates: for an exact duplicate,
// the first record with the same normal form (the survivor, or a near
// duplicate of it); for a near duplicate, the survivor it was verified
// against. Following DupOf at most twice reaches the survivor.
//
// Clustering is a star (leader) clustering: only survivors are
// representatives in the LSH index, and a record joins the cluster of the
// survivor it matches, never the cluster of another member. So there are no
// chains: every member is within Threshold of its survivor (hence, Jaccard
// distance being a metric, within 2(1-Threshold) of every other member), and
// boilerplate cannot link unrelated texts through intermediaries as
// union-find does (issue 3 measured that union-find over exact word-3-shingle
// Jaccard at 0.55 joins 3.8% of the neg_debian_lowJ pairs; this clustering
// at 0.55 joins none). Emitted cluster ids are never renamed.
//
// Order. Exact-duplicate classes do not depend on the order records arrive
// in. A group of near duplicates that is a clique of the match relation
// (every pair shares an LSH key and is similar enough) forms the same
// cluster in any order; only its survivor changes. A chain (A~B and B~C but
// not A~C) is order dependent for any clustering that never renames an
// emitted id: fed A, B, C it gives {A, B}, {C}; fed B, A, C, one cluster.
// On the graded pairs 10% of the texts are in such chained groups (Debian
// templates), and between orders (reversed, shuffled, 3 or 8 partitions)
// 2 to 7 of the 5,199 scored pairs change status. A second source of order
// dependence is the candidate limit (MaxCandidates) in buckets crowded with
// boilerplate: at most 2 texts of the 7,374 were affected in any order.
// TestOrderAndPartitions checks all of this. Segment sizes, restarts and
// signing on several goroutines change nothing at all (TestSegmentsAndRestarts).
//
// # Defaults, and the trade-off they make
//
//	Punctuation   strip  ShingleWords 3     Bands 12  Rows 2  (NumPerm 24)
//	SketchSize    128    Threshold    0.55  MaxCandidates 64
//	MaxRecords    2,000,000 in 4 generations
//
// Word 3-shingles with punctuation stripped separate the graded pairs best:
// their exact Jaccard similarity is at least 0.60 for every near_fortune
// positive and about 0.8 for template_debian, and at most 0.49 for neg_debian_lowJ
// (shared boilerplate). Keeping punctuation makes "dog," and "dog" differ
// and drops some reflowed fortunes below 0.3; 2-shingles let negatives reach
// 0.66, 4-shingles let positives fall to 0.40. The threshold sits in the
// middle of the gap. Since verification is exact, LSH only has to propose
// the true pairs: 12 bands of 2 rows do so with probability 0.987 at
// J=0.55, 0.995 at 0.60 and 0.9997 at 0.70, with 12 keys per survivor; 20
// bands of 3 rows give the same recall for 50% more memory and 40% more
// time. Verified candidates per record (1.2 on a 50,000-record index, 3.2
// filling to 378,517) are the price of 2-row bands.
//
// The threshold is the knob. Mean pair scores over 5 orders, default bands
// (exact kinds have recall 1 and neg_same_category a false-positive rate of
// 0 throughout; both neg_random pairs above 0 are real near duplicates that
// random pairing labelled negative: spam variants and two cross-compiler
// descriptions at Jaccard 0.83):
//
//	threshold  template_debian  near_fortune  neg_debian_lowJ  neg_random
//	  0.40         0.980           0.999          0.380          0.005
//	  0.45         0.988           0.999          0.150          0.003
//	  0.50         0.999           0.999          0.008          0.002
//	  0.55         0.999           0.996          0.000          0.002
//	  0.60         1.000           0.996          0.000          0.002
//	  0.65         0.999           0.810          0.000          0.002
//	  0.70         0.999           0.665          0.000          0.002
//
// Lower thresholds join boilerplate siblings (false positives) and, because
// a record joins the most similar survivor, even pull true pairs apart;
// higher ones miss reworded fortunes (false negatives). With the defaults,
// feeding the 7,374 distinct texts of neardup/dev_pairs.jsonl.gz in file
// order (TestQualityDevPairs):
//
//	kind               pairs  same cluster  rate
//	exact_debian         368      368       recall 1.0000
//	exact_crossfile      479      479       recall 1.0000
//	template_debian      972      970       recall 0.9979
//	near_fortune         427      427       recall 1.0000
//	neg_debian_lowJ     1017        0       false positives 0.0000
//	neg_same_category   1017        0       false positives 0.0000
//	neg_random           919        2       false positives 0.0022
//
// On the whole real stream (378,517 records) the defaults find 3,477 exact
// and 22,786 near duplicates.
//
// # Cost
//
// One goroutine, the real stream (records average 256 bytes, 39 words),
// AMD EPYC, 2 cores shared with other work:
//
//	Normalize        0.61 µs/record  420 MB/s  (ASCII 0.57 µs, non-ASCII 1.6 µs)
//	Signer.Sign      1.8 µs/record   140 MB/s  (normalise, shingle, sketch, MinHash)
//	Index.Add        3.5 µs/record   285k records/s  (indexes of up to 50,000 records)
//	Index.Add        4.7 µs/record   210k records/s  (filling one index to 378,517)
//
// No allocation per record once buffers are warm. In a CPU profile of the
// fill, signing is 40% (normalisation 14%, word and shingle hashing 14%,
// one-permutation MinHash 6%, bottom-k selection 4%) and the index 58%:
// verification 18%, reading LSH buckets 15% (crowded boilerplate buckets
// are read up to 4*MaxCandidates deep), inserting band keys 12%, growing
// the tables 6%; much of the index's share is cache misses in tables larger
// than the cache. BenchmarkIndexAdd, BenchmarkIndexFill, BenchmarkSignature
// and BenchmarkNormalize measure this (bench_test.go has the commands).
//
// # Memory, and an index larger than memory
//
// Per distinct normal form remembered (Stats.BytesPerRecord, and the B/rec
// metric of the benchmarks): 362 bytes on the real stream: 32 for the record
// and cluster ids, 17 for the exact-key table, 11 for the representative,
// 123 for its sketch (4 bytes a distinct shingle, at most SketchSize) and
// 179 for its 12 band keys. Open-addressing tables double when 3/4 full, so
// the figure moves between about 300 and 450 with the table fill. Exact
// duplicates cost nothing; near duplicates only their exact key and ids.
//
// The bound: MaxRecords (default 2,000,000, about 0.7 GB) caps the distinct
// normal forms remembered. The index is split into Generations generations
// of MaxRecords/Generations; when the newest is full a new one opens and,
// beyond Generations, the oldest is forgotten whole, so the index remembers
// between the last 3/4 and all of the last MaxRecords distinct texts (with
// the default 4 generations). A record whose only earlier copies were
// forgotten is unique again and starts a new cluster; a near duplicate of a
// forgotten survivor starts a new one too. Stats.Evicted counts what was
// forgotten. A negative MaxRecords removes the bound.
//
// Beyond one machine's memory, the plan is the one DESIGN.md gives for
// curate: shard by key. Exact keys shard by content hash (a hash-keyed
// topic). Near duplicates shard by LSH key: each shard owns the band keys
// hashing to it and holds the representatives and sketches those keys
// point to, a record is sent to the shards of its 12 keys, which return
// their verified candidates, and the best one decides (as Spark MinHash
// dedup distributes). Index and Signature already separate the pure part
// (signing) from the part that needs the shared state.
//
// # Persistence
//
// MarshalBinary captures the whole state; UnmarshalBinary restores it, and
// the restored index decides every later record exactly as the original
// would have (TestPersistResume, also across evictions). Add is a pure
// function of the state and the record, so a snapshot need not accompany
// every commit: a snapshot taken after input position P, plus replaying the
// input after P, reproduces the state. The saved form is about as large as
// the memory (358 bytes per record on the real stream).
//
// A state loads into a zero Index (which adopts the saved Config) or into
// an Index made by NewIndex whose state fields (Punctuation, ShingleWords,
// NumPerm, Bands, Rows, SketchSize, Seed) equal the saved ones; otherwise
// UnmarshalBinary fails with ErrIncompatible. Threshold, MaxCandidates,
// MaxRecords and Generations are the receiver's and may change between
// runs (a smaller bound drops the oldest generations at once).
//
// Format version 1, little-endian, fixed width, no padding:
//
//	magic "thrdedup", version u32 = 1
//	config: punctuation u8; shingle words, num perm, bands, rows, sketch size u32;
//	        seed u64; threshold f64; max candidates u32; max records i64; generations u32
//	counters: added, unique, exact, near, verified, evicted i64
//	topics: count u32, then each: length u32, bytes
//	generations: count u32 (oldest first), then each:
//	  entries: count u32, then each: id, cluster as (topic index u32, partition i32, offset i64)
//	  representatives: count u32, then each: entry index u32, sketch length u32, sketch u32...
//	  exact table: slots u32 (0 or a power of two >= 64), used u32,
//	               keys u64 x slots (0 = empty), values (entry index) u32 x slots
//	  band table:  slots u32, used u32, keys u32 x slots, values (representative index) u32 x slots
//	crc32c (Castagnoli) u32 of everything before it
//
// Tables are open-addressing with linear probing from the slot given by
// the high 32 bits of key*0x9e3779b97f4a7c15 (masked); the band table holds
// one entry per (representative, band key), a key's entries in the order
// added. UnmarshalBinary checks everything (counts against the bytes left
// before allocating, indexes in range, table loads at most 3/4, generation
// sizes) and fails with ErrCorrupt or ErrVersion; FuzzUnmarshal holds it to
// that.
//
// # Concurrency
//
// An Index is not safe for concurrent use; a Signer neither (one per
// goroutine). Signatures are plain values: sign anywhere, add in order.
package dedup
