#!/usr/bin/env bash
# metrics_prometheus.sh REPLICA KEYGEN — a real Prometheus server scrapes a
# small cluster and its HTTP API sees the delivered-messages counter grow.
#
# Three bftnet-replica processes (one membership, 20 messages/s to each
# peer, --metrics-listen 127.0.0.1:0); a `prometheus` server with a config
# written here (scrape_interval 1s, the three targets), its TSDB in a
# scratch directory, its web API on a free loopback port. Then, through
# /api/v1/query: every target is up, every replica has a delivered counter
# for each of its two peers (6 series, labels only r0..r2), and
# sum(bftnet_peer_delivered_messages_total) is larger 3 s later; the rate
# over 5 s is positive. Bounded: about 20 s. Skips (77) without prometheus
# (Debian: prometheus).
set -u
REPLICA=${1:?usage: metrics_prometheus.sh REPLICA KEYGEN}
KEYGEN=${2:?usage: metrics_prometheus.sh REPLICA KEYGEN}
. "$(dirname "$0")/metrics_lib.sh"

command -v prometheus >/dev/null 2>&1 ||
  skip "the prometheus server is not installed (Debian: apt-get install prometheus; scripts/deps.sh does)"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

start_replicas 3 20 120 # stopped below (SIGTERM), whatever the machine's load
pport=$(free_port)
targets=""
for i in 0 1 2; do targets+="${targets:+, }'127.0.0.1:${mport[i]}'"; done
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bftnet
    static_configs:
      - targets: [$targets]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$pport"

# query EXPR: the first result's value, or "" when there is none.
query() {
  python3 - "$api" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))
except Exception as e:
    sys.stderr.write(f"query {sys.argv[2]}: {e}\n")
    sys.exit(0)
res = r.get("data", {}).get("result", [])
print(res[0]["value"][1] if res else "")
PY
}

# until_true SECONDS CMD...: retries CMD every 0.25 s.
until_true() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.25
  done
}

ready() { [ "$(http_status "$api/-/ready")" = 200 ]; }
until_true 20 ready || fail "prometheus did not become ready on $api"
all_up() { [ "$(query 'count(up{job="bftnet"} == 1)')" = 3 ]; }
until_true 15 all_up || fail "the 3 replicas are not all up: $(query 'count(up{job="bftnet"} == 1)')"
six() { [ "$(query 'count(bftnet_peer_delivered_messages_total)')" = 6 ]; }
until_true 10 six || fail "want 6 delivered series: $(query 'count(bftnet_peer_delivered_messages_total)')"
peers=$(query 'count(count by (peer) (bftnet_peer_delivered_messages_total{peer=~"r[0-2]"}))')
[ "$peers" = 3 ] || fail "peer labels: $peers distinct of r0..r2, want 3"
other=$(query 'count(bftnet_peer_delivered_messages_total{peer!~"r[0-2]"})')
[ -z "$other" ] || fail "series labelled outside the membership: $other"

d1=$(query 'sum(bftnet_peer_delivered_messages_total)')
sleep 3
d2=$(query 'sum(bftnet_peer_delivered_messages_total)')
rate=$(query 'sum(rate(bftnet_peer_delivered_messages_total[5s]))')
echo "sum(bftnet_peer_delivered_messages_total): $d1, 3 s later $d2; rate over 5 s: $rate/s"
python3 -c "import sys; a, b, r = map(float, sys.argv[1:]); sys.exit(0 if 0 < a < b and r > 0 else 1)" \
  "${d1:-0}" "${d2:-0}" "${rate:-0}" || fail "the delivered counter did not grow: $d1 -> $d2 (rate $rate)"
connected=$(query 'sum(bftnet_members_connected)')
[ "$connected" = 6 ] || fail "sum(bftnet_members_connected) = $connected, want 6"
kill -TERM "${pids[3]}" 2>/dev/null
for i in 0 1 2; do kill -TERM "${rpid[i]}" 2>/dev/null; done
wait_replicas
echo "PASS"
