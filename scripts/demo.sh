#!/usr/bin/env bash
# demo.sh — three bftnet nodes on this machine find, authenticate and ping
# one another over the libp2p wire protocols (TCP, multistream-select, Noise,
# yamux, /ipfs/ping/1.0.0), then one dial that must be refused.
#
# Builds the tools without sanitizers into build/release (scripts/deps.sh
# first). Everything runs on 127.0.0.1 and is stopped on exit.
# Environment: BFTNET_SKIP_DEPS=1 skips scripts/deps.sh; BFTNET_JOBS (default
# nproc); BFTNET_TOOLS_DIR=DIR uses the tools in DIR instead of building them.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
JOBS=${BFTNET_JOBS:-$(nproc 2>/dev/null || echo 2)}
DIAL_TIMEOUT=15 # seconds for one bftnet-ping dial
START_TIMEOUT=10 # seconds for a listener to print its address
PEER_ID_RE='(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{30,}'

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
  cmake --build "$BUILD" -j "$JOBS" --target bftnet-keygen bftnet-ping >"$BUILD/build.log" 2>&1 ||
    { tail -n 40 "$BUILD/build.log"; die "building bftnet-keygen and bftnet-ping failed (log: $BUILD/build.log)"; }
  warnings=$(grep -c 'warning:' "$BUILD/build.log" || true)
  if [ "${warnings:-0}" -gt 0 ]; then
    say "  built ($warnings compiler warning(s): ${BUILD#"$ROOT"/}/build.log)"
  else
    say "  built"
  fi
  TOOLS=$BUILD/tools
fi
KEYGEN=$TOOLS/bftnet-keygen
PING=$TOOLS/bftnet-ping
if [ ! -x "$KEYGEN" ] || [ ! -x "$PING" ]; then
  die "bftnet-keygen or bftnet-ping is missing in $TOOLS"
fi

# --- Processes and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bftnet-demo.XXXXXX")
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
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show() { # show FILE: the file's lines, indented
  [ -s "$1" ] && sed 's/^/      | /' "$1"
  return 0
}

NODES=(A B C)
declare -A ID ADDR PID

# --- Identities
step "Creating an identity (Ed25519 key -> libp2p peer ID) for each node"
for n in "${NODES[@]}"; do
  "$KEYGEN" "$WORK/$n.key" >"$WORK/$n.keygen" 2>&1 || { show "$WORK/$n.keygen"; die "bftnet-keygen failed for $n"; }
  ID[$n]=$(grep -oE "$PEER_ID_RE" "$WORK/$n.keygen" | head -n1 || true)
  [ -n "${ID[$n]}" ] || { show "$WORK/$n.keygen"; die "bftnet-keygen printed no peer ID for $n"; }
  say "  node $n: peer ID ${ID[$n]}"
done

# --- Listeners
step "Starting the three nodes, each listening on 127.0.0.1 (port chosen by the OS)"
for n in "${NODES[@]}"; do
  "$PING" --listen /ip4/127.0.0.1/tcp/0 --key "$WORK/$n.key" </dev/null \
    >"$WORK/$n.out" 2>"$WORK/$n.err" &
  PID[$n]=$!
  PIDS+=("${PID[$n]}")
done
for n in "${NODES[@]}"; do
  for _ in $(seq $((START_TIMEOUT * 10))); do
    [ -s "$WORK/$n.out" ] && [ "$(wc -l <"$WORK/$n.out")" -ge 1 ] && break
    kill -0 "${PID[$n]}" 2>/dev/null || { show "$WORK/$n.err"; die "node $n exited at start"; }
    sleep 0.1
  done
  ADDR[$n]=$(head -n1 "$WORK/$n.out")
  [ -n "${ADDR[$n]}" ] || { show "$WORK/$n.err"; die "node $n printed no address within ${START_TIMEOUT}s"; }
  case ${ADDR[$n]} in
    */p2p/"${ID[$n]}") ;;
    *) die "node $n's address ${ADDR[$n]} does not end in /p2p/${ID[$n]} (its key's peer ID)" ;;
  esac
  say "  node $n listens on ${ADDR[$n]}"
done

# dial FROM TO_ADDR OUTFILE [extra args]: bftnet-ping with FROM's key; returns its status.
dial() {
  local from=$1 addr=$2 out=$3
  shift 3
  local rc=0
  timeout --kill-after=3 "$DIAL_TIMEOUT" "$PING" --key "$WORK/$from.key" "$@" "$addr" \
    </dev/null >"$out" 2>&1 || rc=$?
  return $rc
}

# --- Pings: every node dials the other two
step "Each node dials the other two, authenticates it (Noise XX) and pings it 3 times"
PAIRS=0
for from in "${NODES[@]}"; do
  for to in "${NODES[@]}"; do
    [ "$from" != "$to" ] || continue
    out=$WORK/$from-$to.ping
    rc=0
    dial "$from" "${ADDR[$to]}" "$out" --count 3 || rc=$?
    if [ $rc -ne 0 ]; then
      show "$out"
      [ $rc -eq 124 ] && die "$from -> $to: no answer within ${DIAL_TIMEOUT}s"
      die "$from -> $to: bftnet-ping failed (exit $rc)"
    fi
    grep -qF "${ID[$to]}" "$out" ||
      { show "$out"; die "$from -> $to: bftnet-ping did not report $to's peer ID ${ID[$to]}"; }
    # Round trips from the "ping N: ..." lines, if the output has them.
    rtts=$(grep -iE '^ *ping' "$out" | grep -oiE '[0-9]+(\.[0-9]+)? ?(ms|us|µs)' |
      paste -sd, - | sed 's/,/, /g' || true)
    say "  $from -> $to: connected; the node there proved it is $to (${ID[$to]:0:16}...); 3 pings answered${rtts:+, round trips $rtts}"
    show "$out"
    PAIRS=$((PAIRS + 1))
  done
done

# --- A dial that must fail: B's address, but C's peer ID
step "A dial that must be refused: B's address, claiming to be C"
WRONG=${ADDR[B]%/p2p/*}/p2p/${ID[C]}
say "  dialing $WRONG"
say "  (the node there proves in the Noise handshake that it is B, not C)"
out=$WORK/mismatch.ping
rc=0
dial A "$WRONG" "$out" --count 1 || rc=$?
show "$out"
if [ $rc -eq 0 ]; then
  die "the dial to B's address succeeded although it claimed C's peer ID: peer IDs are not checked"
fi
[ $rc -ne 124 ] || die "the mismatching dial hung instead of failing"
# bftnet-ping exits 4 on a peer-ID mismatch (tools/bftnet-ping.c).
if [ $rc -eq 4 ] || grep -qiE 'mismatch|does not match' "$out"; then
  say "  refused, as it must be: the remote's authenticated peer ID is B's, not C's (exit $rc)"
else
  die "the dial failed (exit $rc), but not with a peer-ID mismatch"
fi

# --- Wrap up
for n in "${NODES[@]}"; do
  kill -0 "${PID[$n]}" 2>/dev/null || { show "$WORK/$n.err"; die "node $n died during the demo"; }
done
step "Done"
say "  3 nodes, $PAIRS authenticated connections, $((PAIRS * 3)) pings answered, 1 impostor dial refused."
say "  All three nodes were still running at the end; they are stopped now."
