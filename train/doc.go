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
// embedding table of width EmbedDim (64). The rows are mean pooled
// (EmbeddingBag), then projected by an MLP y = act(x W1 + b1) W2 + b2
// (act relu or gelu, widths EmbedDim -> HiddenDim (256) -> OutDim (128))
// and L2-normalised: z = y / |y|. The MLP's weights are gorgonia.org/tensor
// Dense tensors; its matrix products, and those of the loss against the
// queue, run through BLAS sgemm (the constant BLAS names it: gonum's pure-Go
// sgemm in the default build, OpenBLAS's cblas_sgemm through cgo with
// `-tags openblas`, see Speed); the element-wise parts are loops over the
// tensors' backing slices. An empty text embeds as the normalised bias path.
//
// # Objectives
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
// products are cut into fixed output tiles (64 x 64 under gonum, 64 x 2048
// under OpenBLAS), one single-threaded sgemm call each, which the workers
// share.
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
// build on one CPU architecture: the gonum and openblas builds differ in
// the last bits, and OpenBLAS picks its kernels by CPU model at run time.
//
// # State format
//
// MarshalBinary writes, little-endian (f32s: u64 count then IEEE-754
// float32s; u64s, i64s and u32s likewise):
//
//	"THRL" | u32 version (1) | u64 length + JSON of Config (Workers omitted)
//	online table f32s | W1, b1, W2, b2 f32s        (LoadEncoder stops here)
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
// At the defaults a state is about 200 MB (the online and momentum tables
// and the Adagrad accumulators are 64 MiB each). UnmarshalBinary requires
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
// The defaults (2^18 x 64 table, 256 hidden, 128 out, batch of the
// caller's choosing) keep the model and optimiser state near 200 MB and
// learn on two cores within minutes. BenchmarkStep reports examples/s,
// examples per CPU-second and tokens/s at 256 examples per micro-batch for
// queues of 0, 1k, 4k and 16k keys; scripts/bench-train.sh runs `thresher
// train` on the whole curated stream beside `fasttext skipgram -thread 2
// -epoch 1` on the same text.
//
// BLAS: the default build multiplies with gonum's pure-Go sgemm
// (gonum.org/v1/gonum/blas/gonum, SSE kernels); `go build -tags openblas`
// links OpenBLAS's cblas_sgemm through cgo (libopenblas-dev, AVX2/AVX-512
// kernels, run single-threaded per tile). For the logits' shapes (256 x
// 128 by 128 x 4352 and back) one core of the shared machine here did
// about 5 GFLOP/s with gonum and 70 with OpenBLAS. The constant BLAS says
// which one a binary uses. A step costs B x (queue+B) x OutDim multiply-adds twice for the
// logits against the queue and their gradient, plus the MLP; the rest is
// memory-bound: pooling the online and momentum rows of every n-gram,
// accumulating their sparse gradients and the Adagrad and EMA updates of
// the touched rows. The three 64 MiB tables are advised into transparent
// huge pages (madvise; Linux), which cuts the TLB misses of those random
// row accesses. The softmax uses a float32 exponential (2 ulp).
//
// BenchmarkStep, examples per CPU-second at 256 examples per micro-batch
// (-benchtime 20x, two rounds, on a heavily shared 2-core machine; the
// earlier code measured in the same rounds):
//
//	queue   earlier   gonum build   openblas build
//	1024    2470      2830          3700
//	4096    1660      1960          2790
//
// scripts/bench-train.sh (DURATION=30s, on a curated lake of the whole
// stream: 352,114 records, 13.4M words; early in the curriculum the
// examples average about 22 words) on a 2-core EPYC shared with other jobs
// (load average about 4: fastText's two threads and each thresher run got
// one core's worth, 98-100% CPU, so wall rates compare; fastText ran at
// 21.5k words/s/thread, against about 53k with the machine to itself):
//
//	build     queue   examples/s   tokens/s   vs fastText   tokens/CPU-s   vs fastText   peak RSS MB
//	fastText  -       -            43016      1.00          40264          1.00          1101
//	gonum     -1      4674         106499     2.48          106499         2.64          1046
//	gonum     1024    3590         79237      1.84          79575          1.98          1052
//	gonum     4096    2265         45661      1.06          45937          1.14          1065
//	gonum     16384   1084         20804      0.48          20899          0.52          1117
//	openblas  -1      5277         124424     2.89          125530         3.12          1059
//	openblas  1024    4811         109829     2.55          109947         2.73          1069
//	openblas  4096    3467         76160      1.77          76612          1.90          1082
//	openblas  16384   1785         34396      0.80          34647          0.86          1131
//
// On the machine alone (DURATION=30s QUEUES="1024 4096"), where fastText's
// two threads use both cores (192% CPU, 50.4k words/s/thread) and the
// trainer about 1.7 of them (its serial parts):
//
//	build     queue   examples/s   tokens/s   vs fastText   tokens/CPU-s   vs fastText   peak RSS MB
//	fastText  -       -            100880     1.00          47721          1.00          1101
//	gonum     1024    5659         143597     1.42          85626          1.79          1048
//	gonum     4096    3553         78337      0.78          45564          0.95          1066
//	openblas  1024    6984         205636     2.04          121985         2.56          1066
//	openblas  4096    5259         125345     1.24          74154          1.55          1080
//
// So with a 4096-key queue the openblas build trains 1.24 times fastText's
// skipgram word rate and the default gonum build 0.78 times; twice
// fastText is reached with the default 1024 keys in the openblas build
// (2.04), and with in-batch negatives only. The shared-machine ratios
// above flatter the trainer, which loses less to sharing one core.
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
// 0.167 / -3.830 / 97.8). A queue tightens alignment and raises the rank
// slightly, but 4096 and 16384 keys buy nothing over 1024 here, while the
// logits against the queue cost CPU: per CPU-second 4096 keys train about
// 40% fewer tokens than 1024 in the gonum build and 25% to 30% fewer in the
// openblas build (tables above), 16384 keys 70% to 75% fewer. A default of 4096 would also make checkpoints written with the
// old default unresumable under the new one (the queue size is part of
// the model). Larger queues remain a setting (queue_size; 4096 is the
// size to pick with the openblas build).
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
