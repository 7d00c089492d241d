#!/usr/bin/env bash
# continual-bench.sh: does the running trainer pick up a new domain, and how
# fast?
#
# One domain (default "software": the Debian and AppStream descriptions) is
# withheld from the topic. thresher broker (embedded), ingest, curate and
# train run as services on the rest; the trainer evaluates itself
# periodically (--eval-task, linear probe, 16 labels per class) on
# debian_section (the new domain's task) and wordnet_lexname (an old one).
# After --pretrain of training (counted from the trainer's launch), the
# withheld records are produced into the live topic, and the services go
# on (no restart) for --after (and --also, when longer). A from-scratch
# trainer on a lake of the whole stream, with the same evaluation, runs for
# the same total time (pretrain + after, and pretrain + also).
#
# "Before" is the last evaluation whose checkpoint was taken before the
# first withheld record was produced; "after" the last one taken at most
# --after (--also) later; "scratch" the from-scratch run's last one taken
# at most pretrain + after (also) after its launch. Gap closure is
# (after - before) / (scratch - before) on the new domain's task. The
# periodic evaluation scores a fixed, seeded 2000-example subsample of each
# task's test split (C chosen on a 2000-example subsample of dev), with the
# same 3 label draws at every checkpoint.
#
# A poller scrapes ingest's, curate's and the trainer's /metrics and the
# trainer's /v1/status every second, which times each stage of the new
# records' way: landed in the raw table, curated window committed, window
# loaded by the trainer's sampler, domain seen in the trained mix, and the
# thresher_train_drift_alert gauge raised.
#
# Prints one markdown table and writes the figures as JSON
# (WORK/results-VARIANT[-BOOST].json), the timelines (WORK/*/timeline.jsonl) and
# the logs (WORK/log).
#
# Usage: scripts/continual-bench.sh [--pretrain 5m] [--after 2m] [--also 5m]
#          [--eval-every 500] [--variant default] [--novelty-boost 4] [--work DIR] [--quick]
#          [--reuse-scratch] [--skip-scratch] [--domain software]
#          [--corpus FILE] [--tasks DIR] [--bin FILE]
#
# --also 0 measures at --after only. --variant picks the sampler's levers
# for the continual trainer (the from-scratch trainer always runs the
# defaults): default, replay-off (replay_ratio -1), novelty (novelty_boost
# set to --novelty-boost), novelty-off (novelty_boost -1),
# novelty-replay-off (both). Other options of the trainer can be set the usual way
# (THRESHER_TRAIN_<KEY> variables); they apply to both trainers.
# --reuse-scratch keeps the from-scratch run of an earlier run in the same
# work folder (same corpus, at least as long); --skip-scratch leaves it out
# (no gap closure then).
# Needs: go (unless --bin), python3, zcat.
set -euo pipefail
trap 'echo "continual-bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRETRAIN=5m
AFTER=2m
ALSO=5m
EVAL_EVERY=500
VARIANT=default
NOVELTY_BOOST=4
WORK=${TMPDIR:-/tmp}/thresher-continual-bench
QUICK=0
REUSE_SCRATCH=0
SKIP_SCRATCH=0
DOMAIN=software
CORPUS=$ROOT/../shared/data/corpus/stream.jsonl.gz
TASKS=$ROOT/../shared/data/tasks
BIN=
RECORDS=0 # 0: the whole stream
NEW_TASK=debian_section
OLD_TASK=wordnet_lexname

die() { echo "continual-bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--pretrain) PRETRAIN=$2; shift 2 ;;
	--after) AFTER=$2; shift 2 ;;
	--also) ALSO=$2; shift 2 ;;
	--eval-every) EVAL_EVERY=$2; shift 2 ;;
	--variant) VARIANT=$2; shift 2 ;;
	--novelty-boost) NOVELTY_BOOST=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--reuse-scratch) REUSE_SCRATCH=1; shift ;;
	--skip-scratch) SKIP_SCRATCH=1; shift ;;
	--domain) DOMAIN=$2; shift 2 ;;
	--corpus) CORPUS=$2; shift 2 ;;
	--tasks) TASKS=$2; shift 2 ;;
	--bin) BIN=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
if [ $QUICK = 1 ]; then
	# A smoke run: the first 40k records, about two minutes in all.
	PRETRAIN=60s AFTER=40s ALSO=0 EVAL_EVERY=200 RECORDS=40000
fi

