#!/usr/bin/env bash
# pretrain-bench.sh: does pretraining on the unlabeled stream pay off?
#
# Within a fixed wall-clock budget (default 20 minutes on the machine's
# cores), land the whole stream in a lake (thresher produce to an embedded
# thresher broker, thresher ingest), curate it, and train the encoder for
# what is left of the budget. Then train fastText skipgram vectors
# (fasttext skipgram -thread 2) on the same stream for the same budget, and
# score the frozen encoder, TF-IDF, the randomly initialised encoder and the
# averaged fastText vectors with the same linear probe and the same label
# draws (thresher eval) on wordnet_lexname and debian_section. Last, the
# ablations: the full configuration and one row per component turned off,
# each trained for the ablation budget (default 5 minutes) from the same
# curated lake (dedup off: a lake curated again with dedup off), once per
# training seed (--seeds, default 2); a row reports the mean over the seeds
# and its delta against the full configuration with the spread (half the
# range) of the per-seed deltas.
#
# Prints one markdown table per part and writes every figure as JSON under
# the work folder (results.json, and the raw thresher eval output).
#
# Usage: scripts/pretrain-bench.sh [--budget 20m] [--ablation-budget 5m]
#          [--work DIR] [--skip-ablations] [--skip-fasttext] [--quick]
#          [--draws 5] [--seeds 2] [--ablations 0,1,...] [--labels 16,64] [--corpus FILE] [--tasks DIR] [--bin FILE]
#          [--reuse-main]
#
# --reuse-main keeps the lake and checkpoint of an earlier run in the same
# work folder (its timings are in WORK/main-times) and runs the rest (with
# --skip-fasttext it keeps that run's evaluation too). --ablations 0,1
# trains only those rows of the ablation list (0 is the full configuration).
#
# The benchmark runs thresher's defaults. Options of the trainer can still
# be set the usual way (THRESHER_TRAIN_<KEY> variables); they apply to
# every training run of the benchmark, the ablations adding their own on
# top.
# Needs: go (unless --bin), fasttext (unless --skip-fasttext), python3, zcat.
set -euo pipefail
trap 'echo "pretrain-bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUDGET=20m
ABL_BUDGET=5m
WORK=${TMPDIR:-/tmp}/thresher-pretrain-bench
SKIP_ABL=0
SEEDS=2
ONLY= # comma-separated indexes into ABLATIONS (0 is the full configuration); empty: all
SKIP_FT=0
QUICK=0
DRAWS=5
LABELS=16,64
CORPUS=$ROOT/../shared/data/corpus/stream.jsonl.gz
TASKS=$ROOT/../shared/data/tasks
BIN=
RECORDS=0 # 0: the whole stream
REUSE=0
TASK_NAMES=(wordnet_lexname debian_section)

die() { echo "pretrain-bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--budget) BUDGET=$2; shift 2 ;;
	--ablation-budget) ABL_BUDGET=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--skip-ablations) SKIP_ABL=1; shift ;;
	--skip-fasttext) SKIP_FT=1; shift ;;
	--quick) QUICK=1; shift ;;
	--draws) DRAWS=$2; shift 2 ;;
	--seeds) SEEDS=$2; shift 2 ;;
	--ablations) ONLY=$2; shift 2 ;;
	--labels) LABELS=$2; shift 2 ;;
	--corpus) CORPUS=$2; shift 2 ;;
	--tasks) TASKS=$2; shift 2 ;;
	--bin) BIN=$2; shift 2 ;;
	--reuse-main) REUSE=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
if [ $QUICK = 1 ]; then
	# A smoke run: the first 20k records, seconds of training, 2 draws.
	BUDGET=60s ABL_BUDGET=20s RECORDS=20000 DRAWS=2 LABELS=16
fi

