#!/usr/bin/env bash
# sim-long.sh — the long simulation run (a million seeds by default), in
# chunks that survive an interruption: each finished chunk is one line of
# DIR/chunks.tsv, and a new start skips the chunks already there. At about
# 0.16 CPU-seconds a seed (docs/BENCHMARKS.md) a million seeds take a day on
# two cores, longer than one sitting; stop it at any time (Ctrl-C, a reboot)
# and run the same command again to go on.
#
#   scripts/sim-long.sh [--sim PATH] [--dir DIR] [--total N] [--chunk C] [-j J]
#                       [--rev R] [--nice] [--summary]
#
#   --sim      the bftnet-sim binary (default: build/tests/bftnet-sim; build
#              it with: cmake -B build -DCMAKE_BUILD_TYPE=Release &&
#              cmake --build build --target bftnet-sim)
#   --dir      where the record goes (default: build/sim-long)
#   --total    seeds in all, from seed 1 (default 1000000)
#   --chunk    seeds per chunk (default 10000, about 13 minutes on 2 cores; a chunk
#              cut short, by the end of a session say, is run again)
#   -j         jobs per chunk (default: the number of CPUs)
#   --rev      the revision the binary was built from, for the record
#              (default: this checkout's HEAD)
#   --nice     run only on CPU time nothing else wants (SCHED_IDLE where
#              chrt can set it, else nice 19), beside other work
#   --summary  print what the record holds and stop
#
# A chunk that finds a violation is recorded FAILED with the failing seeds
# (bftnet-sim --keep-going lists them); replay one with bftnet-sim --seed S -v.
# The record's lines: first seed, seeds, wall seconds, ok|FAILED, the binary's
# git revision, date, and bftnet-sim's own summary line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM=$ROOT/build/tests/bftnet-sim
DIR=$ROOT/build/sim-long
TOTAL=1000000
CHUNK=10000
JOBS=$(nproc 2>/dev/null || echo 2)
NICE=()
SUMMARY=0
REV=
while [ $# -gt 0 ]; do
  case $1 in
  --sim) SIM=$2; shift 2 ;;
  --dir) DIR=$2; shift 2 ;;
  --total) TOTAL=$2; shift 2 ;;
  --chunk) CHUNK=$2; shift 2 ;;
  -j) JOBS=$2; shift 2 ;;
  --rev) REV=$2; shift 2 ;;
  --nice)
    if chrt -i 0 true 2>/dev/null; then NICE=(chrt -i 0 nice -n 19); else NICE=(nice -n 19); fi
    shift ;;
  --summary) SUMMARY=1; shift ;;
  *) echo "sim-long.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
mkdir -p "$DIR"
REC=$DIR/chunks.tsv
touch "$REC"

summary() {
  awk -F'\t' -v total="$TOTAL" '
    { seeds += $2; wall += $3; if ($4 != "ok") bad++ ; n++ }
    END {
      printf "sim-long: %d chunks, %d of %d seeds, %.1f h of wall time, %d chunks with violations\n",
             n, seeds, total, wall / 3600, bad
    }' "$REC"
}
if [ $SUMMARY = 1 ]; then
  summary
  grep -P '\tFAILED\t' "$REC" || true
  exit 0
fi
if [ ! -x "$SIM" ]; then
  echo "sim-long.sh: no simulator at $SIM: build it first (see the header of $0)" >&2
  exit 2
fi
[ -n "$REV" ] || REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

for ((from = 1; from <= TOTAL; from += CHUNK)); do
  if awk -F'\t' -v f="$from" '$1 == f { found = 1 } END { exit !found }' "$REC"; then
    continue
  fi
  n=$CHUNK
  if ((from + n - 1 > TOTAL)); then n=$((TOTAL - from + 1)); fi
  t0=$(date +%s.%N)
  out=$("${NICE[@]}" "$SIM" --seeds "$n" --from "$from" -j "$JOBS" --batch 50 --keep-going 2>&1) && rc=0 || rc=$?
  t1=$(date +%s.%N)
  line=$(printf '%s\n' "$out" | grep -m1 '^bftnet-sim:' || true)
  fails=$(printf '%s\n' "$out" | grep 'FAILED' | tr '\n' ' ' || true)
  if [ $rc -eq 0 ] && [ -n "$line" ]; then verdict=ok; else verdict=FAILED; fi
  if [ -z "$line" ] && [ $rc -gt 128 ]; then
    echo "sim-long.sh: chunk at $from interrupted (signal $((rc - 128))); not recorded" >&2
    exit 1
  fi
  printf '%s\t%s\t%.1f\t%s\t%s\t%s\t%s %s\n' "$from" "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$verdict" \
    "$REV" "$(date -u +%FT%TZ)" "$line" "$fails" >>"$REC"
  echo "sim-long: seeds $from..$((from + n - 1)): $verdict ($line)"
done
summary