# The continual trainer's sampler settings of each variant.
case $VARIANT in
default) VARIANT_ENV=() ;;
replay-off) VARIANT_ENV=(THRESHER_TRAIN_SAMPLER_REPLAY_RATIO=-1) ;;
novelty) VARIANT_ENV=(THRESHER_TRAIN_SAMPLER_NOVELTY_BOOST="$NOVELTY_BOOST") ;;
novelty-off) VARIANT_ENV=(THRESHER_TRAIN_SAMPLER_NOVELTY_BOOST=-1) ;;
novelty-replay-off) VARIANT_ENV=(THRESHER_TRAIN_SAMPLER_NOVELTY_BOOST="$NOVELTY_BOOST" THRESHER_TRAIN_SAMPLER_REPLAY_RATIO=-1) ;;
*) die "unknown --variant $VARIANT (default, replay-off, novelty, novelty-off or novelty-replay-off)" ;;
esac
# NAME names the run's folder and files: the variant, and the boost it sets.
NAME=$VARIANT
case $VARIANT in novelty | novelty-replay-off) NAME=$VARIANT-$NOVELTY_BOOST ;; esac

# secs DURATION: a Go-style duration (90s, 5m, 1h, 1m30s) in whole seconds.
secs() {
	[ "$1" = 0 ] && { echo 0; return; }
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
# elapsed T0: seconds since T0, one decimal.
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PRETRAIN_S=$(secs "$PRETRAIN") || die "--pretrain $PRETRAIN is not a duration"
AFTER_S=$(secs "$AFTER") || die "--after $AFTER is not a duration"
ALSO_S=$(secs "$ALSO") || die "--also $ALSO is not a duration"
[ "$PRETRAIN_S" -gt 0 ] && [ "$AFTER_S" -gt 0 ] || die "--pretrain and --after must be positive"
[ "$ALSO_S" -gt "$AFTER_S" ] || ALSO_S=0
[[ $EVAL_EVERY =~ ^[1-9][0-9]*$ ]] || die "--eval-every $EVAL_EVERY is not a positive number of steps"
LAST_S=$((ALSO_S > AFTER_S ? ALSO_S : AFTER_S)) # the continual run goes on this long after arrival
[ -f "$CORPUS" ] || die "no corpus at $CORPUS (--corpus)"
for t in $NEW_TASK $OLD_TASK; do [ -d "$TASKS/$t" ] || die "no task $TASKS/$t (--tasks)"; done
[ $REUSE_SCRATCH = 1 ] && [ $SKIP_SCRATCH = 1 ] && die "--reuse-scratch and --skip-scratch exclude each other"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/log
mkdir -p "$LOG"
T_START=$(now)
say() { echo "continual-bench [$(elapsed "$T_START")s]: $*"; }
ALSO_MSG=
[ "$ALSO_S" -gt 0 ] && ALSO_MSG=" and ${ALSO_S}s"
say "work folder $WORK, variant $VARIANT, pretrain ${PRETRAIN_S}s, after ${AFTER_S}s$ALSO_MSG, eval every $EVAL_EVERY steps, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "$BIN" ]; then
	BIN=$WORK/thresher
	(cd "$ROOT" && go build -o "$BIN" ./cmd/thresher) || die "go build failed"
fi
[ -x "$BIN" ] || die "no thresher binary at $BIN"
# A variable this thresher does not know is ignored: check that the
# variant's settings are in its effective configuration.
VARIANT_CONFIG=$(env ${VARIANT_ENV[@]+"${VARIANT_ENV[@]}"} "$BIN" train --lake "$WORK/variant-check" --check) ||
	die "the trainer refuses the settings of --variant $VARIANT: ${VARIANT_ENV[*]}"
for v in ${VARIANT_ENV[@]+"${VARIANT_ENV[@]}"}; do
	key=$(echo "${v%%=*}" | sed 's/^THRESHER_TRAIN_SAMPLER_//' | tr 'A-Z' 'a-z')
	grep -q "^ *$key: ${v#*=}\$" <<<"$VARIANT_CONFIG" || die "this thresher has no sampler key $key (--variant $VARIANT)"
done
cut -d' ' -f1-3 /proc/loadavg >"$WORK/load-start-$NAME"

# ---------------------------------------------------------------- processes
# Every process started here is stopped on exit (SIGTERM, then SIGKILL).
PIDS=()
stop_pid() {
	local p=$1
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
cleanup() {
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# alive NAME PID LOGFILE: fail naming the process when it has exited.
alive() {
	kill -0 "$2" 2>/dev/null && return 0
	echo "continual-bench: $1 exited early; the end of $3:" >&2
	tail -n 20 "$3" >&2 || true
	exit 1
}
# http_ok URL: the URL answers 200.
http_ok() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }
# wait_ready NAME PID LOG URL TIMEOUT_S
wait_ready() {
	local i
	for i in $(seq $(($5 * 5))); do
		alive "$1" "$2" "$3"
		http_ok "$4" && return 0
		sleep 0.2
	done
	die "$1 not ready at $4 after $5 s (log: $3)"
}

# ---------------------------------------------------------------- data
# old.jsonl: every record but the withheld domain's; new.jsonl: those;
# all.jsonl: every record, in the stream's order.
DATA=$WORK/data
if [ ! -s "$DATA/counts-$RECORDS" ]; then
	rm -rf "$DATA"
	mkdir -p "$DATA"
	say "splitting the stream: domain $DOMAIN withheld"
	{ zcat -f "$CORPUS" || true; } | python3 -c '
import json, sys
domain, limit, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
old, new, everything = (open(f"{out}/{n}.jsonl", "w") for n in ("old", "new", "all"))
n = no = nn = 0
for line in sys.stdin:
    if not line.strip():
        continue
    if limit and n >= limit:
        break
    n += 1
    everything.write(line)
    if json.loads(line).get("domain") == domain:
        new.write(line); nn += 1
    else:
        old.write(line); no += 1
for f in (old, new, everything):
    f.close()
open(f"{out}/counts-{limit}", "w").write(f"OLD_N={no}\nNEW_N={nn}\n")
' "$DOMAIN" "$RECORDS" "$DATA"
fi
# shellcheck disable=SC1090
. "$DATA/counts-$RECORDS"
[ "$NEW_N" -gt 0 ] || die "no record of domain $DOMAIN in $CORPUS"
say "$OLD_N records in the topic from the start, $NEW_N of domain $DOMAIN withheld"

BPORT=$(freeport)
"$BIN" broker --addr "127.0.0.1:$BPORT" --partitions 4 --topic stream,all >"$LOG/broker.out" 2>"$LOG/broker.err" &
BROKER=$!
PIDS+=("$BROKER")
for _ in $(seq 150); do (: </dev/tcp/127.0.0.1/"$BPORT") 2>/dev/null && break; sleep 0.1; done
alive broker "$BROKER" "$LOG/broker.err"
BROKERS=127.0.0.1:$BPORT

TRAIN_EVAL=(--eval-task "$TASKS/$NEW_TASK" --eval-task "$TASKS/$OLD_TASK" --eval-every "$EVAL_EVERY" --eval-labels-per-class 16)

# poll DIR INGEST_URL CURATE_URL TRAIN_URL: scrape every second into
# DIR/timeline.jsonl until killed (an empty URL is skipped).
cat >"$WORK/poll.py" <<'PY'
import json, re, sys, time, urllib.request
out, urls = sys.argv[1], dict(zip(("ingest", "curate", "train"), sys.argv[2:5]))
line = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([-+0-9.eEInfa]+)$")
WANT = ("thresher_ingest_records_total", "thresher_ingest_lag_records", "thresher_curate_records_total",
        "thresher_curate_windows_total", "thresher_train_step", "thresher_train_lake_window",
        "thresher_train_pool_records", "thresher_train_drift_alert", "thresher_train_drift_mix_tv",
        "thresher_train_drift_alerts_total", "thresher_train_eval_step")

def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()

def scrape(url):
    m = {}
    for l in get(url + "/metrics").splitlines():
        g = line.match(l)
        if g and g.group(1) in WANT:
            m[g.group(1)] = m.get(g.group(1), 0.0) + float(g.group(3))  # summed over labels
    return m

with open(out, "a", buffering=1) as f:
    while True:
        t = time.time()
        row = {"t": t}
        for name, url in urls.items():
            if not url:
                continue
            try:
                row[name] = scrape(url)
            except Exception as e:  # not up yet, or stopping
                row[name + "_err"] = str(e)[:80]
        if urls["train"]:
            try:
                st = json.loads(get(urls["train"] + "/v1/status"))
                ev = st.get("last_eval")
                row["status"] = {"step": st.get("step"), "window": st["lake"]["window"],
                                 "pool": st["lake"]["pool_records"], "mix": st["drift"]["mix"],
                                 "mixture": st["lake"].get("mixture"), "base_mixture": st["lake"].get("base_mixture"),
                                 "eval": ev and {"step": ev["step"], "time": ev["time"], "seconds": ev["seconds"],
                                                 "scores": [s for s in ev["scores"] if s["metric"] == "accuracy"]}}
            except Exception as e:
                row["status_err"] = str(e)[:80]
        f.write(json.dumps(row) + "\n")
        time.sleep(max(0.0, 1.0 - (time.time() - t)))
PY

# status.py: one line of a timeline sample (stdin) for the progress.
cat >"$WORK/status.py" <<'PY'
import json, sys
r = json.loads(sys.stdin.read())
st, tr = r.get("status") or {}, r.get("train") or {}
ev = st.get("eval") or {}
acc = ", ".join("%s %.3f" % (s["task"], s["value"]) for s in ev.get("scores", []))
print("step %s, window %s, pool %s, drift tv %.3f alert %d; last eval at step %s: %s" % (
    st.get("step"), st.get("window"), st.get("pool"), tr.get("thresher_train_drift_mix_tv", 0),
    tr.get("thresher_train_drift_alert", 0), ev.get("step"), acc or "none yet"))
PY

# ---------------------------------------------------------------- scratch
# A lake of the whole stream (produced to its own topic, landed and curated
# with thresher's defaults), trained from scratch for pretrain + the
# longest after, with the same periodic evaluation.
SCRATCH=$WORK/scratch
SCRATCH_S=$((PRETRAIN_S + LAST_S))
if [ $SKIP_SCRATCH = 1 ]; then
	say "from-scratch run skipped"
elif [ $REUSE_SCRATCH = 1 ]; then
	[ -s "$SCRATCH/markers" ] && [ -s "$SCRATCH/timeline.jsonl" ] || die "--reuse-scratch: no earlier from-scratch run in $SCRATCH"
	read -r budget records < <(sed 's/[a-z]*=//g' "$SCRATCH/about")
	[ "$records" = "$RECORDS" ] && [ "$budget" -ge "$SCRATCH_S" ] ||
		die "--reuse-scratch: $SCRATCH was run with $(cat "$SCRATCH/about"), not budget>=$SCRATCH_S records=$RECORDS"
	say "reusing the from-scratch run in $SCRATCH"
else
	rm -rf "$SCRATCH"
	mkdir -p "$SCRATCH"
	say "from scratch: producing and landing the whole stream ($((OLD_N + NEW_N)) records)"
	"$BIN" produce --brokers "$BROKERS" --topic all --progress-every 0 "$DATA/all.jsonl" >"$LOG/produce-all.out" 2>&1 ||
		die "producing the whole stream failed (log: $LOG/produce-all.out)"
	"$BIN" ingest --brokers "$BROKERS" --topic all --group scratch --lake "$SCRATCH/lake" --exit-on-idle 2s \
		>"$LOG/ingest-scratch.out" 2>"$LOG/ingest-scratch.err" || die "ingest of the whole stream failed (log: $LOG/ingest-scratch.err)"
	"$BIN" curate --lake "$SCRATCH/lake" --exit-on-idle 1ms >"$LOG/curate-scratch.out" 2>"$LOG/curate-scratch.err" ||
		die "curate of the whole stream failed (log: $LOG/curate-scratch.err)"
	say "from scratch: $(tail -n1 "$LOG/curate-scratch.out"); training for ${SCRATCH_S}s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	TPORT=$(freeport)
	echo "launch=$(now)" >"$SCRATCH/markers"
	"$BIN" train --lake "$SCRATCH/lake" --listen "127.0.0.1:$TPORT" "${TRAIN_EVAL[@]}" --max-duration "$((SCRATCH_S + 5))s" --progress 60s \
		>"$LOG/train-scratch.out" 2>"$LOG/train-scratch.err" &
	STRAIN=$!
	PIDS+=("$STRAIN")
	python3 "$WORK/poll.py" "$SCRATCH/timeline.jsonl" "" "" "http://127.0.0.1:$TPORT" 2>"$LOG/poll-scratch.err" &
	SPOLL=$!
	PIDS+=("$SPOLL")
	last=$SECONDS
	while kill -0 "$STRAIN" 2>/dev/null; do
		if [ $((SECONDS - last)) -ge 60 ]; then
			last=$SECONDS
			say "from scratch: $(tail -n1 "$LOG/train-scratch.err")"
		fi
		sleep 1
	done
	wait "$STRAIN" || die "the from-scratch trainer failed (log: $LOG/train-scratch.err)"
	stop_pid "$SPOLL"
	echo "end=$(now)" >>"$SCRATCH/markers"
	echo "budget=$SCRATCH_S records=$RECORDS" >"$SCRATCH/about"
	cut -d' ' -f1-3 /proc/loadavg >"$SCRATCH/load-end"
	say "from scratch: $(tail -n1 "$LOG/train-scratch.out")"
	# The checkpoints and the lake are large; the timeline holds the figures.
	rm -rf "$SCRATCH/lake"
fi

# ---------------------------------------------------------------- continual
RUN=$WORK/continual-$NAME
rm -rf "$RUN"
mkdir -p "$RUN"
LAKE=$RUN/lake
say "continual ($VARIANT): producing the $OLD_N records of the other domains"
"$BIN" produce --brokers "$BROKERS" --topic stream --progress-every 0 "$DATA/old.jsonl" >"$LOG/produce-old.out" 2>&1 ||
	die "producing the other domains failed (log: $LOG/produce-old.out)"
IPORT=$(freeport)
CPORT=$(freeport)
TPORT=$(freeport)
"$BIN" ingest --brokers "$BROKERS" --topic stream --group continual-$NAME --lake "$LAKE" --listen "127.0.0.1:$IPORT" \
	>"$LOG/ingest-$NAME.out" 2>"$LOG/ingest-$NAME.err" &
INGEST=$!
PIDS+=("$INGEST")
"$BIN" curate --lake "$LAKE" --listen "127.0.0.1:$CPORT" >"$LOG/curate-$NAME.out" 2>"$LOG/curate-$NAME.err" &
CURATE=$!
PIDS+=("$CURATE")
wait_ready ingest "$INGEST" "$LOG/ingest-$NAME.err" "http://127.0.0.1:$IPORT/healthz" 60
wait_ready curate "$CURATE" "$LOG/curate-$NAME.err" "http://127.0.0.1:$CPORT/healthz" 60
python3 "$WORK/poll.py" "$RUN/timeline.jsonl" "http://127.0.0.1:$IPORT" "http://127.0.0.1:$CPORT" "http://127.0.0.1:$TPORT" 2>"$LOG/poll-$NAME.err" &
CPOLL=$!
PIDS+=("$CPOLL")

# metric URL NAME: a metric's value summed over its labels (0 when absent).
metric() {
	python3 -c '
import sys, urllib.request
s = 0.0
for l in urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=2).read().decode().splitlines():
    if l.startswith(sys.argv[2] + "{") or l.startswith(sys.argv[2] + " "):
        s += float(l.rsplit(" ", 1)[1])
print(int(s))' "$1" "$2" 2>/dev/null || echo 0
}
# Every record of the other domains landed and curated before the trainer
# starts, so the pretraining phase is the trainer's alone.
T_LAND=$(now)
for i in $(seq 1800); do
	alive ingest "$INGEST" "$LOG/ingest-$NAME.err"
	alive curate "$CURATE" "$LOG/curate-$NAME.err"
	landed=$(metric "http://127.0.0.1:$IPORT" thresher_ingest_records_total)
	dlq=$(metric "http://127.0.0.1:$IPORT" thresher_ingest_dlq_records_total)
	curated=$(metric "http://127.0.0.1:$CPORT" thresher_curate_records_total)
	[ $((landed + dlq)) -ge "$OLD_N" ] && [ "$curated" -ge "$landed" ] && break
	if [ $((i % 30)) = 0 ]; then say "landing and curating: $landed landed, $curated curated of $OLD_N"; fi
	sleep 1
done
# curate counts a window's records before it commits the window.
sleep 3
[ $((landed + dlq)) -ge "$OLD_N" ] && [ "$curated" -ge "$landed" ] || die "the other domains were not landed and curated in 30 minutes ($landed landed, $dlq to the DLQ, $curated curated of $OLD_N)"
say "landed and curated $landed records ($dlq to the DLQ) in $(elapsed "$T_LAND")s; starting the trainer, load $(cut -d' ' -f1-3 /proc/loadavg)"

T_LAUNCH=$(now)
echo "launch=$T_LAUNCH" >"$RUN/markers"
env ${VARIANT_ENV[@]+"${VARIANT_ENV[@]}"} "$BIN" train --lake "$LAKE" --listen "127.0.0.1:$TPORT" "${TRAIN_EVAL[@]}" --progress 60s \
	>"$LOG/train-$NAME.out" 2>"$LOG/train-$NAME.err" &
TRAIN=$!
PIDS+=("$TRAIN")
"$BIN" train --lake "$LAKE" --check >"$RUN/train-config.yaml"

# sleep_until T: wait until the epoch time T, checking the services.
sleep_until() {
	local left last=0
	while :; do
		left=$(python3 -c "import sys, time; print(int(float(sys.argv[1]) - time.time()))" "$1")
		[ "$left" -le 0 ] && break
		alive ingest "$INGEST" "$LOG/ingest-$NAME.err"
		alive curate "$CURATE" "$LOG/curate-$NAME.err"
		alive train "$TRAIN" "$LOG/train-$NAME.err"
		if [ $((SECONDS - last)) -ge 60 ]; then
			last=$SECONDS
			say "$(tail -n1 "$RUN/timeline.jsonl" | python3 "$WORK/status.py" 2>/dev/null || echo "starting")"
		fi
		sleep 1
	done
}
T_ARRIVE=$(python3 -c "print(float('$T_LAUNCH') + $PRETRAIN_S)")
say "pretraining for ${PRETRAIN_S}s"
sleep_until "$T_ARRIVE"
echo "arrival=$(now)" >>"$RUN/markers"
say "producing the $NEW_N withheld records of domain $DOMAIN into the live topic"
"$BIN" produce --brokers "$BROKERS" --topic stream --progress-every 0 "$DATA/new.jsonl" >"$LOG/produce-new.out" 2>&1 ||
	die "producing the withheld records failed (log: $LOG/produce-new.out)"
echo "produced=$(now)" >>"$RUN/markers"
say "produced; the services go on for ${LAST_S}s"
sleep_until "$(python3 -c "print(float('$T_ARRIVE') + $LAST_S + 2)")"
echo "end=$(now)" >>"$RUN/markers"
cut -d' ' -f1-3 /proc/loadavg >"$WORK/load-end-$NAME"
stop_pid "$CPOLL"
stop_pid "$TRAIN"
stop_pid "$CURATE"
stop_pid "$INGEST"
say "$(tail -n1 "$LOG/train-$NAME.out")"
rm -rf "$LAKE/checkpoints"

# ---------------------------------------------------------------- table
python3 - "$WORK" "$NAME" "$PRETRAIN_S" "$AFTER_S" "$ALSO_S" "$NEW_TASK" "$OLD_TASK" "$DOMAIN" "$NEW_N" "$OLD_N" "$EVAL_EVERY" "$SKIP_SCRATCH" <<'PY'
import json, os, sys
work, variant, pre, after, also, new_task, old_task, domain, new_n, old_n, eval_every, skip = sys.argv[1:13]
pre, after, also = float(pre), float(after), float(also)

def markers(d):
    out = {}
    for l in open(os.path.join(d, "markers")):
        k, v = l.strip().split("=", 1)
        out[k] = float(v)
    return out

def timeline(d):
    return [json.loads(l) for l in open(os.path.join(d, "timeline.jsonl")) if l.strip()]

def evals(rows):
    """Every evaluation seen, by step: checkpoint time (its end less its
    duration), step, the 16-label accuracy of each task."""
    from datetime import datetime
    seen = {}
    for r in rows:
        ev = (r.get("status") or {}).get("eval")
        if not ev or ev["step"] in seen:
            continue
        end = datetime.fromisoformat(ev["time"].replace("Z", "+00:00")).timestamp()
        acc = {s["task"]: s["value"] for s in ev["scores"] if s["labels_per_class"] == 16}
        seen[ev["step"]] = {"t": end - ev["seconds"], "end": end, "step": ev["step"], "seconds": ev["seconds"], "acc": acc}
    return sorted(seen.values(), key=lambda e: e["t"])

def last_before(es, t):
    c = [e for e in es if e["t"] <= t]
    return c[-1] if c else None

run = os.path.join(work, f"continual-{variant}")
m, rows = markers(run), timeline(run)
es = evals(rows)
t0 = m["arrival"]
before = last_before(es, t0)
points = [after] + ([also] if also > 0 else [])
afters = {p: last_before(es, t0 + p) for p in points}

# The from-scratch reference at the same total time, and (a check that
# does not depend on the machine's load, which changes the steps a second)
# at the same number of steps as the continual run's evaluation.
scratch, scratch_steps = {}, {}
if skip != "1":
    sd = os.path.join(work, "scratch")
    sm, ses = markers(sd), evals(timeline(os.path.join(sd)))
    for p in points:
        scratch[p] = last_before(ses, sm["launch"] + pre + p)
        a = afters[p]
        c = [e for e in ses if a and e["step"] <= a["step"]]
        scratch_steps[p] = max(c, key=lambda e: e["step"]) if c else None

# Stage timings of the new records, from the poller's samples (1 s).
def first(pred):
    for r in rows:
        if r["t"] >= t0 and pred(r):
            return r["t"] - t0
    return None

pre_rows = [r for r in rows if r["t"] < t0]
last_pre = pre_rows[-1] if pre_rows else {}
g = lambda r, svc, k: (r.get(svc) or {}).get(k)
landed0 = g(last_pre, "ingest", "thresher_ingest_records_total") or 0
windows0 = g(last_pre, "curate", "thresher_curate_windows_total") or 0
window0 = (last_pre.get("status") or {}).get("window", 0)
t_land = first(lambda r: (g(r, "ingest", "thresher_ingest_records_total") or 0) > landed0)
t_land_all = first(lambda r: (g(r, "ingest", "thresher_ingest_records_total") or 0) >= landed0 + int(new_n))
t_window = first(lambda r: (g(r, "curate", "thresher_curate_windows_total") or 0) > windows0)
t_loaded = first(lambda r: ((r.get("status") or {}).get("window") or 0) > window0)
def in_mix(r):
    mv = ((r.get("status") or {}).get("mix") or {}).get("moves") or []
    return any(x["domain"] == domain and x["recent"] > 0 for x in mv)
t_mix = first(in_mix)
t_alert = first(lambda r: (g(r, "train", "thresher_train_drift_alert") or 0) >= 1)
false_alarms = sum(1 for r in pre_rows if (g(r, "train", "thresher_train_drift_alert") or 0) >= 1)
alert_rows = [r for r in rows if r["t"] >= t0 and (g(r, "train", "thresher_train_drift_alert") or 0) >= 1]
alert_on_s = len(alert_rows)
peak_tv = max([g(r, "train", "thresher_train_drift_mix_tv") or 0 for r in rows if r["t"] >= t0] or [0])
eval_secs = [e["seconds"] for e in es]
steps_at = lambda e: e["step"] if e else None

def acc(e, task):
    return e["acc"].get(task) if e else None

def f3(x):
    return "-" if x is None else f"{x:.3f}"

def fs(x):
    return "not seen" if x is None else f"{x:.0f} s"

print()
print(f"### Continual learning: domain {domain} ({int(new_n)} records) arrives after {pre:.0f} s of training (variant: {variant})")
print()
print(f"Periodic evaluation every {eval_every} steps (linear probe, 16 labels per class, 3 draws, test subsample of 2000; "
      f"{len(es)} evaluations of {min(eval_secs):.1f}-{max(eval_secs):.1f} s)." if es else "No evaluation was recorded.")
print()
head = "| | step | " + f"{new_task} @16 | {old_task} @16 |"
print(head)
print("|---|---|---|---|")
def row(name, e):
    if e is None:
        print(f"| {name} | - | - | - |")
        return
    when = f" (checkpoint at {e['t'] - t0:+.0f} s)" if name != "from scratch" else ""
    print(f"| {name}{when} | {e['step']} | {f3(acc(e, new_task))} | {f3(acc(e, old_task))} |")
row("before arrival", before)
for p in points:
    row(f"after, {p:.0f} s", afters[p])
    if p in scratch:
        e = scratch[p]
        print(f"| from scratch, {pre + p:.0f} s | {e['step'] if e else '-'} | {f3(acc(e, new_task))} | {f3(acc(e, old_task))} |")
        e = scratch_steps[p]
        print(f"| from scratch, same steps | {e['step'] if e else '-'} | {f3(acc(e, new_task))} | {f3(acc(e, old_task))} |")
print()
res = {"variant": variant, "domain": domain, "new_records": int(new_n), "old_records": int(old_n), "pretrain_s": pre,
       "eval_every": int(eval_every), "evals": es, "before": before, "after": {}, "scratch": {}, "timings_s": {}}
def closure(a, s):
    if a and before and s and acc(s, new_task) is not None and acc(s, new_task) != acc(before, new_task):
        return (acc(a, new_task) - acc(before, new_task)) / (acc(s, new_task) - acc(before, new_task))
    return None
g2 = lambda x: "-" if x is None else f"{x:.2f}"
print("| after | gap closure on " + new_task + " (target ≥ 0.90 at 120 s) | same, against scratch at the same steps | "
      + old_task + " change, points (target ≥ -1.0) |")
print("|---|---|---|---|")
for p in points:
    a = afters[p]
    gap, gap_steps = closure(a, scratch.get(p)), closure(a, scratch_steps.get(p))
    old = (acc(a, old_task) - acc(before, old_task)) * 100 if a and before else None
    print(f"| {p:.0f} s | {g2(gap)} | {g2(gap_steps)} | {'-' if old is None else f'{old:+.1f}'} |")
    res["after"][str(int(p))] = {"eval": a, "gap_closure": gap, "gap_closure_same_steps": gap_steps, "old_change_points": old}
    res["scratch"][str(int(p))] = scratch.get(p)
    res["scratch"][str(int(p)) + "_same_steps"] = scratch_steps.get(p)
print()
# The machine's load changes the steps a second, so the variants are also
# compared at the same number of steps after arrival.
step0 = next(((r.get("status") or {}).get("step") for r in rows if r["t"] >= t0 and (r.get("status") or {}).get("step") is not None), None)
by_steps = {}
if step0 is not None and before:
    print(f"By steps after arrival (step {step0}): {new_task} and {old_task} @16 minus before, points:")
    print()
    print("| steps after arrival | step | seconds after arrival | " + new_task + " | " + old_task + " |")
    print("|---|---|---|---|---|")
    for e in es:
        k = e["step"] - step0
        if k <= 0:
            continue
        d_new, d_old = (acc(e, new_task) - acc(before, new_task)) * 100, (acc(e, old_task) - acc(before, old_task)) * 100
        by_steps[k] = {"step": e["step"], "t": e["t"] - t0, "new": d_new, "old": d_old}
        print(f"| {k} | {e['step']} | {e['t'] - t0:.0f} | {d_new:+.1f} | {d_old:+.1f} |")
    print()
res["by_steps_after_arrival"] = by_steps
timings = {"first records landed (raw table)": t_land, f"all {int(new_n)} landed": t_land_all,
           "first curated window committed": t_window, "window loaded by the trainer's sampler": t_loaded,
           f"{domain} in the trained domain mix (/v1/status)": t_mix, "thresher_train_drift_alert = 1": t_alert}
print("| after the first withheld record was produced | seconds |")
print("|---|---|")
for k, v in timings.items():
    print(f"| {k} | {fs(v)} |")
res["timings_s"] = timings
print()
print(f"Produce took {m['produced'] - t0:.1f} s. Drift alert: raised {'' if t_alert is not None else 'never '}after arrival "
      f"(on for {alert_on_s} of the {len([r for r in rows if r['t'] >= t0])} samples after it, peak drift_mix_tv {peak_tv:.3f}), "
      f"{false_alarms} samples raised before arrival.")
def rate(a, b):
    sel = [r for r in rows if a <= r["t"] <= b and (r.get("status") or {}).get("step") is not None]
    if len(sel) < 2 or sel[-1]["t"] == sel[0]["t"]:
        return None
    return (sel[-1]["status"]["step"] - sel[0]["status"]["step"]) / (sel[-1]["t"] - sel[0]["t"])
r_pre, r_post = rate(m["launch"], t0), rate(t0, t0 + max(points))
ev_share = sum(e["seconds"] for e in es) / max(1e-9, (rows[-1]["t"] - m["launch"])) if es and rows else 0
print(f"Trainer: {r_pre or 0:.1f} steps/s before arrival, {r_post or 0:.1f} after (evaluations included; "
      f"they take {100 * ev_share:.0f}% of the trainer's time, and training waits for them).")
def share(r, key):
    mx = (r.get("status") or {}).get(key)
    return mx.get(domain, 0.0) if mx else None
sh = [(share(r, "mixture"), share(r, "base_mixture")) for r in rows
      if t0 <= r["t"] <= t0 + after and share(r, "mixture") is not None and (t_loaded is None or r["t"] >= t0 + t_loaded)]
if sh:
    print(f"{domain}'s share of the fresh examples over the first {after:.0f} s (from the window's intake): "
          f"mean {sum(a for a, _ in sh) / len(sh):.3f}, peak {max(a for a, _ in sh):.3f}, "
          f"without the levers {sum(b for _, b in sh) / len(sh):.3f}.")
    res["new_share_after"] = {"mean": sum(a for a, _ in sh) / len(sh), "peak": max(a for a, _ in sh),
                              "base_mean": sum(b for _, b in sh) / len(sh)}
res.update({"steps_per_s_before": r_pre, "steps_per_s_after": r_post, "eval_time_share": ev_share})
res.update({"false_alarm_samples": false_alarms, "alert_on_samples": alert_on_s, "peak_mix_tv": peak_tv,
            "produce_s": m["produced"] - t0})
json.dump(res, open(os.path.join(work, f"results-{variant}.json"), "w"), indent=2)
print()
print(f"JSON: {os.path.join(work, f'results-{variant}.json')}")
PY
say "done, load $(cut -d' ' -f1-3 /proc/loadavg) (at start: $(cat "$WORK/load-start-$NAME"))"
