# metrics_lib.sh — what the metrics tests share (sourced, not run): a
# scratch directory, replicas of one membership on 127.0.0.1 with
# --metrics-listen 127.0.0.1:0, their metrics ports, HTTP GETs.
# python3 (a build dependency: tests/arch) does the HTTP and the JSON.

work=$(mktemp -d "${TMPDIR:-/tmp}/bftnet_metrics.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${keep:-0}" = 1 ]; then echo "(files kept in $work)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.err "$work"/*.log; do
    [ -s "$f" ] || continue
    echo "---- $f (last 15 lines)" >&2
    tail -n 15 "$f" >&2
  done
  keep=1
  exit 1
}

# skip MESSAGE: ctest's SKIP_RETURN_CODE.
skip() {
  echo "SKIPPED: $*"
  exit 77
}

# free_port: a TCP port nobody listens on now (the kernel's choice).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# http_get URL [OUT]: the body on stdout (or into OUT); fails on a status
# other than 200.
http_get() {
  python3 - "$@" <<'PY'
import sys, urllib.request
url = sys.argv[1]
try:
    body = urllib.request.urlopen(url, timeout=5).read()
except Exception as e:
    sys.stderr.write(f"GET {url}: {e}\n")
    sys.exit(1)
if len(sys.argv) > 2:
    open(sys.argv[2], "wb").write(body)
else:
    sys.stdout.buffer.write(body)
PY
}

# http_status URL: the status code of a GET (errors included).
http_status() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PY
}

# start_replicas N RATE DURATION_S [ARG...]: replicas r0..r(N-1), all
# members of one membership, each with --metrics-listen 127.0.0.1:0 (and
# the ARGs); mport[i] is where replica i serves /metrics.
start_replicas() {
  local n=$1 rate=$2 dur=$3 i port
  local extra=("${@:4}")
  local members="$work/members.json" entries=""
  for ((i = 0; i < n; i++)); do
    "$KEYGEN" "$work/r$i.key" >/dev/null || fail "keygen r$i"
    peer[i]=$("$KEYGEN" --show "$work/r$i.key") || fail "keygen --show r$i"
    lport[i]=$(free_port)
    entries+="${entries:+,}{\"id\":\"r$i\",\"addrs\":[\"/ip4/127.0.0.1/tcp/${lport[i]}/p2p/${peer[i]}\"]}"
  done
  printf '{"members":[%s]}\n' "$entries" >"$members"
  for ((i = 0; i < n; i++)); do
    "$REPLICA" --id "r$i" --key "$work/r$i.key" --listen "/ip4/127.0.0.1/tcp/${lport[i]}" \
      --members "$members" --rate "$rate" --duration "$dur" --stats-ms 0 --drain-ms 2000 \
      --metrics-listen 127.0.0.1:0 --report "$work/r$i.report.json" "${extra[@]}" \
      >"$work/r$i.out" 2>"$work/r$i.err" &
    pids+=($!)
    rpid[i]=$!
  done
  for ((i = 0; i < n; i++)); do
    for ((t = 0; t < 100; t++)); do
      port=$(sed -n 's/.*"type":"metrics".*"port":\([0-9]*\).*/\1/p' "$work/r$i.out" | head -n1)
      [ -n "$port" ] && break
      sleep 0.05
    done
    [ -n "$port" ] || fail "r$i printed no metrics line"
    mport[i]=$port
  done
}

# wait_replicas: every replica exits 0.
wait_replicas() {
  local i rc
  for ((i = 0; i < ${#rpid[@]}; i++)); do
    wait "${rpid[i]}"
    rc=$?
    [ "$rc" = 0 ] || fail "r$i exited with $rc"
  done
  pids=()
}
