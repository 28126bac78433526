#!/usr/bin/env bash
# metrics_promtool.sh REPLICA KEYGEN — the metrics of real nodes pass
# `promtool check metrics` (the exposition format and Prometheus' naming
# lint: HELP and TYPE lines, _total counters, base units).
#
# Two bftnet-replica processes exchange messages, each serving
# /metrics (--metrics-listen 127.0.0.1:0). After 1.5 s both pages are fetched:
# promtool finds no problem in either, each has its peer's delivered
# counter above zero, labels only from the membership, the process's own
# series; /other is a 404. And `promtool check rules` accepts the alerting
# rules of docs/bftnet-alerts.yml. Then two replicas with traffic classes:
# the per-class series pass promtool too. Skips (77) without promtool (Debian:
# prometheus).
set -u
REPLICA=${1:?usage: metrics_promtool.sh REPLICA KEYGEN}
KEYGEN=${2:?usage: metrics_promtool.sh REPLICA KEYGEN}
. "$(dirname "$0")/metrics_lib.sh"

command -v promtool >/dev/null 2>&1 ||
  skip "promtool is not installed (Debian: apt-get install prometheus; scripts/deps.sh does)"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

start_replicas 2 200 30
sleep 1.5
for i in 0 1; do
  http_get "http://127.0.0.1:${mport[i]}/metrics" "$work/r$i.metrics" || fail "GET r$i /metrics"
done
# The alerting rules docs/OPERATING.md recommends are valid PromQL.
rules="$(dirname "$0")/../../docs/bftnet-alerts.yml"
out=$(promtool check rules "$rules" 2>&1) || fail "promtool check rules $rules: $out"
echo "$rules: $(echo "$out" | grep -o 'SUCCESS: [0-9]* rules found')"
st=$(http_status "http://127.0.0.1:${mport[0]}/other")
[ "$st" = 404 ] || fail "GET /other: status $st, want 404"
for i in 0 1; do
  out=$(promtool check metrics <"$work/r$i.metrics" 2>&1)
  rc=$?
  [ "$rc" = 0 ] && [ -z "$out" ] || fail "promtool check metrics (r$i, exit $rc): $out"
  other=$((1 - i))
  v=$(sed -n "s/^bftnet_peer_delivered_messages_total{peer=\"r$other\"} \([0-9]*\)$/\1/p" \
    "$work/r$i.metrics")
  [ -n "$v" ] && [ "$v" -gt 0 ] || fail "r$i: no messages delivered from r$other: '$v'"
  # Labels: peer= only from the membership (r0, r1), never a peer ID.
  bad=$(grep -o 'peer="[^"]*"' "$work/r$i.metrics" | sort -u | grep -v "^peer=\"r$other\"$")
  [ -z "$bad" ] || fail "r$i: labels outside the membership: $bad"
  grep -q "${peer[other]}" "$work/r$i.metrics" && fail "r$i: a peer ID in the metrics"
  for fam in bftnet_conn_established_total bftnet_peer_rtt_smoothed_seconds \
    bftnet_peer_since_heard_seconds process_resident_memory_bytes process_cpu_seconds_total; do
    grep -q "^# TYPE $fam " "$work/r$i.metrics" || fail "r$i: no family $fam"
  done
  echo "r$i: $(grep -vc '^#' "$work/r$i.metrics") samples, $(grep -c '^# TYPE' "$work/r$i.metrics") families, promtool: no problem; delivered from r$other: $v"
done
for i in 0 1; do kill -TERM "${rpid[i]}" 2>/dev/null; done
wait_replicas
# With traffic classes: the per-class series (per member, and node-wide
# per class) pass too, labelled with the configured class names only.
rm -f "$work"/r*.key
start_replicas 2 0 30 --classes 'vote:prio=0;size=64;rate=200,block:prio=1;size=4096;rate=50'
sleep 1.5
http_get "http://127.0.0.1:${mport[0]}/metrics" "$work/c0.metrics" || fail "GET c0 /metrics"
out=$(promtool check metrics <"$work/c0.metrics" 2>&1)
rc=$?
[ "$rc" = 0 ] && [ -z "$out" ] || fail "promtool check metrics (classes, exit $rc): $out"
for s in 'bftnet_class_delivered_messages_total{peer="r1",class="block"}' \
  'bftnet_class_peer_tentative_evicted_messages_total{peer="r1",class="vote"}' \
  'bftnet_class_inbound_discarded_removed_messages_total{class="vote"}' \
  'bftnet_class_tentative_evicted_messages_total{class="block"}'; do
  grep -qF "$s " "$work/c0.metrics" || fail "classes: no sample $s"
done
bad=$(grep -o 'class="[^"]*"' "$work/c0.metrics" | sort -u | grep -v '^class="\(vote\|block\)"$')
[ -z "$bad" ] || fail "classes: labels outside the configuration: $bad"
echo "classes: $(grep -vc '^#' "$work/c0.metrics") samples, $(grep -c '^# TYPE' "$work/c0.metrics") families, promtool: no problem"
for i in 0 1; do kill -TERM "${rpid[i]}" 2>/dev/null; done
wait_replicas
echo "PASS"
