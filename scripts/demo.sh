#!/usr/bin/env bash
# demo.sh — a bftnet cluster on this machine, under faults, with a verdict.
#
# bftnet-cluster starts 4 bftnet-replica processes on 127.0.0.1 (each a
# bftnet node with an Ed25519 identity, speaking TCP + multistream-select +
# Noise + yamux to the others), puts a fault-injecting proxy on every link,
# and runs two phases:
#  1. about 30 s under a mixed fault SPEC: added latency, cuts, a blackhole,
#     a partition, a kill and restart, and a membership change (one replica
#     added, one removed); each replica sends 1000 numbered 64 B messages/s
#     to every other member and checks what it receives;
#  2. about 20 s of two traffic classes (--classes) under the link faults:
#     64 B votes at 100/s in the most urgent class and 256 KiB blocks flat
#     out in a lower one (their ring full, drop-oldest dropping what the
#     links cannot carry), numbered and checked per class; its plot shows
#     the votes' p99 staying low while the blocks saturate the links.
# After each, the cluster cross-checks every ordered pair of replicas (per
# class) and prints a table, a report, a plot and a verdict (README.md,
# "Running a cluster"). Phase 2 has no kill and no membership change: with
# blocks flat out, what a killed replica received after its last stats line
# and what a removed member had queued unread are not attributable per
# class by the tools yet, so its verdict would not be exact.
#
# Builds the tools without sanitizers into build/release (scripts/deps.sh
# first). The whole demo takes about a minute once built.
# Environment: BFTNET_SKIP_DEPS=1 skips scripts/deps.sh; BFTNET_JOBS (default
# nproc); BFTNET_TOOLS_DIR=DIR uses the tools in DIR instead of building them;
# BFTNET_DEMO_SECONDS (default 30: phase 1; phase 2 runs two thirds of it);
# BFTNET_DEMO_OUT (default build/release/demo; phase 2 in its classes/);
# BFTNET_DEMO_FAULTS overrides phase 1's SPEC, BFTNET_DEMO_CLASSES the class
# mix.
#
# Exit status: 0 when both phases ran and both verdicts are "integrity: ok";
# 1 otherwise.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
JOBS=${BFTNET_JOBS:-$(nproc 2>/dev/null || echo 2)}
SECONDS_RUN=${BFTNET_DEMO_SECONDS:-30}
OUT=${BFTNET_DEMO_OUT:-$BUILD/demo}

# The faults (docs/FAULTS.md). Times count from the moment all 4 replicas
# are up; r4 is the replica the membership change adds.
SPEC='latency:ms=5;jitter=2,cut:every=5s,blackhole:at=6s;for=3s;link=r0-r1,partition:at=12s;for=4s;replica=r2,kill:at=17s;replica=r1;restart=2s,members:at=20s;add=r4;remove=r3'
SPEC=${BFTNET_DEMO_FAULTS:-$SPEC}
# Phase 2: the link faults of SPEC (no kill, no membership change).
SPEC2='latency:ms=5;jitter=2,cut:every=5s,blackhole:at=6s;for=3s;link=r0-r1,partition:at=12s;for=4s;replica=r2'
SECONDS_RUN2=$(((SECONDS_RUN * 2 + 2) / 3))
# The traffic classes (README.md, "Tools"): votes first (class 0, priority 0).
CLASSES='vote:prio=0;size=64;rate=100,block:prio=1;size=262144;rate=max'
CLASSES=${BFTNET_DEMO_CLASSES:-$CLASSES}

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() {
  printf '\ndemo: FAILED: %s\n' "$*" >&2
  exit 1
}

# --- Build
if [ "${BFTNET_SKIP_DEPS:-0}" != 1 ]; then
  step "Checking dependencies (scripts/deps.sh)"
  bash "$ROOT/scripts/deps.sh"
fi
if [ -n "${BFTNET_TOOLS_DIR:-}" ]; then
  TOOLS=$BFTNET_TOOLS_DIR
  step "Using the tools in $TOOLS (BFTNET_TOOLS_DIR)"
else
  # Warnings are errors in test.sh's builds; a demo only reports them.
  step "Building the tools (release, no sanitizers) in ${BUILD#"$ROOT"/}"
  CC_BIN=$(command -v gcc || command -v clang || command -v cc || true)
  [ -n "$CC_BIN" ] || die "no C compiler found"
  mkdir -p "$BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_BUILD_TYPE=Release \
    -DBFTNET_TESTS=OFF -DBFTNET_ASAN=OFF -DBFTNET_TSAN=OFF -DBFTNET_FUZZ=OFF -DBFTNET_WERROR=OFF \
    >"$BUILD/configure.log" 2>&1 ||
    { tail -n 30 "$BUILD/configure.log"; die "cmake configure failed (log: $BUILD/configure.log)"; }
  cmake --build "$BUILD" -j "$JOBS" --target bftnet-cluster bftnet-replica bftnet-keygen \
    >"$BUILD/build.log" 2>&1 ||
    { tail -n 40 "$BUILD/build.log"; die "building the tools failed (log: $BUILD/build.log)"; }
  warnings=$(grep -c 'warning:' "$BUILD/build.log" || true)
  if [ "${warnings:-0}" -gt 0 ]; then
    say "  built ($warnings compiler warning(s): ${BUILD#"$ROOT"/}/build.log)"
  else
    say "  built"
  fi
  TOOLS=$BUILD/tools
