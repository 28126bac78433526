#!/usr/bin/env bash
# bftnet <-> js-libp2p interop scenarios, run by ctest (tests/interop/interop.cmake).
#
#   run_interop.sh BUILD_DIR SCENARIO
#
# SCENARIO:
#   js-self     js listen + js dial: checks the harness and js_peer.mjs themselves
#   c-dials-js  js listens; BUILD_DIR/tools/bftnet-ping --count 3 and
#               BUILD_DIR/tests/interop_peer dial must both succeed against it
#   js-dials-c  BUILD_DIR/tests/interop_peer listen; js_peer.mjs dial must succeed
#   js-migration BUILD_DIR/tests/mig_interop runs bftnet against js_mig_peer.mjs
#               (stream migration on js's stock yamux: cuts, resumes, failback,
#               flush on both sides); its exit status decides
#
# Listeners print their multiaddr (.../p2p/<peer-id>) as their first stdout
# line; their stdin is a FIFO that reaches EOF only when this script is gone.
# At the end a listener gets SIGTERM and must exit within 10 s with status 0
# (or die by the signal, 143): anything else, such as an ASan/LSan report at
# exit, fails the scenario.
#
# Exit codes: 0 passed, 1 failed, 2 usage, 77 skipped (ctest SKIP_RETURN_CODE):
# Node >= 20 or tests/interop/node_modules is missing (scripts/deps.sh installs it).
# The binaries can be overridden with BFTNET_PING_BIN and INTEROP_PEER_BIN
# (interop.cmake sets them from the CMake targets).
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SKIP=77
START_TIMEOUT=${BFTNET_INTEROP_START_TIMEOUT:-20}  # seconds for a listener's address
RUN_TIMEOUT=${BFTNET_INTEROP_RUN_TIMEOUT:-35}      # seconds for one dialing program

usage() {
  echo "usage: $0 BUILD_DIR {js-self|c-dials-js|js-dials-c|js-migration}" >&2
  exit 2
}
[ $# -eq 2 ] || usage
BUILD_DIR=$1
SCENARIO=$2
case $SCENARIO in js-self | c-dials-js | js-dials-c | js-migration) ;; *) usage ;; esac

say() { printf 'interop[%s]: %s\n' "$SCENARIO" "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

# --- Prerequisites: a missing Node or npm install is a skip, not a failure.
if ! command -v node >/dev/null 2>&1; then
  say "SKIP: node not found (Node >= 20 is needed for the js-libp2p peer)"
  exit $SKIP
fi
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "${NODE_MAJOR:-0}" -lt 20 ]; then
  say "SKIP: Node $(node --version 2>/dev/null || echo '?') is too old (need >= 20)"
  exit $SKIP
fi
if [ ! -f "$HERE/node_modules/libp2p/package.json" ]; then
  say "SKIP: $HERE/node_modules is missing: run scripts/deps.sh (npm ci in tests/interop)"
  exit $SKIP
fi
PING_BIN=${BFTNET_PING_BIN:-$BUILD_DIR/tools/bftnet-ping}
PEER_BIN=${INTEROP_PEER_BIN:-$BUILD_DIR/tests/interop_peer}
MIG_BIN=${MIG_INTEROP_BIN:-$BUILD_DIR/tests/mig_interop}
need_bin() {
  [ -x "$1" ] || fail "$1 is missing or not executable (build it first; BUILD_DIR=$BUILD_DIR)"
}

# --- Processes and cleanup. Listeners read stdin from a FIFO whose only writer
# is this script (fd 9): if the script dies, even by SIGKILL, they see EOF.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bftnet-interop.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? pid alive
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  exec 9>&-
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkfifo "$WORK/stdin"
exec 9<>"$WORK/stdin"