# secs DURATION: a Go-style duration (90s, 5m, 1h, 1m30s) in whole seconds.
secs() {
	python3 -c '
import re, sys
s, tot = sys.argv[1], 0.0
parts = re.findall(r"([0-9.]+)(h|ms|m|s)", s)
if not parts or "".join(a + b for a, b in parts) != s:
    sys.exit("bad duration " + s)
for v, u in parts:
    tot += float(v) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u]
print(int(tot))' "$1"
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

BUDGET_S=$(secs "$BUDGET") || die "--budget $BUDGET is not a duration"
ABL_S=$(secs "$ABL_BUDGET") || die "--ablation-budget $ABL_BUDGET is not a duration"
[ -f "$CORPUS" ] || die "no corpus at $CORPUS (--corpus)"
for t in "${TASK_NAMES[@]}"; do [ -d "$TASKS/$t" ] || die "no task $TASKS/$t (--tasks)"; done
if [ $SKIP_FT = 0 ]; then command -v fasttext >/dev/null || die "fasttext not found (apt-get install fasttext, or --skip-fasttext)"; fi

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/log
mkdir -p "$LOG"
echo "pretrain-bench: work folder $WORK, budget ${BUDGET_S}s, ablations ${ABL_S}s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "$BIN" ]; then
	BIN=$WORK/thresher
	(cd "$ROOT" && go build -o "$BIN" ./cmd/thresher)
fi
TASK_ARGS=()
for t in "${TASK_NAMES[@]}"; do TASK_ARGS+=(--task "$TASKS/$t"); done

# corpus_lines: the records of the benchmark, as JSON Lines.
corpus_lines() {
	if [ "$RECORDS" -gt 0 ]; then
		# head stops reading early: zcat's broken pipe is not a failure.
		{ zcat -f "$CORPUS" || true; } | head -n "$RECORDS"
	else
		zcat -f "$CORPUS"
	fi
}

# ---------------------------------------------------------------- thresher
MAIN=$WORK/main
if [ $REUSE = 1 ]; then
	[ -f "$WORK/main-times" ] && [ -f "$MAIN/checkpoints/CURRENT" ] || die "--reuse-main: no earlier run in $WORK"
	# shellcheck disable=SC1091
	. "$WORK/main-times"
	echo "reusing the lake and checkpoint of $MAIN: $(tail -n1 "$LOG/train-main.out")"
else
rm -rf "$MAIN"
T0=$(now)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" broker --addr "127.0.0.1:$PORT" --partitions 4 --topic stream >"$LOG/broker.out" 2>"$LOG/broker.err" &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 150); do (: </dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
if [ "$RECORDS" -gt 0 ]; then
	corpus_lines | "$BIN" produce --brokers "127.0.0.1:$PORT" --topic stream --progress-every 0 - >"$LOG/produce.out"
else
	"$BIN" produce --brokers "127.0.0.1:$PORT" --topic stream --progress-every 0 "$CORPUS" >"$LOG/produce.out"
fi
"$BIN" ingest --brokers "127.0.0.1:$PORT" --topic stream --group bench --lake "$MAIN" --exit-on-idle 1s >"$LOG/ingest.out" 2>"$LOG/ingest.err"
kill $BROKER; wait $BROKER 2>/dev/null || true
trap - EXIT
LAND_S=$(since "$T0")
T1=$(now)
"$BIN" curate --lake "$MAIN" --exit-on-idle 1ms >"$LOG/curate.out" 2>"$LOG/curate.err"
CURATE_S=$(since "$T1")
echo "landed: $(tail -n1 "$LOG/ingest.out") in ${LAND_S}s"
echo "curated: $(tail -n1 "$LOG/curate.out") in ${CURATE_S}s"

