#!/usr/bin/env bash
# curation-bench.sh: what do curation's levers buy downstream?
#
# Lands the whole stream once (thresher produce to an embedded thresher
# broker, thresher ingest), then, for each row below and each training seed
# (--seeds, default 2), curates the landed raw table again with the row's
# settings, trains the encoder from scratch for a fixed number of optimiser
# steps (--steps; steps, not seconds, so that a busy machine slows the run
# but does not change its result) and scores the frozen encoder with the
# linear probe (thresher eval, --draws label draws at 16 and 64 labels per
# class) on every task under --tasks.
#
# Part "target" (adapt to my domain): for each visible task (--target-tasks,
# default wordnet_lexname,debian_section), the target sample is the task's
# train texts without their labels (curate --target FILE); each targeted
# row is compared with the untargeted defaults.
# Part "levers": the defaults against one row per lever turned the other
# way: dedup, curriculum, mixture temperature, replay, and target weighting
# (a lake curated with the debian_section target, sampled with
# target_weight -1, against the same lake with the default weight).
#
# Prints one markdown table per part (mean over the seeds, the delta
# against the reference row in points with the spread of the per-seed
# deltas, dev and test) and writes every figure as JSON (WORK/results.json).
#
# Usage: scripts/curation-bench.sh [--part target|levers|all] [--steps 6000]
#          [--seeds 2] [--draws 5] [--labels 16,64] [--work DIR]
#          [--target-tasks a,b] [--eval-tasks a,b,c] [--rows a,b]
#          [--corpus FILE] [--tasks DIR] [--bin FILE] [--reuse] [--quick]
#
# --eval-tasks scores those tasks only (default: every task under --tasks).
# --rows runs only the rows named (defaults, target-TASK, dedup-off,
# curriculum-off, mixture-temperature, replay-off, target-TASK-weight-off);
# the tables show every finished run in the work folder's runs/.
# --reuse keeps the landed lake and any finished run of an earlier call
# with the same work folder (a run is finished when its eval.json exists).
# The rows run thresher's defaults plus their own settings; options of the
# trainer can still be set the usual way (THRESHER_TRAIN_<KEY> variables)
# and apply to every row.
# Needs: go (unless --bin), python3, zcat.
set -euo pipefail
trap 'echo "curation-bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PART=all
STEPS=6000
SEEDS=2
DRAWS=5
LABELS=16,64
WORK=${TMPDIR:-/tmp}/thresher-curation-bench
TARGET_TASKS=wordnet_lexname,debian_section
EVAL_TASKS=
ROWS=
CORPUS=$ROOT/../shared/data/corpus/stream.jsonl.gz
TASKS=$ROOT/../shared/data/tasks
BIN=
REUSE=0
RECORDS=0 # 0: the whole stream

die() { echo "curation-bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--part) PART=$2; shift 2 ;;
	--steps) STEPS=$2; shift 2 ;;
	--seeds) SEEDS=$2; shift 2 ;;
	--draws) DRAWS=$2; shift 2 ;;
	--labels) LABELS=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--target-tasks) TARGET_TASKS=$2; shift 2 ;;
	--eval-tasks) EVAL_TASKS=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	--corpus) CORPUS=$2; shift 2 ;;
	--tasks) TASKS=$2; shift 2 ;;
	--bin) BIN=$2; shift 2 ;;
	--reuse) REUSE=1; shift ;;
	--quick) STEPS=300 SEEDS=1 DRAWS=2 LABELS=16 RECORDS=30000; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
case $PART in target | levers | all) ;; *) die "--part $PART is not target, levers or all" ;; esac
[[ $STEPS =~ ^[1-9][0-9]*$ ]] || die "--steps $STEPS is not a positive number"
[[ $SEEDS =~ ^[1-9][0-9]*$ ]] || die "--seeds $SEEDS is not a positive number"
[ -f "$CORPUS" ] || die "no corpus at $CORPUS (--corpus)"
[ -d "$TASKS" ] || die "no task folder $TASKS (--tasks)"
IFS=, read -r -a TT <<<"$TARGET_TASKS"
for t in "${TT[@]}"; do [ -f "$TASKS/$t/train.jsonl.gz" ] || die "no task $TASKS/$t (--target-tasks)"; done
TASK_ARGS=()
if [ -n "$EVAL_TASKS" ]; then
	IFS=, read -r -a ET <<<"$EVAL_TASKS"
	for t in "${ET[@]}"; do
		[ -f "$TASKS/$t/test.jsonl.gz" ] || die "no task $TASKS/$t (--eval-tasks)"
		TASK_ARGS+=(--task "$TASKS/$t")
	done
