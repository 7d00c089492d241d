#!/usr/bin/env bash
# bench-train.sh: the online trainer's speed side by side with fastText.
#
#   scripts/bench-train.sh [CURATED_LAKE]
#
# On a curated lake of the whole real stream (built here through broker,
# produce, ingest and curate when none is given), it writes the curated
# texts, one record a line, trains `fasttext skipgram -thread 2 -epoch 1` on
# them, then runs `thresher train` on a fresh copy of the lake with momentum
# queues of QUEUES keys (-1: in-batch negatives only) in each of BUILDS:
# default (`go build`: the AVX2 kernels, sgemm included, where the CPU has
# AVX2 and FMA), openblas (`-tags openblas`, when libopenblas-dev is
# installed: OpenBLAS's sgemm, the AVX2 kernels for the rest) and purego
# (`-tags purego`: gonum's pure-Go sgemm and Go loops).
#
# A token is a whitespace word of a record's source text, counted once per
# example (what tokens_seen counts); fastText's figure is its
# words/sec/thread times its 2 threads. Like fastText's one epoch, each
# thresher run trains PASSES passes: as many examples as there are curated
# records (ceil(records / 256) steps of 256), or DURATION if that comes
# first. A whole pass matters: the curriculum starts with the easy, short
# records (about 21 words against the stream's 38), and the cost of an
# example hardly depends on its length, so a run cut short in the first
# stages counts fewer tokens a second than a pass does. The rates count
# from the first batch (thresher, once its sampler has loaded the lake) and
# from the end of the vocabulary pass (fastText).
#
# Peak RSS is /usr/bin/time's maximum resident set size. On a shared
# machine the wall rates move with the load, so the table also gives tokens
# (words) per CPU-second of the whole process (user + system time; start-up,
# fastText's vocabulary pass and thresher's final checkpoint included), that
# ratio to fastText's, and the share of the cores each process got (cpu, of
# 200%).
#
# Environment: PASSES (1), DURATION (10m, a cap), QUEUES ("-1 1024 4096
# 16384"), BUILDS ("default openblas purego"), STREAM
# (../shared/data/corpus/stream.jsonl.gz),
# KEEP=1 keeps the work folder.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10m}
passes=${PASSES:-1}
queues=${QUEUES:-"-1 1024 4096 16384"}
builds=${BUILDS:-"default openblas purego"}
stream=${STREAM:-$root/../shared/data/corpus/stream.jsonl.gz}
work=$(mktemp -d "${TMPDIR:-/tmp}/thresher-bench-train.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { echo "bench-train: $*" >&2; }

command -v fasttext >/dev/null || { log "fasttext not found"; exit 1; }

# Binaries.
cd "$root"
bins=()
for b in $builds; do
	case $b in
	default)
		go build -o "$work/thresher-default" ./cmd/thresher
		bins+=(default)
		;;
	purego)
		go build -tags purego -o "$work/thresher-purego" ./cmd/thresher
		bins+=(purego)
		;;
	openblas)
		if [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] &&
			ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so'; then
			go build -tags openblas -o "$work/thresher-openblas" ./cmd/thresher
			bins+=(openblas)
		else
			log "libopenblas-dev not installed: skipping the openblas build"
		fi
		;;
	*) log "unknown build $b"; exit 2 ;;
	esac
done
thr="$work/thresher-${bins[0]}"

# The curated lake.
lake=${1:-}
if [ -z "$lake" ]; then
	lake="$work/lake"
	port=$((20000 + RANDOM % 20000))
	log "building a curated lake of $stream in $lake (broker on 127.0.0.1:$port)"
	"$thr" broker --addr "127.0.0.1:$port" --partitions 4 --topic records >"$work/broker.log" 2>&1 &
	pids+=($!)
	sleep 1
	"$thr" produce --brokers "127.0.0.1:$port" --topic records "$stream" >"$work/produce.log" 2>&1
	"$thr" ingest --brokers "127.0.0.1:$port" --topic records --group bench --lake "$lake" \
		--exit-on-idle 5s >"$work/ingest.log" 2>&1
	"$thr" curate --lake "$lake" --exit-on-idle 1s >"$work/curate.log" 2>&1
	kill "${pids[0]}" 2>/dev/null || true
	pids=()
fi
[ -d "$lake/curated" ] || { log "$lake has no curated table"; exit 1; }