SPENT=$(since "$T0")
# A few seconds are kept for the trainer's start-up and final checkpoint.
TRAIN_S=$(python3 -c "print(max(1, int($BUDGET_S - $SPENT - 5)))")
echo "training for ${TRAIN_S}s (budget ${BUDGET_S}s, ${SPENT}s spent landing and curating)"
T2=$(now)
"$BIN" train --lake "$MAIN" --max-duration "${TRAIN_S}s" --progress 60s >"$LOG/train-main.out" 2>"$LOG/train-main.err"
TRAIN_WALL=$(since "$T2")
TOTAL_S=$(since "$T0")
echo "$(tail -n1 "$LOG/train-main.out")"
echo "thresher total: ${TOTAL_S}s of the ${BUDGET_S}s budget"
printf 'LAND_S=%s\nCURATE_S=%s\nTRAIN_WALL=%s\nTOTAL_S=%s\n' "$LAND_S" "$CURATE_S" "$TRAIN_WALL" "$TOTAL_S" >"$WORK/main-times"
# The effective configuration of the runs (variables included).
"$BIN" train --lake "$MAIN" --check >"$WORK/train-config.yaml"
fi

# ---------------------------------------------------------------- fastText
# fastText sees the raw stream text (every record, duplicates included: the
# curated table has no text export), lower-cased, punctuation split off,
# one record a line; the task texts get the same preprocessing.
PREP='
import json, re, sys
punct = re.compile(r"([^\w\s])")
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    t = json.loads(line).get("text", "")
    print(" ".join(punct.sub(r" \1 ", t.lower()).split()))
