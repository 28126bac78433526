#!/usr/bin/env bash
# Two replicas of examples/embed.c, the second started 0.5 s after the first,
# exchange COUNT messages each way: both must exit 0 and report every message
# received in order and their own flushed. Keys come from bftnet-keygen, the
# peer IDs from `bftnet-keygen --show`, as the README tells a user to do.
#   embed_run.sh EMBED KEYGEN [COUNT]
set -euo pipefail
embed=$1 keygen=$2 count=${3:-500}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

made0=$("$keygen" "$tmp/r0.key")
"$keygen" "$tmp/r1.key" > /dev/null
id0=$("$keygen" --show "$tmp/r0.key")
id1=$("$keygen" --show "$tmp/r1.key")
[ "$made0" = "$id0" ] || { echo "FAIL: --show printed $id0, keygen had printed $made0"; exit 1; }

# Fixed ports are what a real deployment has; pick a random pair and try
# another if one is taken (embed exits 3 when it cannot bind).
for attempt in 1 2 3 4 5; do
  p0=$((20000 + RANDOM % 20000 * 2)) p1=$((20001 + RANDOM % 20000 * 2))
  a0=/ip4/127.0.0.1/tcp/$p0 a1=/ip4/127.0.0.1/tcp/$p1
  start=$(date +%s%N)
  "$embed" r0 "$tmp/r0.key" "$a0" r1 "$a1/p2p/$id1" "$count" > "$tmp/r0.out" 2> "$tmp/r0.err" &
  pids=($!)
  sleep 0.5
  "$embed" r1 "$tmp/r1.key" "$a1" r0 "$a0/p2p/$id0" "$count" > "$tmp/r1.out" 2> "$tmp/r1.err" &
  pids+=($!)
  rc0=0 rc1=0
  wait "${pids[0]}" || rc0=$?
  wait "${pids[1]}" || rc1=$?
  pids=()
  [ $rc0 -eq 3 ] || [ $rc1 -eq 3 ] || break
  echo "attempt $attempt: port $p0 or $p1 in use; trying others"
done
ms=$((($(date +%s%N) - start) / 1000000))

bad=0
for r in r0 r1; do
  echo "--- $r stdout"; cat "$tmp/$r.out"
  echo "--- $r stderr"; cat "$tmp/$r.err"
done
[ $rc0 -eq 0 ] || { echo "FAIL: r0 exited $rc0"; bad=1; }
[ $rc1 -eq 0 ] || { echo "FAIL: r1 exited $rc1"; bad=1; }
grep -qx "r0: sent $count, received $count from r1, flushed" "$tmp/r0.out" ||
  { echo "FAIL: r0 did not report $count received and flushed"; bad=1; }
grep -qx "r1: sent $count, received $count from r0, flushed" "$tmp/r1.out" ||
  { echo "FAIL: r1 did not report $count received and flushed"; bad=1; }
[ $bad -eq 0 ] || exit 1
echo "ok: two replicas started 0.5 s apart exchanged $count messages each way in $ms ms"