# forget_pid PID: a reaped process's PID may be reused; never signal it again.
forget_pid() {
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# start_listener NAME CMD...: starts CMD in the background with its stdout in
# $WORK/NAME.out and stderr in $WORK/NAME.err; sets LISTEN_PID.
start_listener() {
  local name=$1
  shift
  "$@" <"$WORK/stdin" >"$WORK/$name.out" 2>"$WORK/$name.err" 9>&- &
  LISTEN_PID=$!
  PIDS+=("$LISTEN_PID")
}

# wait_addr NAME PID: waits (bounded) for the first complete stdout line of the
# listener and checks it is a multiaddr with a peer ID; sets ADDR and PEER.
wait_addr() {
  local name=$1 pid=$2
  for _ in $(seq $((START_TIMEOUT * 10))); do
    if [ -s "$WORK/$name.out" ] && [ "$(wc -l <"$WORK/$name.out")" -ge 1 ]; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$name"
      fail "$name exited before printing its address"
    fi
    sleep 0.1
  done
  ADDR=$(head -n1 "$WORK/$name.out")
  if [ -z "$ADDR" ]; then
    show_log "$name"
    fail "$name printed no address within ${START_TIMEOUT}s"
  fi
  case $ADDR in
    /ip4/*/tcp/*/p2p/* | /ip6/*/tcp/*/p2p/*) ;;
    *)
      show_log "$name"
      fail "$name's first line is not a multiaddr with /p2p/<peer-id>: '$ADDR'"
      ;;
  esac
  PEER=${ADDR##*/p2p/}
  say "$name listens on $ADDR"
}

show_log() {
  local f
  for f in "$WORK/$1.out" "$WORK/$1.err"; do
    [ -s "$f" ] || continue
    echo "----- $(basename "$f") -----"
    tail -n 60 "$f"
  done
}

# run_step NAME CMD...: runs CMD bounded by RUN_TIMEOUT, shows its output, and
# fails the scenario if it does not exit 0. Output is kept in $WORK/NAME.out.
run_step() {
  local name=$1 rc=0
  shift
  say "run: $*"
  # In the background so that a signal to this script is handled at once.
  timeout --kill-after=5 "$RUN_TIMEOUT" "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" 9>&- &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  show_log "$name"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    fail "$name timed out after ${RUN_TIMEOUT}s"
  fi
  [ $rc -eq 0 ] || fail "$name exited with status $rc"
}

listener_alive() {
  if ! kill -0 "$2" 2>/dev/null; then
    show_log "$1"
    fail "$1 died during the scenario"
  fi
}

# stop_listener NAME PID: SIGTERM, then the listener must exit within 10 s
# with status 0 (or 143, killed by the signal): any other status is a
# sanitizer report (ASan/LSan at exit) or a crash, and fails the scenario.
stop_listener() {
  local name=$1 pid=$2 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    show_log "$name"
    fail "$name did not exit within 10 s of SIGTERM"
  fi
  wait "$pid" || rc=$?
  forget_pid "$pid"
  case $rc in
    0 | 143) ;;
    *)
      show_log "$name"
      fail "$name exited with status $rc after SIGTERM (sanitizer report or crash?)"
      ;;
  esac
}

js_dial_ok() {
  local last
  last=$(grep -E '^\{' "$WORK/$1.out" | tail -n1 || true)
  case $last in
    *'"ok":true'*) ;;
    *) fail "js dial did not report ok: ${last:-no JSON line}" ;;
  esac
}

JS=(node "$HERE/js_peer.mjs")

case $SCENARIO in
  js-self)
    start_listener js-listen "${JS[@]}" listen
    js_pid=$LISTEN_PID
    wait_addr js-listen "$js_pid"
    run_step js-dial "${JS[@]}" dial "$ADDR"
    js_dial_ok js-dial
    listener_alive js-listen "$js_pid"
    stop_listener js-listen "$js_pid"
    ;;
  c-dials-js)
    need_bin "$PING_BIN"
    need_bin "$PEER_BIN"
    start_listener js-listen "${JS[@]}" listen
    js_pid=$LISTEN_PID
    wait_addr js-listen "$js_pid"
    run_step bftnet-ping "$PING_BIN" --count 3 "$ADDR"
    grep -qF "$PEER" "$WORK/bftnet-ping.out" ||
      fail "bftnet-ping did not print the js peer ID $PEER"
    run_step interop_peer-dial "$PEER_BIN" dial "$ADDR"
    listener_alive js-listen "$js_pid"
    show_log js-listen
    ;;
  js-dials-c)
    need_bin "$PEER_BIN"
    start_listener interop_peer-listen "$PEER_BIN" listen
    c_pid=$LISTEN_PID
    wait_addr interop_peer-listen "$c_pid"
    run_step js-dial "${JS[@]}" dial "$ADDR"
    js_dial_ok js-dial
    listener_alive interop_peer-listen "$c_pid"
    stop_listener interop_peer-listen "$c_pid"
    show_log interop_peer-listen
    ;;
  js-migration)
    need_bin "$MIG_BIN"
    RUN_TIMEOUT=${BFTNET_INTEROP_MIG_TIMEOUT:-150}
    run_step mig_interop "$MIG_BIN" "$HERE/js_mig_peer.mjs"
    ;;
esac
say "PASS"
