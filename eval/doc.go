// Package eval scores frozen text encoders on labeled tasks with few
// labels, against baselines, the way thresher judges a checkpoint: does
// pretraining on the stream buy anything over bag-of-words features and an
// untrained encoder when a task has only a handful of labels per class?
//
// # Tasks
//
// A task is a folder DIR holding train, dev and test splits as JSON Lines,
// DIR/{train,dev,test}.jsonl.gz (or .jsonl): one object a line with a
// "text" string, a "label" (a non-empty string, or a number taken as its
// text), and optional "id" (string or number) and "group"; other fields
// are ignored, blank lines skipped. LoadTask reads all three; Task.Classes
// is every label of the three splits, sorted, and the splits hold class
// indexes into it. Errors name the file and the line and wrap ErrTask.
//
// # Features
//
// A Features turns texts into a Matrix of rows (dense, or compressed sparse
// rows). These are provided:
//
//   - "encoder" (NewEncoderFeatures): a train.Encoder's L2-normalised
//     embeddings, embedded in chunks of 512 texts over Workers goroutines;
//   - "random" (NewRandomFeatures): the same architecture and shape as the
//     checkpoint's encoder (its train.Config), freshly initialised by
//     train.NewLearner with a seed: what the architecture gives before any
//     training;
//   - "hybrid" (NewHybridFeatures): train.Encoder.EmbedHybrid, the
//     encoder's embedding joined with a TF-IDF vector over the term
//     statistics of the stream the encoder was trained on (its
//     checkpoint carries them; nothing is counted on the task); sparse;
//   - "tfidf" (NewTFIDF): scikit-learn's TfidfVectorizer(ngram_range=(1,
//     2), sublinear_tf=True): train.Terms (lower-cased tokens of at least
//     two letters, digits or underscores, and adjacent pairs), the exact
//     vocabulary of the task's whole train split, 1 + ln(tf) times
//     idf = ln((1+N)/(1+df)) + 1 with N and df counted there, L2-normalised;
//     sparse. TestTFIDFMatchesReference holds it within a point of
//     scikit-learn on the same draws of every real task;
//   - a caller's name (NewVectorFeatures): external per-text vectors read
//     from DIR/TASK/SPLIT.vec (or DIR/SPLIT.vec), one line per example of
//     the split as `fasttext print-sentence-vectors` writes them, looked up
//     by text and L2-normalised like the encoder's;
//   - LayerFeatures (NewLayerFeatures): another representation of the
//     encoder (train.LayerBag, LayerHidden, LayerBagHidden).
//
// Periodic (periodic.go) is the trainer's evaluator (train.Evaluator): the
// linear probe of the encoder on fixed seeded draws and a fixed seeded
// subsample of dev and test, so every checkpoint is scored alike.
//
// # Classifiers
//
// Linear: multinomial logistic regression (LogReg) on the frozen features,
// minimising the mean cross-entropy plus 1/(2 C n) |W|^2 (n training rows;
// the bias is not penalised; the same C as scikit-learn's) with L-BFGS (6
// pairs, Armijo backtracking; stops when the largest gradient component is
// below 1e-4, after three iterations that gain less than 1e-8 relatively,
// or after 200 iterations). C is chosen from Config.Cs (0.01, 0.1, 1, 10,
// 100), fitted in ascending order, each fit warm-started from the previous
// one, by accuracy on the whole dev split (ties: the smaller C). On sparse
// features only the columns the sampled training rows use carry weights:
// the optimum of every other column is exactly zero under the penalty, so
// this is the same model at a fraction of the memory. When the sampled
// rows are few against those columns (sparse, rows^2 <= 10 x columns, at
// most 4096 rows: tf-idf at 16 labels per class), the same objective is
// minimised in its kernel form: by the representer theorem W = X^T A, so
// L-BFGS runs over A (rows x classes) and the bias, with the Gram matrix
// X X^T, and W is formed from A at the end.
//
// kNN: cosine similarity (rows are normalised first) to the sampled
// training rows; the class with most votes among the k nearest wins, ties
// going to the higher summed similarity, then to the lower class index. k
// is chosen from Config.Ks (1, 3, 5, 10, 20; at most the training rows) by
// dev accuracy (ties: the smaller k).
//
// # Metrics
//
// Accuracy, and macro-F1: the mean of per-class F1 = 2TP/(2TP+FP+FN) over
// the classes present in the test split (a class predicted but absent from
// the test split is not averaged; its wrong predictions still count as
// false negatives of the true classes).
//
// # Protocol
//
// For each labels-per-class value L of Config.LabelsPerClass (16, 64, all)
// and each of Config.Draws seeded draws (5), Draw samples L train
// examples of every class (every example of a class with fewer); the
// classifiers are fitted on them, C and k chosen on dev, and scored on
// test. A Result reports the mean and the sample standard deviation (n-1)
// over the draws. The draws depend only on the train labels, L, Seed and
// the draw number, so every feature set is scored on the same examples.
// With "all" every draw would be the same set, so it is fitted once
// (Draws 1, std 0).
//
// Each split is transformed once per feature set and reused by every draw;
// of the train split only the rows some draw uses are transformed. The
// fits of one (feature set, L, draw) are independent jobs run on
// Config.Workers goroutines; an objective over 8192 rows or more is summed
// over four fixed chunks in parallel. The results do not depend on
// Workers (TestEvaluateSameDraws).
//
// A Result marshals to JSON as
//
//	{"task", "features" (encoder|hybrid|tfidf|random|a vectors name), "classifier" (linear|knn),
//	 "labels_per_class" (a number, or "all"), "accuracy_mean", "accuracy_std",
//	 "macro_f1_mean", "macro_f1_std", "draws", "dev_accuracy_mean"}
//
// dev_accuracy_mean is the mean over the draws of the dev accuracy of the
// C (or k) each draw chose: the figure to choose settings by, so that the
// test split stays unseen.
//
// # Concurrency
//
// Features implementations are safe for concurrent use once built;
// Evaluate calls its progress function serialised.
package eval