fi
CLUSTER=$TOOLS/bftnet-cluster
[ -x "$CLUSTER" ] && [ -x "$TOOLS/bftnet-replica" ] ||
  die "bftnet-cluster or bftnet-replica is missing in $TOOLS"

# --- Run
LOG=
CPID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    kill -TERM "$CPID" 2>/dev/null || true # it stops its replicas itself
    wait "$CPID" 2>/dev/null || true
  fi
  [ -z "$LOG" ] || rm -f "$LOG"
  exit $rc
}
trap cleanup EXIT

# run_cluster OUTDIR ARGS...: one bftnet-cluster run, its output shown and
# kept in $LOG; sets VERDICT.
run_cluster() {
  local out=$1
  shift
  [ -z "$LOG" ] || rm -f "$LOG"
  LOG=$(mktemp "${TMPDIR:-/tmp}/bftnet-demo.XXXXXX")
  "$CLUSTER" --replicas 4 "$@" --out "$out" > >(tee "$LOG") 2>&1 &
  CPID=$!
  # Ctrl-C reaches bftnet-cluster too (same process group): it stops the
  # replicas in order and still writes its report; wait for it.
  interrupted=0
  trap 'interrupted=1' INT
  trap 'interrupted=1; kill -TERM "$CPID" 2>/dev/null' TERM
  local rc=0
  while :; do
    wait "$CPID" && rc=0 || rc=$?
    kill -0 "$CPID" 2>/dev/null || break
  done
  CPID=
  trap - INT TERM
  sleep 0.2 # let tee finish
  [ "$interrupted" = 0 ] || die "interrupted (bftnet-cluster exited with $rc; its output is in $out)"
  VERDICT=$(grep -E '^integrity: ' "$LOG" | tail -n 1 || true)
  [ -n "$VERDICT" ] || die "bftnet-cluster ended (exit $rc) without a verdict"
}

# where OUT: the files of a run.
where() {
  say "  report (config, every replica's report, the pair table, fault events): $1/report.json"
  say "  time series (per replica, per second):                                 $1/timeseries.csv"
  if [ -s "$1/plot.png" ]; then
    say "  plot (throughput and p99 per replica$2, faults marked):   $1/plot.png"
  else
    say "  plot: none (gnuplot missing or failed; see above)"
  fi
  say "  replica logs and reports:                                              $1/replicas/"
}

step "Phase 1: 4 replicas for $SECONDS_RUN s, 1000 msgs/s to each peer, under faults"
say "  faults: $SPEC"
say "  (one line per second: cluster-wide delivered msgs/s, p50/p99 latency estimated"
say "   across replicas, drops counted by senders, reconnects; fault events as they happen)"
# --stats-ms 250: a killed replica's last stats line (what its process is
# known to have received, docs/REPORT.md) is at most 250 ms old.
run_cluster "$OUT" --duration "$SECONDS_RUN" --rate 1000 --size 64 --stats-ms 250 --faults "$SPEC"
VERDICT1=$VERDICT
step "Phase 1 done"
where "$OUT" ""
say "  phase 1: $VERDICT1"

step "Phase 2: votes at 100/s and blocks flat out to each peer for $SECONDS_RUN2 s, under link faults"
say "  faults:  $SPEC2"
say "  classes: $CLASSES"
say "  (each second: the cluster's line, then one line per class)"
run_cluster "$OUT/classes" --duration "$SECONDS_RUN2" --classes "$CLASSES" --faults "$SPEC2"
VERDICT2=$VERDICT

# --- Wrap up
step "Done"
where "$OUT/classes" ", p99 per class"
# The cluster's per-class summary: class p50 p99 sent delivered dropped
# aborted lost ok/pairs integrity.
say "  per class (every pair cross-checked per class):"
awk '/^per class /{f=1; next} f && /^class /{next} f && NF < 10 {f=0} f {
  printf "    %-6s integrity %-6s  p99 %9s  sent %8s  delivered %8s  dropped %8s  aborted %6s  lost %s\n",
    $1, $10, $3, $4, $5, $6, $7, $8 }' "$LOG"
say "  phase 1: $VERDICT1"
say "  phase 2: $VERDICT2"
if [ "$VERDICT1" = "integrity: ok" ] && [ "$VERDICT2" = "integrity: ok" ]; then
  say "  Every message each replica sent, in each class, was delivered once, in order, or"
  say "  counted in its class (dropped from the class's full ring, or aborted with a stream"
  say "  that could not be resumed, or lost with a replica that was killed)."
  say "integrity: ok"
  exit 0
fi
say "  A verdict is not the one expected: read the notes in the tables above."
say "integrity: FAILED"
exit 1