'
FT=$WORK/fasttext
FT_S=0 FT_EPOCHS=0 FT_WORDS=0 FT_CAL_S=0 FT_PREP_S=0 FT_TRAIN_S=0
VEC_ARGS=()
if [ $SKIP_FT = 0 ]; then
	rm -rf "$FT"
	mkdir -p "$FT/vec"
	T3=$(now)
	corpus_lines | python3 -c "$PREP" >"$FT/stream.txt"
	FT_WORDS=$(wc -w <"$FT/stream.txt")
	FT_PREP_S=$(since "$T3")
	# Calibrate: one epoch over the first ~1M words (5% of a small corpus)
	# gives the training rate (start-up included, so a little low); the
	# epochs are then what is left of the budget at that rate, rounded to
	# the nearest whole epoch.
	CAL_WORDS=$(python3 -c "print(min(1000000, max(1, $FT_WORDS // 20)))")
	awk -v max="$CAL_WORDS" '{ n += NF; print; if (n >= max) exit }' "$FT/stream.txt" >"$FT/calib.txt"
	T4=$(now)
	fasttext skipgram -input "$FT/calib.txt" -output "$FT/calib" -thread 2 -epoch 1 -verbose 0 >/dev/null 2>&1
	FT_CAL_S=$(since "$T4")
	rm -f "$FT/calib.bin" "$FT/calib.vec" "$FT/calib.txt"
	FT_EPOCHS=$(python3 -c "
import math
rate = $CAL_WORDS / max($FT_CAL_S, 0.1)   # words/s, start-up included
left = $BUDGET_S - float('$(since "$T3")')
print(max(1, round(left * rate / $FT_WORDS)))")
	echo "fasttext: $FT_WORDS words, calibration ${FT_CAL_S}s for $CAL_WORDS words; $FT_EPOCHS epoch(s)"
	T5=$(now)
	fasttext skipgram -input "$FT/stream.txt" -output "$FT/model" -thread 2 -epoch "$FT_EPOCHS" >"$LOG/fasttext.out" 2>&1
	FT_TRAIN_S=$(since "$T5")
	FT_S=$(since "$T3")
	echo "fasttext: trained in ${FT_TRAIN_S}s, ${FT_S}s in all of the ${BUDGET_S}s budget"
	for t in "${TASK_NAMES[@]}"; do
		mkdir -p "$FT/vec/$t"
		for s in train dev test; do
			f=$TASKS/$t/$s.jsonl.gz
			[ -f "$f" ] || f=$TASKS/$t/$s.jsonl
			zcat -f "$f" | python3 -c "$PREP" | fasttext print-sentence-vectors "$FT/model.bin" >"$FT/vec/$t/$s.vec"
		done
	done
	rm -f "$FT/model.vec"
	VEC_ARGS=(--vectors "fasttext=$FT/vec")
fi

# ---------------------------------------------------------------- eval
if [ $REUSE = 1 ] && [ $SKIP_FT = 1 ] && [ -s "$WORK/eval-main.json" ]; then
	echo "reusing the evaluation of $MAIN ($WORK/eval-main.json)"
else
	echo "evaluating: labels per class $LABELS, $DRAWS draws"
	"$BIN" eval --lake "$MAIN" "${TASK_ARGS[@]}" --labels-per-class "$LABELS" --draws "$DRAWS" \
		--baseline tfidf,random "${VEC_ARGS[@]}" --json --progress 0 >"$WORK/eval-main.json" 2>"$LOG/eval-main.err"
fi

# ---------------------------------------------------------------- ablations
# name|curate environment|train environment
ABLATIONS=(
	"full|"
	"disjoint views off (augmented views, strength 1.5)||THRESHER_TRAIN_SAMPLER_VIEWS=augment THRESHER_TRAIN_SAMPLER_STRENGTH=1.5"
	"dedup off|THRESHER_CURATE_DEDUP_MAX_RECORDS=1024 THRESHER_CURATE_DEDUP_GENERATIONS=1 THRESHER_CURATE_DEDUP_THRESHOLD=1"
	"curriculum off||THRESHER_TRAIN_SAMPLER_PACING=none"
	"hard negatives and false-negative masking off||THRESHER_TRAIN_SAMPLER_NEGATIVES=-1 THRESHER_TRAIN_LEARNER_BETA=0 THRESHER_TRAIN_LEARNER_MASK_FALSE_NEGATIVES=none"
	"queue off||THRESHER_TRAIN_LEARNER_QUEUE_SIZE=-1"
	"64-wide embedding table||THRESHER_TRAIN_LEARNER_EMBED_DIM=64"
)
ABL_DIRS=()
OUT_DIRS=()
if [ $SKIP_ABL = 0 ]; then
	i=0
	for a in "${ABLATIONS[@]}"; do
		IFS='|' read -r name cenv tenv <<<"$a"
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$i,"* ]]; then
			i=$((i + 1))
			continue
		fi
		for seed in $(seq 1 "$SEEDS"); do
			d=$WORK/ablation-$i-seed$seed
			rm -rf "$d"
			mkdir -p "$d"
			if [ -n "$cenv" ]; then
				# Curate the landed raw table again with these settings.
				cp -al "$MAIN/raw" "$d/raw"
				env $cenv "$BIN" curate --lake "$d" --exit-on-idle 1ms >"$LOG/curate-ablation-$i-$seed.out" 2>"$LOG/curate-ablation-$i-$seed.err"
			else
				for sub in raw curated curriculum audit _curate; do
					[ -e "$MAIN/$sub" ] && cp -al "$MAIN/$sub" "$d/$sub"
				done
			fi
			echo "ablation: $name, seed $seed: training ${ABL_S}s"
			env THRESHER_TRAIN_LEARNER_SEED=$seed THRESHER_TRAIN_SAMPLER_SEED=$seed $tenv "$BIN" train --lake "$d" --max-duration "${ABL_S}s" --progress 60s \
				>"$LOG/train-ablation-$i-$seed.out" 2>"$LOG/train-ablation-$i-$seed.err"
			"$BIN" eval --lake "$d" "${TASK_ARGS[@]}" --labels-per-class "$LABELS" --draws "$DRAWS" --baseline none \
				--json --progress 0 >"$d/eval.json" 2>"$LOG/eval-ablation-$i-$seed.err"
			printf '%s\n%s\n%s\n%s\n' "$name" "$cenv" "$tenv" "$(tail -n1 "$LOG/train-ablation-$i-$seed.out")" >"$d/about"
			if [ $i = 0 ]; then
				# The probed representation is a choice at evaluation: the
				# full configuration's checkpoint probed at the output layer.
				o=$WORK/ablation-output-seed$seed
				rm -rf "$o"
				mkdir -p "$o"
				"$BIN" eval --lake "$d" "${TASK_ARGS[@]}" --labels-per-class "$LABELS" --draws "$DRAWS" --baseline none \
					--features encoder --layer output --json --progress 0 >"$o/eval.json" 2>"$LOG/eval-ablation-output-$seed.err"
				printf '%s\n\n%s\n%s\n' "probed at the output layer (not bag+hidden)" "eval --layer output" "$(tail -n1 "$LOG/train-ablation-$i-$seed.out")" >"$o/about"
				OUT_DIRS+=("$o")
			fi
			if [ -n "$cenv" ]; then tail -n1 "$LOG/curate-ablation-$i-$seed.out" | sed 's/^curate: //' >>"$d/about"; fi
			# The checkpoints are large; the figures are kept.
			rm -rf "$d/checkpoints"
			ABL_DIRS+=("$d")
		done
		i=$((i + 1))
	done
	ABL_DIRS+=("${OUT_DIRS[@]}")
fi

# ---------------------------------------------------------------- tables
echo "pretrain-bench: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK" "$BUDGET_S" "$ABL_S" "$LAND_S" "$CURATE_S" "$TRAIN_WALL" "$TOTAL_S" "$LOG/train-main.out" "$LOG/curate.out" \
	"$FT_S" "$FT_EPOCHS" "$FT_WORDS" "$FT_PREP_S" "$FT_CAL_S" "$FT_TRAIN_S" "${ABL_DIRS[@]}" <<'PY'
import json, os, re, sys
(work, budget, abl_budget, land_s, curate_s, train_wall, total_s, train_out, curate_out,
 ft_s, ft_epochs, ft_words, ft_prep_s, ft_cal_s, ft_train_s) = sys.argv[1:16]
abl_dirs = sys.argv[16:]

def summary(path):
    try:
        line = open(path).read().strip().splitlines()[-1]
    except (OSError, IndexError):
        return {}
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}