# The same text for fastText: every curated record, one a line.
mkdir -p "$work/extract"
cat >"$work/extract/main.go" <<'EOF'
// Command extract writes the text of every curated record of a lake, one
// record a line with its whitespace runs folded to one space, to stdout.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/thresher-ml/thresher/schemas"
)

func main() {
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	files, err := filepath.Glob(filepath.Join(os.Args[1], schemas.TableCurated, "*.parquet"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no curated windows in %s", os.Args[1])
	}
	records, words := 0, 0
	for _, f := range files {
		if err != nil {
			break
		}
		var rows []schemas.Curated
		if rows, err = parquet.ReadFile[schemas.Curated](f); err != nil {
			break
		}
		for _, r := range rows {
			fs := strings.Fields(r.Text)
			records++
			words += len(fs)
			w.WriteString(strings.Join(fs, " "))
			w.WriteByte('\n')
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "extract:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%d %d\n", records, words)
}
EOF
read -r records words < <(go run "$work/extract/main.go" "$lake" 2>&1 >"$work/text.txt")
log "curated text: $records records, $words words"

# fastText.
log "fasttext skipgram -thread 2 -epoch 1"
/usr/bin/time -v -o "$work/ft.time" fasttext skipgram -input "$work/text.txt" -output "$work/ft" \
	-thread 2 -epoch 1 >"$work/ft.log" 2>&1
ftwps=$(tr '\r' '\n' <"$work/ft.log" | grep -o 'words/sec/thread: *[0-9]*' | tail -1 | grep -o '[0-9]*$')
ftrss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/ft.time")
ftwall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/ft.time")
cpusec() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }
cpupct() { awk -F': ' '/Percent of CPU/ {print $2}' "$1"; }
ftcpu=$(echo "$words / $(cpusec "$work/ft.time")" | bc -l)
fttotal=$((ftwps * 2))
steps=$(((passes * records + 255) / 256))

# thresher train, one fresh copy of the lake per run.
rows=()
for b in "${bins[@]}"; do
	for q in $queues; do
		run="$work/run-$b-$q"
		mkdir -p "$run"
		for d in _curate curated curriculum; do
			[ -e "$lake/$d" ] && cp -al "$lake/$d" "$run/$d"
		done
		log "thresher train ($b, queue $q, $steps steps or $duration)"
		THRESHER_TRAIN_LEARNER_QUEUE_SIZE=$q THRESHER_TRAIN_SAMPLER_BATCH_SIZE=256 /usr/bin/time -v -o "$run/time" \
			"$work/thresher-$b" train --lake "$run" --max-steps "$steps" --max-duration "$duration" \
			--checkpoint-interval 1h --checkpoint-steps 1000000000 --progress 0 \
			>"$run/out" 2>"$run/err" || { log "train failed:"; tail -5 "$run/err" >&2; exit 1; }
		line=$(grep '^train: step=' "$run/out" | tail -1)
		field() { echo "$line" | grep -o "$1=[0-9.]*" | cut -d= -f2; }
		eps=$(field examples_per_s)
		tps=$(field tokens_per_s)
		tcpu=$(echo "$(field tokens_seen) / $(cpusec "$run/time")" | bc -l)
		rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$run/time")
		rows+=("$(printf '%-22s %10.0f %10.0f %7.2f %6s %12.0f %7.2f %8s' "thresher $b q=$q" "$eps" "$tps" \
			"$(echo "$tps / $fttotal" | bc -l)" "$(cpupct "$run/time")" "$tcpu" "$(echo "$tcpu / $ftcpu" | bc -l)" "$rss")")
		rm -rf "$run/checkpoints"
	done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "text: $records curated records, $words words; thresher runs $passes pass(es), $steps steps of 256, capped at $duration (tokens per wall second of training)"
printf '%-22s %10s %10s %7s %6s %12s %7s %8s\n' config examples/s tokens/s vs_ft cpu tokens/cpu-s vs_ft peak_MB
printf '%-22s %10s %10d %7.2f %6s %12.0f %7.2f %8s   (%d words/s/thread x 2, wall %s)\n' "fasttext skipgram" - \
	"$fttotal" 1 "$(cpupct "$work/ft.time")" "$ftcpu" 1 "$ftrss" "$ftwps" "$ftwall"
for r in "${rows[@]}"; do echo "$r"; done
