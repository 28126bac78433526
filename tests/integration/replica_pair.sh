#!/usr/bin/env bash
# replica_pair.sh REPLICA KEYGEN — two bftnet-replica processes on 127.0.0.1.
#
# 1. Load: --rate 2000 --duration 3. Both exit 0, both reports have every
#    field (docs/REPORT.md), say "integrity": "ok" with a complete drain,
#    and each side delivered exactly what the other sent minus its counted
#    drops and aborts.
# 2. SIGHUP: a broken membership file is refused (the replica keeps running
#    with the old one), then a file without the peer removes it; the replica
#    keeps running, logs and reports the change, and stops cleanly on SIGTERM.
#
# Reports are checked with jq when it is installed, else with awk over the
# report's fixed indented layout (python3 is not assumed).
set -u
REPLICA=${1:?usage: replica_pair.sh REPLICA KEYGEN}
KEYGEN=${2:?usage: replica_pair.sh REPLICA KEYGEN}

work=$(mktemp -d "${TMPDIR:-/tmp}/replica_pair.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ "${keep:-0}" = 1 ]; then echo "(logs kept in $work)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.err "$work"/*.out; do
    [ -s "$f" ] || continue
    echo "---- $f (last 15 lines)" >&2
    tail -n 15 "$f" >&2
  done
  keep=1
  exit 1
}

# --- report access: "path.to.field value" lines ----------------------------
if command -v jq >/dev/null 2>&1; then
  HAVE_JQ=1
  flatten() { jq -r 'paths(type != "object" and type != "array") as $p | "\($p | map(tostring) | join(".")) \(getpath($p))"' "$1"; }
else
  HAVE_JQ=0
  # jansson's JSON_INDENT layout: one member per line, objects/arrays open
  # at the end of their key's line and close on a line of their own.
  flatten() {
    awk '{
      l = $0; sub(/^[ \t]+/, "", l); sub(/,$/, "", l)
      if (l ~ /^[}\]]$/) { d--; next }
      if (!match(l, /^"[^"]*": /)) next
      k = substr(l, 2, RLENGTH - 4); v = substr(l, RLENGTH + 1)
      if (v == "{" || v == "[") { s[++d] = k; next }
      gsub(/^"|"$/, "", v); p = ""
      for (i = 1; i <= d; i++) p = p s[i] "."
      print p k " " v
    }' "$1"
  }
fi

# get FLATFILE PATH — the value, or fails the test if the field is missing.
get() {
  local v
  v=$(awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print; found = 1; exit } END { exit !found }' "$1") ||
    fail "$1: no field $2"
  printf '%s' "$v"
}

ROW_FIELDS="sent enqueued written dropped dropped_by_us dropped_overflow dropped_removed aborted
  unconfirmed send_errors lagged delivered gaps duplicates reorders stale foreign rx_evicted
  unexplained_gaps latency_us.n latency_us.p50 latency_us.p90 latency_us.p99 latency_us.max
  latency_us.mean reconnects migrations bytes_out bytes_in ring_depth integrity"
TOP_FIELDS="schema id peer_id config.rate config.size config.duration_s config.stats_ms
  config.drain_ms config.ring_capacity elapsed_ms send_ms drain.ms drain.complete drain.reason
  integrity unknown_sender counters.conn_established counters.bytes_out"

# check_shape FLAT PEER...
check_shape() {
  local flat=$1 f p
  shift
  for f in $TOP_FIELDS; do get "$flat" "$f" >/dev/null; done
  for f in $ROW_FIELDS; do get "$flat" "total.$f" >/dev/null; done
  for p in "$@"; do
    for f in $ROW_FIELDS member peer_id max_seq; do get "$flat" "peers.$p.$f" >/dev/null; done
  done
  [ "$(get "$flat" schema)" = "bftnet-replica-report/1" ] || fail "$flat: schema"
}

# --- processes --------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

keys() {
  P1=$("$KEYGEN" "$work/r1.key") || fail "keygen r1"
  P2=$("$KEYGEN" "$work/r2.key") || fail "keygen r2"
}

# members FILE ID:PORT:PEER...
members() {
  local out=$1 sep="" e id port peer
  shift
  {
    printf '{"members": ['
    for e in "$@"; do
      IFS=: read -r id port peer <<<"$e"
      printf '%s\n  {"id": "%s", "addrs": ["/ip4/127.0.0.1/tcp/%s/p2p/%s"]}' "$sep" "$id" "$port" "$peer"
      sep=","
    done
    printf '\n]}\n'
  } >"$out.tmp" && mv "$out.tmp" "$out"
}

# start NAME PORT MEMBERS ARGS... — sets LAST_PID; the report goes to
# $work/$TAG-NAME.json.
start() {
  local name=$1 port=$2 mf=$3
  shift 3
  "$REPLICA" --id "$name" --key "$work/$name.key" --listen "/ip4/127.0.0.1/tcp/$port" \
    --members "$mf" --report "$work/$TAG-$name.json" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  LAST_PID=$!
  pids+=("$LAST_PID")
}

# wait_line FILE REGEX SECONDS PID
wait_line() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
    sleep 0.1
  done
  return 1
}

# wait_exit PID SECONDS — sets RC
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$1" 2>/dev/null && fail "pid $1 still running after $2 s"
  wait "$1"
  RC=$?
}

# pair MEMBERS-R1 MEMBERS-R2 ARGS... — starts r1 and r2 on fresh ports,
# retrying when a port is taken. Sets PID1 PID2 PORT1 PORT2. The ports are
# drawn below the kernel's ephemeral range (another test's outgoing
# connection may hold any port in it), and a start counts only once both
# replicas said they listen (the membership line comes before the listen).
pair() {
  local attempt lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 21000 ] 2>/dev/null || lo=32768
  for attempt in 1 2 3 4 5; do
    PORT1=$((20000 + (RANDOM * 32768 + RANDOM) % (lo - 20000 - 1)))
    PORT2=$((PORT1 + 1))
    port_busy "$PORT1" || port_busy "$PORT2" && continue
    members "$work/m1.json" "r1:$PORT1:$P1" "r2:$PORT2:$P2"
    cp "$work/m1.json" "$work/m2.json"
    start r1 "$PORT1" "$work/m1.json" "$@"
    PID1=$LAST_PID
    start r2 "$PORT2" "$work/m2.json" "$@"
    PID2=$LAST_PID
    if wait_line "$work/r1.out" '"type":"membership"' 5 "$PID1" &&
      wait_line "$work/r2.out" '"type":"membership"' 5 "$PID2" &&
      wait_line "$work/r1.out" '"type":"listen"' 5 "$PID1" &&
      wait_line "$work/r2.out" '"type":"listen"' 5 "$PID2"; then
      return 0
    fi
    grep -q 'listen' "$work/r1.err" "$work/r2.err" || fail "replicas did not start"
    kill -KILL "$PID1" "$PID2" 2>/dev/null
    wait "$PID1" "$PID2" 2>/dev/null
  done
  fail "no free port pair after 5 attempts"
}

keys

# === 1. load, duration, drain, report ========================================
TAG=load
pair --rate 2000 --size 100 --duration 3 --stats-ms 500 --drain-ms 8000
wait_exit "$PID1" 25
[ "$RC" = 0 ] || fail "r1 exited with $RC"
wait_exit "$PID2" 25
[ "$RC" = 0 ] || fail "r2 exited with $RC"
pids=()
[ -s "$work/load-r1.json" ] && [ -s "$work/load-r2.json" ] || fail "reports missing"
if [ "$HAVE_JQ" = 1 ]; then
  jq -e . "$work/load-r1.json" >/dev/null && jq -e . "$work/load-r2.json" >/dev/null || fail "report is not JSON"
fi
flatten "$work/load-r1.json" >"$work/f1" || fail "flatten r1"
flatten "$work/load-r2.json" >"$work/f2" || fail "flatten r2"
check_shape "$work/f1" r2
check_shape "$work/f2" r1

for side in 1 2; do
  f=$work/f$side
  [ "$(get "$f" integrity)" = ok ] || fail "r$side: integrity $(get "$f" integrity)"
  [ "$(get "$f" drain.complete)" = true ] || fail "r$side: drain $(get "$f" drain.reason)"
done

# delivered at each side == sent at the other - dropped - aborted
cross() { # RECV_FLAT SENDER SEND_FLAT RECEIVER
  local sent dropped aborted delivered unconf
  sent=$(get "$3" "peers.$4.sent")
  dropped=$(get "$3" "peers.$4.dropped_by_us")
  aborted=$(get "$3" "peers.$4.aborted")
  unconf=$(get "$3" "peers.$4.unconfirmed")
  delivered=$(get "$1" "peers.$2.delivered")
  echo "$2 -> $4: sent $sent dropped $dropped aborted $aborted delivered $delivered" \
    "max_seq $(get "$1" "peers.$2.max_seq") p50 $(get "$1" "peers.$2.latency_us.p50") us"
  [ "$sent" -ge 4000 ] || fail "$2 sent only $sent to $4 in 3 s at 2000/s"
  [ "$unconf" = 0 ] || fail "$2 -> $4: $unconf unconfirmed"
  [ "$delivered" -eq $((sent - dropped - aborted)) ] ||
    fail "$2 -> $4: delivered $delivered != sent $sent - dropped $dropped - aborted $aborted"
  for k in gaps duplicates reorders foreign; do
    [ "$(get "$1" "peers.$2.$k")" = 0 ] || fail "$2 -> $4: $k = $(get "$1" "peers.$2.$k")"
  done
}
cross "$work/f1" r2 "$work/f2" r1
cross "$work/f2" r1 "$work/f1" r2

# stdout: a listen line, a membership line, stats lines (>= 6 in 3 s at 500 ms)
n=$(grep -c '"type":"stats"' "$work/r1.out")
[ "$n" -ge 6 ] || fail "r1: only $n stats lines"
grep -q '"type":"listen"' "$work/r1.out" || fail "r1: no listen line"
if [ "$HAVE_JQ" = 1 ]; then
  jq -e -s 'map(select(.type == "stats")) | length >= 6 and
    all(.[]; (.t_ms | type) == "number" and (.total.sent | type) == "number" and
      (.peers.r2 | has("sent") and has("delivered") and has("dropped") and has("sent_per_s")
        and has("delivered_per_s") and has("p50_us") and has("p99_us") and has("reconnects")))' \
    "$work/r1.out" >/dev/null || fail "r1: stats lines lack fields"
else
  grep '"type":"stats"' "$work/r1.out" | grep -v '"sent_per_s":' | grep -q . && fail "r1: stats line shape"
fi

# === 2. SIGHUP: a broken file is refused; removing the peer ================
rm -f "$work"/r?.out "$work"/r?.err
TAG=hup
pair --rate 500 --stats-ms 200 --drain-ms 3000
sleep 1
printf '{"members": [' >"$work/m1.json.tmp" && mv "$work/m1.json.tmp" "$work/m1.json"
kill -HUP "$PID1"
wait_line "$work/r1.err" 'not applied' 5 "$PID1" || fail "r1: no log for the broken file"
kill -0 "$PID1" 2>/dev/null || fail "r1 died on a broken membership file"
members "$work/m1.json" "r1:$PORT1:$P1"
kill -HUP "$PID1"
wait_line "$work/r1.err" 'removed: r2' 5 "$PID1" || fail "r1: no log of removing r2"
wait_line "$work/r1.out" '"removed":\["r2"\]' 5 "$PID1" || fail "r1: no membership line"
sleep 1
kill -0 "$PID1" 2>/dev/null || fail "r1 stopped after SIGHUP"
grep -q '"r2":{[^}]*"member":false' "$work/r1.out" || fail "r1: stats do not show r2 removed"
sent_then=$(grep '"type":"stats"' "$work/r1.out" | tail -1 | grep -o '"r2":{"sent":[0-9]*' | grep -o '[0-9]*$')
sleep 0.5
sent_now=$(grep '"type":"stats"' "$work/r1.out" | tail -1 | grep -o '"r2":{"sent":[0-9]*' | grep -o '[0-9]*$')
[ "$sent_then" = "$sent_now" ] || fail "r1 still sends to the removed r2 ($sent_then -> $sent_now)"
kill -TERM "$PID1" "$PID2"
wait_exit "$PID1" 10
[ "$RC" = 0 ] || fail "r1 exited with $RC after SIGTERM"
wait_exit "$PID2" 10
[ "$RC" = 0 ] || fail "r2 exited with $RC after SIGTERM"
pids=()
flatten "$work/hup-r1.json" >"$work/fh1" || fail "flatten h1"
check_shape "$work/fh1" r2
[ "$(get "$work/fh1" peers.r2.member)" = false ] || fail "h1: r2 still a member"
[ "$(get "$work/fh1" integrity)" = ok ] || fail "h1: integrity $(get "$work/fh1" integrity)"
grep -q 'SIGHUP' "$work/r1.err" || fail "r1: SIGHUP not logged"
echo "replica_pair: ok (jq: $HAVE_JQ)"