def linear(rows):
    out = {}
    for r in rows:
        if r["classifier"] == "linear":
            out[(r["task"], r["features"], str(r["labels_per_class"]))] = r
    return out

main = json.load(open(os.path.join(work, "eval-main.json")))
m = linear(main)
tasks = sorted({k[0] for k in m}, key=lambda t: (t != "wordnet_lexname", t))
labels = sorted({k[2] for k in m}, key=lambda l: (l == "all", int(l) if l != "all" else 0))
feats = [f for f in ("hybrid", "encoder", "tfidf", "random", "fasttext") if any(k[1] == f for k in m)]
tr = summary(train_out)
cu = summary(curate_out)

def cell(r):
    return f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}"

def delta(a, b):
    return f"{(a - b) * 100:+.1f}"

print()
print(f"### Main results: linear probe, test accuracy (mean ± std over {main[0]['draws']} draws)")
print()
print(f"thresher: landed and curated in {float(land_s) + float(curate_s):.0f} s, trained {float(train_wall):.0f} s "
      f"({tr.get('step', '?')} steps, {tr.get('examples_seen', '?')} examples), {float(total_s):.0f} s of the {budget} s budget; "
      f"curated {cu.get('records', '?')} records, {cu.get('kept', '?')} kept.")
if "fasttext" in feats:
    print(f"fastText skipgram -thread 2: {ft_words} words, {ft_epochs} epoch(s), trained {float(ft_train_s):.0f} s, "
          f"{float(ft_s):.0f} s of the {budget} s budget (text preparation {float(ft_prep_s):.0f} s and calibration {float(ft_cal_s):.0f} s included).")
print()
head = "| task | features |"
sep = "|---|---|"
for l in labels:
    head += f" {l} labels |"
    sep += "---|"