else
	for d in "$TASKS"/*/; do [ -f "$d/test.jsonl.gz" ] && TASK_ARGS+=(--task "${d%/}"); done
fi

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/log
mkdir -p "$LOG"
echo "curation-bench: work folder $WORK, $STEPS steps a run, $SEEDS seeds, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "$BIN" ]; then
	BIN=$WORK/thresher
	(cd "$ROOT" && go build -o "$BIN" ./cmd/thresher)
fi

# ---------------------------------------------------------------- land
BASE=$WORK/base
if [ $REUSE = 1 ] && [ -d "$BASE/raw" ]; then
	echo "reusing the landed lake $BASE"
else
	rm -rf "$BASE"
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$BIN" broker --addr "127.0.0.1:$PORT" --partitions 4 --topic stream >"$LOG/broker.out" 2>"$LOG/broker.err" &
	BROKER=$!
	trap 'kill $BROKER 2>/dev/null || true' EXIT
	for _ in $(seq 150); do (: </dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
	if [ "$RECORDS" -gt 0 ]; then
		{ zcat -f "$CORPUS" || true; } | head -n "$RECORDS" | "$BIN" produce --brokers "127.0.0.1:$PORT" --topic stream --progress-every 0 - >"$LOG/produce.out"
	else
		"$BIN" produce --brokers "127.0.0.1:$PORT" --topic stream --progress-every 0 "$CORPUS" >"$LOG/produce.out"
	fi
	"$BIN" ingest --brokers "127.0.0.1:$PORT" --topic stream --group bench --lake "$BASE" --exit-on-idle 1s >"$LOG/ingest.out" 2>"$LOG/ingest.err"
	kill $BROKER
	wait $BROKER 2>/dev/null || true
	trap - EXIT
	echo "landed: $(tail -n1 "$LOG/ingest.out")"
fi

# The target samples: each task's train texts, labels dropped.
mkdir -p "$WORK/targets"
for t in "${TT[@]}"; do
	zcat "$TASKS/$t/train.jsonl.gz" | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.dumps({"text": json.loads(line)["text"]}))' >"$WORK/targets/$t.jsonl"
done

# run NAME CURATE_ARGS TRAIN_ENV: every seed of one row, into WORK/runs/NAME-seedN.
run() {
	local name=$1 cargs=$2 tenv=$3 seed d t0
	if [ -n "$ROWS" ] && [[ ",$ROWS," != *",$name,"* ]]; then
		return
	fi
	for seed in $(seq 1 "$SEEDS"); do
		d=$WORK/runs/$name-seed$seed
		if [ $REUSE = 1 ] && [ -s "$d/eval.json" ]; then
			echo "$name, seed $seed: reusing $d/eval.json"
			continue
		fi
		rm -rf "$d"
		mkdir -p "$d"
		cp -al "$BASE/raw" "$d/raw"
		t0=$(date +%s)
		# shellcheck disable=SC2086
		"$BIN" curate --lake "$d" --exit-on-idle 1ms $cargs >"$LOG/curate-$name-$seed.out" 2>"$LOG/curate-$name-$seed.err"
		echo "$name, seed $seed: curated ($(tail -n1 "$LOG/curate-$name-$seed.out" | sed 's/^curate: //')), training $STEPS steps"
		# shellcheck disable=SC2086
		env THRESHER_TRAIN_LEARNER_SEED="$seed" THRESHER_TRAIN_SAMPLER_SEED="$seed" $tenv \
			"$BIN" train --lake "$d" --max-steps "$STEPS" --progress 60s >"$LOG/train-$name-$seed.out" 2>"$LOG/train-$name-$seed.err"
		"$BIN" eval --lake "$d" "${TASK_ARGS[@]}" --labels-per-class "$LABELS" --draws "$DRAWS" --features encoder \
			--baseline none --json --progress 0 >"$d/eval.json.tmp" 2>"$LOG/eval-$name-$seed.err"
		mv "$d/eval.json.tmp" "$d/eval.json"
		printf '%s\n%s\n%s\n%s\n%s\n' "$name" "$cargs" "$tenv" "$(tail -n1 "$LOG/train-$name-$seed.out")" "$(($(date +%s) - t0))" >"$d/about"
		# The checkpoints and curated tables are large; the figures are kept.
		rm -rf "$d/checkpoints" "$d/raw" "$d/curated" "$d/audit/records"
		echo "$name, seed $seed: done in $(($(date +%s) - t0)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	done
}

run defaults "" ""
if [ "$PART" != levers ]; then
	for t in "${TT[@]}"; do run "target-$t" "--target $WORK/targets/$t.jsonl" ""; done
fi
if [ "$PART" != target ]; then
	run dedup-off "--no-dedup" ""
	run curriculum-off "" "THRESHER_TRAIN_SAMPLER_PACING=none"
	run mixture-temperature "" "THRESHER_TRAIN_SAMPLER_MIXTURE=temperature"
	run replay-off "" "THRESHER_TRAIN_SAMPLER_REPLAY_RATIO=-1"
	tw=debian_section
	[ -f "$WORK/targets/$tw.jsonl" ] || tw=${TT[0]}
	[ "$PART" = levers ] && run "target-$tw" "--target $WORK/targets/$tw.jsonl" ""
	run "target-$tw-weight-off" "--target $WORK/targets/$tw.jsonl" "THRESHER_TRAIN_SAMPLER_TARGET_WEIGHT=-1"
fi

# ---------------------------------------------------------------- tables
mapfile -t RUN_DIRS < <(for f in "$WORK"/runs/*/eval.json; do [ -s "$f" ] && dirname "$f"; done)
python3 - "$WORK" "$STEPS" "$PART" "$TARGET_TASKS" "${RUN_DIRS[@]}" <<'PY'
import json, os, re, sys
work, steps, part, target_tasks = sys.argv[1:5]
dirs = sys.argv[5:]
target_tasks = target_tasks.split(",")

