#!/usr/bin/python3
"""tfidf-reference.py: the standard TF-IDF baseline, for comparison with
`thresher eval --baseline tfidf`.

scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) fitted
on the task's train split, LogisticRegression with C chosen on the whole dev
split (the grid of thresher eval), scored on test, on exactly the label draws
thresher eval uses (scripts/draws prints them). Prints one JSON object a line:
{"task", "labels_per_class", "accuracy_mean", "accuracy_std", "accuracies", "cs"}.

Usage (Debian: apt-get install python3-sklearn):
  go run ./scripts/draws --task DIR --labels-per-class 16,64 --draws 5 > /tmp/draws.json
  /usr/bin/python3 scripts/tfidf-reference.py DIR /tmp/draws.json [16,64]
"""
import gzip
import json
import os
import statistics
import sys

import numpy as np

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

CS = [0.01, 0.1, 1, 10, 100]  # thresher eval's grid (eval.DefaultCs)


def split(d, name):
    p = os.path.join(d, name + ".jsonl.gz")
    f = gzip.open(p, "rt") if os.path.exists(p) else open(os.path.join(d, name + ".jsonl"))
    texts, labels = [], []
    for line in f:
        if not line.strip():
            continue
        o = json.loads(line)
        texts.append(o["text"])
        labels.append(str(o["label"]))
    return texts, labels


def main():
    d, draws_path = sys.argv[1], sys.argv[2]
    only = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    dr = json.load(open(draws_path))
    index = {c: i for i, c in enumerate(dr["classes"])}
    (trx, try_), (dvx, dvy), (tex, tey) = (split(d, s) for s in ("train", "dev", "test"))
    try_, dvy, tey = ([index[y] for y in ys] for ys in (try_, dvy, tey))
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(trx)
    X, D, T = vec.transform(trx), vec.transform(dvx), vec.transform(tex)
    for l, draws in dr["draws"].items():
        if only and l not in only:
            continue
        accs, cs = [], []
        for idx in draws:
            # Only the columns the sampled rows use: under the L2 penalty
            # every other column's weight is exactly zero, so this is the
            # same model, fitted much faster.
            xs = X[idx]
            cols = np.unique(xs.nonzero()[1])
            xs, dc, tc = xs[:, cols], D[:, cols], T[:, cols]
            best, best_c = None, None
            for c in CS:
                m = LogisticRegression(C=c, max_iter=1000).fit(xs, [try_[i] for i in idx])
                a = m.score(dc, dvy)
                if best is None or a > best[0]:
                    best, best_c = (a, m), c
            accs.append(best[1].score(tc, tey))
            cs.append(best_c)
        print(json.dumps({"task": os.path.basename(os.path.normpath(d)), "labels_per_class": int(l),
                          "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                          "accuracies": accs, "cs": cs, "vocabulary": len(vec.vocabulary_)}), flush=True)


if __name__ == "__main__":
    main()
