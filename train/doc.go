// Package train is thresher's online self-supervised trainer. This file
// documents its learner core: Learner, Encoder and their state format.
//
// # Model
//
// A text is split into whitespace-separated words (lower-cased unless
// Config.KeepCase; at most Config.MaxWords words). Its features are hashed
// word n-grams (Config.WordNgramMin..Max, default 1..2) and fastText-style
// character n-grams of every word written as "<word>"
// (Config.CharNgramMin..Max, default 3..5, counted in runes; words over 32
// runes get none; CharNgramMin -1 disables them). Each feature is hashed
// with xxhash into one of Config.Buckets rows (default 2^18) of an
// embedding table of width EmbedDim (128). The rows are mean pooled
// (EmbeddingBag), then projected by an MLP y = act(x W1 + b1) W2 + b2
// (act relu or gelu, widths EmbedDim -> HiddenDim (256) -> OutDim (128))
// and L2-normalised: z = y / |y|. The MLP's weights are gorgonia.org/tensor
// Dense tensors; its matrix products, and those of the loss against the
// queue, run through one sgemm seam (the variable BLAS names it: the
// package's AVX2/FMA kernel in the default build, gonum's pure-Go sgemm
// without AVX2 or with `-tags purego`, OpenBLAS's cblas_sgemm with `-tags
// openblas`; see Defaults and speed); the element-wise parts are loops over
// the tensors' backing slices. An empty text embeds as the normalised bias
// path.
//
// # Lexical channel and hybrid features
//
// Beside the dense encoder the learner keeps term statistics of the stream
// it trains on: for every stepped Example with a Text (the trainer passes
// the record's text), the number of texts holding each term, over
// Config.LexBuckets (2^20) hashed columns, and the number of texts. A
// term is a token or a pair of adjacent tokens (Terms: scikit-learn's
// default token pattern, lower-cased), as in the TF-IDF baseline. The
// counts are integers added atomically, so they are the same for any
// worker count, and they are part of the state (and of LoadEncoder's
// part), so an encoder carries the statistics of the stream it came from.
//
// EmbedHybrid joins the dense embedding with the text's TF-IDF vector over
// those statistics (sublinear term frequency 1 + ln tf times the smooth
// idf ln((1+N)/(1+df)) + 1, L2-normalised): the dense part scaled by
// cos(atan(LexWeight)) and the lexical part by sin(atan(LexWeight)), so
// the whole has unit length and LexWeight is the lexical part's weight
// against the dense part's. The lexical channel keeps what a 128-wide
// dense vector cannot: exact rare words (package names, section words),
// with weights learned from the stream, not from the labeled task. Nothing
// of it is trained by gradient; it costs one pass over each text's terms
// per step.
//
// # Objectives
//
// Each objective implements one small interface (objective.go): the
// learner featurises, pools and runs both encoders forward once per
// micro-batch, each objective computes its loss on that pass and adds its
// gradient with respect to the online outputs (and steps parameters of its
// own), and one backward pass carries the sum into the MLP and the
// embedding rows. The contrastive objective (contrastive.go) and the
// masked-token objective (maskedtoken.go) are the two today; another is a
// new file and a line in Learner.alloc.
//
// Every example carries two views, A and B, of one record. The online
// encoder embeds view A into the anchor q; a momentum (MoCo) encoder, an
// exponential moving average of the online encoder with Config.Momentum
// (0.99) applied after every optimiser update, embeds view B into the key
// k, with no gradient. Each anchor is contrasted against the keys of the
// whole micro-batch and a FIFO queue of past keys (Config.QueueSize, 1024;
// -1 for in-batch negatives only; see Defaults for why not 4096) with temperature Config.Temperature
// (0.1). With Config.Symmetric, view B's online embedding is also
// contrasted against view A's keys (twice the online work); the default is
// the one-directional MoCo v2 form. After each micro-batch its keys of
// view B enter the queue, with their cluster and record ids and the step.
//
// StepNegatives adds extra negatives to a micro-batch (the sampler's
// candidate pool: records of other clusters, mostly of the batch's
// domains): their text is embedded by the momentum encoder and joins the
// queue's keys for that micro-batch only, masked like them.
//
// A candidate is a false negative, and is masked out of the anchor's
// negatives (queue, extra and in-batch), when its Example.Cluster equals the
// anchor's, or its Example.Record does (Config.MaskFalseNegatives:
// cluster_record, cluster, record or none; empty ids never match). Ids are
// kept as 64-bit xxhash values.
//
// The loss of an anchor with positive logit s_p and unmasked negative
// logits a_1..a_N (logits are cosine similarities over the temperature) is
// the hard-negative objective of Robinson et al. (2021):
//
//	L = -s_p + log(e^{s_p} + N sum_j w_j e^{a_j}),  w = softmax(beta a)
//
// with Config.Beta >= 0 (default 0, which is exactly InfoNCE); the weights
// are differentiated through, not detached. The contrastive loss is the
// mean over anchors.
//
// The optional masked-token objective (Config.MLMWeight > 0; default off)
// predicts each word in Example.MaskedA (and MaskedB when symmetric) from
// the view's raw output y: the word is hashed into one of
// Config.MLMBuckets rows (2^16) of an output table U (zero at start) and
// scored with negative sampling, -log sigma(u_t.y) - sum_k log sigma(-u_k.y)
// over Config.MLMNegatives (5) uniformly drawn rows. Its loss is the mean
// over masked words. The total loss is ContrastiveWeight (1) times the
// contrastive loss plus MLMWeight times the masked-token loss.
//
// Every backward pass (pooling, MLP, normalisation, the loss with queue,
// masking and hard-negative weights, the masked-token head) is written by
// hand and checked against central differences in the tests.
//
// Instance-discrimination accuracy (StepStats.Accuracy) is the fraction of
// anchors whose most similar candidate (queue and batch keys, after
// masking) is their own positive.
//
// # Optimisers
//
// Dense weights: Adam with bias correction (Config.LR 1e-3, Beta1 0.9,
// Beta2 0.999, Epsilon 1e-8) and optional decoupled weight decay on the
// matrices (Config.WeightDecay, AdamW). Embedding rows, and the output
// table's rows: sparse Adagrad (Config.EmbedOptimizer adagrad; sgd is the
// alternative) at Config.EmbedLR (0.2), touching only the rows of the
// micro-batches. Gradients accumulate over Config.AccumSteps micro-batches
// (1), each scaled by 1/AccumSteps, before one update. Both learning rates
// follow one schedule over optimiser updates t: linear warm-up over
// WarmupSteps (200), then cosine (or linear, or none: Config.Decay) decay
// over DecaySteps (50,000) down to MinLRRatio (0.1) of the peak, which it
// keeps from then on, since training is continual.
//
// The momentum embedding table is updated lazily: a row that is about to
// change is first brought up to date (key = on + m^age (key - on)), then
// gets the update's EMA step; a row read later is brought to the current
// step on the fly. This equals the eager EMA of the whole table without
// touching 2^18 rows per update (TestLazyMomentum).
//
// # Health
//
// Learner.Health works on a rolling sample of the last Config.HealthSample
// (1024) anchors and their positive keys: Std, the mean over dimensions of
// the per-dimension standard deviation of the normalised embeddings (about
// 1/sqrt(OutDim) when spread, 0 when collapsed); Alignment, the mean
// squared distance between anchor and positive key; Uniformity, log mean
// exp(-2 |u-v|^2) over pairs of the sample; RankMe, the exponential of the
// entropy of the normalised singular values of the sample (computed from
// the eigenvalues of its OutDim x OutDim Gram matrix by a cyclic Jacobi
// solver); QueueStaleness, the mean age of the queued keys in optimiser
// steps; QueueLen. Collapsed is set when Std < Config.CollapseStd (default
// 0.2/sqrt(OutDim)) or RankMe < Config.CollapseRank (OutDim/16, at
// least 2: 8 at the defaults, where a healthy sample measures about 96),
// once the sample holds at least min(64, HealthSample) rows. Health costs
// about 0.1 s of one core at the defaults, outside the learner's lock;
// callers poll it every so many steps, it is not cached.
//
// # Concurrency
//
// Step, MarshalBinary and UnmarshalBinary serialise among themselves.
// Embed, Encoder, Health, Steps and Config are safe concurrently with all
// of them: the forward and backward passes only read the weights, and the
// short optimiser update takes the write lock. Config.Workers goroutines
// (default GOMAXPROCS) share the per-example work over a fixed partition
// of the micro-batch; sparse gradients are reduced per row in example
// order by the worker owning the row (row mod Workers). The large matrix
// products are cut into fixed output tiles (128 x 512 in the default build,
// 64 x 2048 under OpenBLAS), one single-threaded sgemm call each, which the
// workers share.
//
// # Determinism
//
// The same Config (with Seed) and the same sequence of micro-batches give a
// bit-identical MarshalBinary, for any Workers value: every reduction runs
// in a fixed order that does not depend on the partition (each output tile
// of a matrix product is one sgemm call, whichever worker makes it). The masked-token negatives come from a per-row generator
// seeded from the learner's RNG, which advances once per micro-batch. A
// learner stopped after any micro-batch (also inside a gradient
// accumulation), marshalled, and unmarshalled into a fresh
// NewLearner(cfg), continues bit-identically. The guarantee holds for one
// build on one CPU architecture: the sgemm kernels (AVX2/FMA, gonum,
// OpenBLAS) differ in the last bits, and OpenBLAS picks its kernels by CPU
// model at run time. The other assembly kernels (pooling, sparse gradients,
// row updates, the softmax) give exactly the bits of their Go loops, which
// the tests check.
//
// # State format
//
// MarshalBinary writes, little-endian (f32s: u64 count then IEEE-754
// float32s; u64s, i64s and u32s likewise):
//
//	"THRL" | u32 version (2) | u64 length + JSON of Config (Workers omitted)
//	online table f32s | W1, b1, W2, b2 f32s
//	u64 texts counted | u32s document frequencies (LexBuckets)   (LoadEncoder stops here)
//	u64 step | u64 micro-batches accumulated | u64 examples | u64 RNG state
//	momentum table f32s | i64s step each momentum row was last brought up to date
//	momentum W1, b1, W2, b2 f32s
//	embedding Adagrad accumulators f32s (0 items for sgd)
//	for W1, b1, W2, b2: Adam m, Adam v, accumulated gradient f32s
//	output table f32s, its accumulators f32s (0 items until the masked-token objective runs)
//	embedding row gradients: u32s rows (ascending), f32s rows x EmbedDim
//	output row gradients: u32s rows (ascending), f32s rows x OutDim
//	queue: u64 length, u64 head, keys f32s (QueueSize x OutDim), cluster u64s, record u64s, step i64s
//	health sample: u64 length, u64 position, anchors f32s, keys f32s
//	u32 CRC-32C (Castagnoli) of everything before it
//
// Version 1, written before the lexical channel, has no term statistics:
// it is read with empty ones (and the default LexBuckets), so an older
// checkpoint resumes and serves as it did, its hybrid features weighing
// every term alike until training counts the stream again; it is written
// back as version 2. A version above 2 is refused, naming both versions.
//
// At the defaults a state is about 410 MB (the online and momentum tables
// and the Adagrad accumulators are 128 MiB each, the term statistics 4 MiB). UnmarshalBinary requires
// the receiver's model fields (buckets, dimensions, activation, n-gram
// ranges, case folding, queue size, output-table size, embedding optimiser,
// health sample) to equal the state's, and keeps the receiver's other
// settings (learning rates, loss weights, Workers, ...), so a resumed run
// may change them. It decodes into new buffers and swaps them in, so a
// failed call leaves the learner unchanged (and memory briefly doubles).
// Every decoding error wraps ErrState; LoadEncoder(blob) checks the
// checksum and decodes only the online encoder.
//
// # Defaults and speed
//
// The defaults (2^18 x 128 table, 256 hidden, 128 out, batch of the
// caller's choosing) keep the model and optimiser state near 410 MB and
// learn on two cores within minutes. The table was 64 wide until a
// 128-wide one probed better on the tasks' dev splits for about 1.26x the
// CPU a step (docs/results.md). A step costs B x (queue+B) x OutDim
// multiply-adds twice, for the logits against the queue and their
// gradient, plus the MLP; a softmax over the same B x (queue+B) logits; and
// memory-bound work on the tables: pooling the online and momentum rows of
// every n-gram, accumulating their sparse gradients, and the Adagrad and
// EMA updates of the touched rows. The three 128 MiB tables are advised into
// transparent huge pages (madvise; Linux), which cuts the TLB misses of
// those random row accesses.
//
// Go does not vectorise loops, so on amd64 with AVX2 and FMA (checked at
// run time through golang.org/x/sys/cpu) each of those parts has a Go
// assembly kernel:
//
//   - sgemm_amd64.s: a packed single-precision GEMM (6 x 16 micro-kernel,
//     FMA, panels packed per 144 rows, 256 of k and 2048 columns), about
//     as fast as OpenBLAS on these shapes: on one core 100 GFLOP/s for the
//     logits and 85 for their gradient, against OpenBLAS's 96 and 94 and
//     gonum's 18 and 11 (BenchmarkSgemm, best of 3);
//   - rows_amd64.s: pooling a text's rows, the momentum rows brought up to
//     date on the fly, the sparse gradient accumulation and the row
//     updates, each over all rows of a text or shard in one call, with
//     prefetching a few rows ahead;
//   - softmax_amd64.s: the row maximum, the float32 exponential (the
//     Cephes polynomial of expf, 8 lanes) with its float64 sum, and the
//     gradient scaling. False negatives are found through an index of the
//     candidates' cluster and record hashes built once per product, not a
//     test per logit.
//
// Except sgemm, every kernel reproduces its Go loop bit for bit (the same
// operations in the same order, no fused multiply-add), so `-tags purego`,
// which keeps the Go loops and gonum's sgemm, trains the same model up to
// the products' rounding. BLAS says which sgemm a binary uses.
//
// BenchmarkStep reports examples/s, examples per CPU-second and tokens/s
// at 256 examples per micro-batch for queues of 0, 1k, 4k and 16k keys;
// scripts/bench-train.sh runs `thresher train` for one pass over the whole
// curated stream beside `fasttext skipgram -thread 2 -epoch 1` on the same
// text, in the default, openblas and purego builds. On the 2-core EPYC
// here, quiet (the README has the table):
//
//	build     queue   examples/s   tokens/s   vs fastText   tokens/CPU-s   vs fastText
//	fastText  -       -            94200      1.00          44528          1.00
//	default   -1      17955        643872     6.84          375067         8.42
//	default   1024    17048        611366     6.49          363101         8.15
//	default   4096    15470        554787     5.89          310757         6.98
//	default   16384   8376         300390     3.19          164312         3.69
//	openblas  1024    18720        671315     7.13          383377         8.61
//	openblas  4096    14707        527415     5.60          295078         6.63
//	purego    1024    4999         179260     1.90          102087         2.29
//	purego    4096    3731         133786     1.42          73890          1.66
//
// The trainer uses about 1.5 of the 2 cores: the sampler's batches, the
// element-wise MLP passes and the queue bookkeeping run on one goroutine.
//
// The queue defaults to 1024 keys, not 4096, because of BenchmarkQueueSize
// (THRESHER_QUEUE_BENCH=1 go test -run '^$' -bench QueueSize -benchtime 1x
// ./train/): the same 51,200 records of the real stream (200 micro-batches
// of 256), default dimensions, then held-out view retrieval among 1024
// records, the health figures and the near-duplicate pairs (mean cosine of
// template_debian and near_fortune positives minus that of random pairs):
//
//	queue   held-out acc   near-dup gap   alignment   uniformity   RankMe
//	0       0.921          0.924          0.180       -3.821       96.0
//	1024    0.911          0.922          0.166       -3.830       97.2
//	4096    0.908          0.920          0.167       -3.830       97.8
//	16384   0.913          0.910          0.169       -3.821       98.0
//
// (held-out accuracy differences of 0.01 are within one seed's noise: 1024
// trials; rerun with the openblas build and the float32 softmax, 1024 and
// 4096 measured 0.913 / 0.922 / 0.166 / -3.830 / 97.2 and 0.911 / 0.919 /
// 0.167 / -3.830 / 97.8; and with the assembly kernels, 0.918 / 0.923 /
// 0.166 / -3.829 / 97.2 and 0.910 / 0.920 / 0.167 / -3.830 / 97.8). A queue
// tightens alignment and raises the rank slightly, but 4096 and 16384 keys
// buy nothing over 1024 here, while the logits against the queue cost CPU:
// per CPU-second 4096 keys train about 14% fewer tokens than 1024 in the
// default build (table above; 28% with purego), 16384 keys 55%. A default
// of 4096 would also make checkpoints written with the old default
// unresumable under the new one (the queue size is part of the model).
// Larger queues remain a setting (queue_size).
//
// Beta and the masked-token objective stay off by default because neither
// helped in a measurement: 3 minutes of `thresher train` on the whole
// curated stream (about 3000 steps of 256), then `thresher eval` with a
// linear probe, 5 draws, test accuracy at 16 / 64 labels per class:
//
//	config              wordnet_lexname   debian_section
//	defaults            0.432 / 0.516     0.388 / 0.450
//	beta 0.5            0.376 / 0.480     0.377 / 0.439
//	mlm_weight 0.5      0.428 / 0.506     0.379 / 0.436
//
// # The service
//
// Trainer runs the learner as a long-lived service: it resumes from the
// lake's checkpoints/CURRENT (CheckpointStore; the object format is on
// Checkpoint.MarshalBinary), pulls batches from a sampler (in process, or
// a remote `thresher sample` over Arrow IPC), steps the learner with the
// batch and its candidate negatives, checkpoints every
// ServiceConfig.CheckpointSteps steps or CheckpointInterval, whichever
// comes first, and at a stop, and keeps training after it has seen every
// record (the sampler starts another pass). Handler serves /healthz,
// /readyz (503 until resumed), /metrics, GET /v1/status and POST /v1/embed;
// the metrics are listed on Trainer.
package train