runs = {}  # name -> {seed: {(task, labels): (dev, test)}}
about = {}
for d in dirs:
    m = re.match(r"(.*)-seed(\d+)$", os.path.basename(d))
    name, seed = m.group(1), int(m.group(2))
    rows = json.load(open(os.path.join(d, "eval.json")))
    cells = {}
    for r in rows:
        if r["classifier"] == "linear" and r["features"] == "encoder":
            cells[(r["task"], str(r["labels_per_class"]))] = (r["dev_accuracy_mean"], r["accuracy_mean"])
    runs.setdefault(name, {})[seed] = cells
    lines = open(os.path.join(d, "about")).read().split("\n")
    about.setdefault(name, []).append({"seed": seed, "train": lines[3], "seconds": lines[4]})

tasks = sorted({k[0] for v in runs.values() for c in v.values() for k in c},
               key=lambda t: (t not in target_tasks, t))
labels = sorted({k[1] for v in runs.values() for c in v.values() for k in c}, key=int)

def mean(xs):
    return sum(xs) / len(xs)

def stat(name, task, lab, which):
    vals = [c[(task, lab)][which] for c in runs[name].values() if (task, lab) in c]
    return mean(vals) if vals else None

def delta(name, ref, task, lab, which):
    ds = [runs[name][s][(task, lab)][which] - runs[ref][s][(task, lab)][which]
          for s in runs[name] if s in runs[ref] and (task, lab) in runs[name][s] and (task, lab) in runs[ref][s]]
    if not ds:
        return None, None
    return mean(ds) * 100, (max(ds) - min(ds)) * 50

def table(title, rows, ref_of):
    print()
    print(f"### {title}")
    print()
    print(f"Encoder alone, linear probe accuracy (mean over {len(next(iter(runs.values())))} training seed(s)); "
          "Δ is the change in points against the reference row, ± half the range of the per-seed changes. "
          f"{steps} optimiser steps a run.")
    print()
    for which, split in ((1, "test"), (0, "dev")):
        head = "| row | reference |" + "".join(f" {t} @{l} |" for t in tasks for l in labels)
        print(head)
        print("|---|---|" + "---|" * (len(tasks) * len(labels)))
        for name in rows:
            if name not in runs:
                continue
            ref = ref_of(name)
            line = f"| {name} ({split}) | {ref or '-'} |"
            for t in tasks:
                for l in labels:
                    v = stat(name, t, l, which)
                    if v is None:
                        line += " - |"
                        continue
                    if ref:
                        d, spread = delta(name, ref, t, l, which)
                        line += f" {v:.3f} ({d:+.1f} ± {spread:.1f}) |"
                    else:
                        line += f" {v:.3f} |"
            print(line)
        print()

if part != "levers":
    table("Adapt to my domain: curate --target (the task's train texts, no labels)",
          ["defaults"] + [f"target-{t}" for t in target_tasks], lambda n: None if n == "defaults" else "defaults")
if part != "target":
    def ref(n):
        if n == "defaults":
            return None
        if n.endswith("-weight-off"):
            return n[: -len("-weight-off")]
        return "defaults"
    names = ["defaults", "dedup-off", "curriculum-off", "mixture-temperature", "replay-off"]
    names += [n for n in runs if n.endswith("-weight-off")]
    names += [n[: -len("-weight-off")] for n in runs if n.endswith("-weight-off")]
    table("Levers: each turned the other way", names, ref)

json.dump({"steps": int(steps), "runs": {n: {str(s): {f"{t}@{l}": v for (t, l), v in c.items()} for s, c in r.items()}
                                          for n, r in runs.items()}, "about": about},
          open(os.path.join(work, "results.json"), "w"), indent=1)
PY
echo "curation-bench: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