for ref in ("tfidf", "fasttext"):
    if ref in feats:
        for l in labels:
            head += f" Δ {ref} @{l} |"
            sep += "---|"
print(head)
print(sep)
for t in tasks:
    for f in feats:
        line = f"| {t} | {f} |"
        for l in labels:
            r = m.get((t, f, l))
            line += f" {cell(r)} |" if r else " - |"
        for ref in ("tfidf", "fasttext"):
            if ref in feats:
                for l in labels:
                    r, b = m.get((t, f, l)), m.get((t, ref, l))
                    line += f" {delta(r['accuracy_mean'], b['accuracy_mean'])} |" if r and b and f != ref else " |"
        print(line)

result = {"budget_s": float(budget), "land_s": float(land_s), "curate_s": float(curate_s), "train_s": float(train_wall),
          "total_s": float(total_s), "train": tr, "curate": cu,
          "fasttext": {"seconds": float(ft_s), "epochs": int(ft_epochs), "words": int(ft_words), "train_s": float(ft_train_s)},
          "main": main, "ablations": []}

if abl_dirs:
    # One entry per ablation name, its runs in seed order.
    by_name, order = {}, []
    for d in abl_dirs:
        about = open(os.path.join(d, "about")).read().split("\n")
        ev = json.load(open(os.path.join(d, "eval.json")))
        trs = {k: v for k, v in re.findall(r"(\w+)=(\S+)", about[3])}
        if about[0] not in by_name:
            by_name[about[0]] = []
            order.append(about[0])
        by_name[about[0]].append((about[1], about[2], trs, linear(ev), about[4] if len(about) > 4 else ""))
        result["ablations"].append({"name": about[0], "dir": d, "curate_env": about[1], "train_env": about[2],
                                    "train": trs, "curate": about[4] if len(about) > 4 else "", "eval": ev})
    full = by_name[order[0]]
    nseeds = min(len(v) for v in by_name.values())
    print()
    print(f"### Ablations: each row trained {abl_budget} s from the same curated lake, {nseeds} training seed(s); "
          f"linear probe test accuracy (mean over seeds), Δ vs full (mean of per-seed Δ ± half their range, points)")
    print()
    head, sep = "| configuration | steps |", "|---|---|"
    for t in tasks:
        for l in labels:
            head += f" {t} @{l} | Δ |"
            sep += "---|---|"
    print(head)
    print(sep)
    for name in order:
        runs = by_name[name]
        steps = "/".join(r[2].get("step", "?") for r in runs)
        line = f"| {name} | {steps} |"
        for t in tasks:
            for l in labels:
                accs = [r[3][(t, "encoder", l)]["accuracy_mean"] for r in runs if (t, "encoder", l) in r[3]]
                if not accs:
                    line += " - | |"
                    continue
                mean = sum(accs) / len(accs)
                if name == order[0]:
                    line += f" {mean:.3f} | |"
                    continue
                ds = [(r[3][(t, "encoder", l)]["accuracy_mean"] - f[3][(t, "encoder", l)]["accuracy_mean"]) * 100
                      for r, f in zip(runs, full) if (t, "encoder", l) in r[3] and (t, "encoder", l) in f[3]]
                dm = sum(ds) / len(ds) if ds else float("nan")
                spread = (max(ds) - min(ds)) / 2 if ds else float("nan")
                line += f" {mean:.3f} | {dm:+.1f} ± {spread:.1f} |"
        print(line)
    print()
    for name in order[1:]:
        cenv, tenv, _, _, cur = by_name[name][0]
        env = " ".join(x for x in (cenv, tenv) if x)
        extra = f"; curate: {cur}" if cur else ""
        print(f"- {name}: {env}{extra}")

json.dump(result, open(os.path.join(work, "results.json"), "w"), indent=2)
print()
print(f"JSON: {os.path.join(work, 'results.json')}")
PY
