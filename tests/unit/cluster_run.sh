#!/usr/bin/env bash
# cluster_run.sh MODE CLUSTER CHECK — one bftnet-cluster run (about 10 s) and
# its checks. MODE:
#   clean    3 replicas, no faults: exit 0, last line "integrity: ok".
#   faults   3 replicas, a cut every 2 s, r2 killed (kill -9) at 3 s and
#            restarted 1 s later: the run finishes and reports every fault;
#            the receivers tell r2's two incarnations apart.
#   members  3 replicas, at 3 s r3 is added and r1 removed (SIGHUP): the
#            added replica's pairs are exact, nothing else is lost; loss
#            only at the tail of the removed replica's streams.
#   failover 3 replicas on two addresses each, r1's preferred path
#            refused from 2 s to 5 s: it and its peers use the second
#            addresses meanwhile.
#   netns    --netns (Linux, root): 3 replicas in network namespaces, r2's
#            link down from 2 s to 4 s, r1 killed at 4 s and restarted;
#            no namespace left afterwards. Exit 77 (skipped) when not root
#            or `ip netns` is unavailable.
#   direct   --direct, 4 replicas, a cut on r1-r2 at 2 s: only that link has
#            proxies (2), the others connect directly; and --out already
#            holds the files of a larger run (r4..r11): none is left.
#   classes  --classes, 3 replicas, no faults: votes (64 B, 100/s, the most
#            urgent class) and blocks (256 KiB flat out): each pair is
#            cross-checked per class; votes lose nothing while blocks drop
#            (their own drops only); live lines, table and plot per class.
# Every mode demands "integrity: ok" (migratable streams lose nothing
# uncounted); BFTNET_CLUSTER_STRICT=0 tolerates a verdict failed only by
# in-flight loss, for diagnosing. Every mode, always: the report's shape, no duplicate and
# no reorder anywhere (cluster_check.c), the CSV, the live lines, the table
# and, when gnuplot is installed, the PNG.
set -u
MODE=${1:?usage: cluster_run.sh clean|faults|members|failover|netns|direct CLUSTER CHECK}
CLUSTER=${2:?usage: cluster_run.sh MODE CLUSTER CHECK}
CHECK=${3:?usage: cluster_run.sh MODE CLUSTER CHECK}

work=$(mktemp -d "${TMPDIR:-/tmp}/cluster_$MODE.XXXXXX")
cpid=
cleanup() {
  [ -n "$cpid" ] && kill -TERM "$cpid" 2>/dev/null
  if [ "${keep:-0}" = 1 ]; then echo "(output kept in $work)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL ($MODE): $*" >&2
  echo "---- bftnet-cluster stdout (last 40 lines)" >&2
  tail -n 40 "$work/stdout" >&2
  echo "---- stderr" >&2
  tail -n 20 "$work/stderr" >&2
  keep=1
  exit 1
}

INFLIGHT_RE='^integrity: FAILED \([0-9]+ messages? lost in flight on links a fault broke, not counted\)$'
case $MODE in
  clean) args=(--replicas 3 --duration 5) ;;
  faults) args=(--replicas 3 --duration 7 --stats-ms 500 --drain-ms 2000
    --faults 'cut:every=2s,kill:at=3s;replica=r2;restart=1s') ;;
  members) args=(--replicas 3 --duration 6 --faults 'members:at=3s;add=r3;remove=r1') ;;
  failover) args=(--replicas 3 --duration 7 --faults 'failover:at=2s;replica=r1;back=5s') ;;
  netns)
    if [ "$(id -u)" != 0 ]; then echo "SKIP: --netns needs root"; exit 77; fi
    if ! command -v ip >/dev/null 2>&1; then echo "SKIP: no iproute2 ip"; exit 77; fi
    probe=bftc$$-probe
    if ! ip netns add "$probe" >/dev/null 2>&1; then echo "SKIP: ip netns add fails here"; exit 77; fi
    ip netns del "$probe" >/dev/null 2>&1
    args=(--netns --replicas 3 --duration 7 --stats-ms 500
      --faults 'partition:at=2s;for=2s;replica=r2,kill:at=4s;replica=r1;restart=1s') ;;
  direct) args=(--replicas 4 --duration 5 --direct --faults 'cut:at=2s;link=r1-r2') ;;
  classes) args=(--replicas 3 --duration 5
    --classes 'vote:prio=0;size=64;rate=100,block:prio=1;size=262144;rate=max;ring=16') ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac

out=$work/out
if [ "$MODE" = direct ]; then # what an earlier run with 12 replicas left
  mkdir -p "$out/keys" "$out/members" "$out/replicas"
  for i in 4 5 11; do
    for f in keys/r$i.key members/r$i.json replicas/r$i.report.json replicas/r$i.log \
      replicas/r$i.stdout.jsonl; do
      echo stale >"$out/$f"
    done
  done
  echo keep >"$out/replicas/notes.txt" # not a replica's file: kept
fi
"$CLUSTER" "${args[@]}" --out "$out" --seed 12345 >"$work/stdout" 2>"$work/stderr" &
cpid=$!
wait "$cpid"
rc=$?
[ "$MODE" = netns ] && [ "$rc" = 4 ] && { echo "SKIP: $(head -n 1 "$work/stdout")"; exit 77; }
nspid=$cpid
cpid=
verdict=$(tail -n 1 "$work/stdout")
echo "bftnet-cluster $MODE: exit $rc, $verdict"

# --- the verdict line and the exit status
case $MODE in
  clean | classes)
    [ "$rc" = 0 ] || fail "exit status $rc, want 0"
    [ "$verdict" = "integrity: ok" ] || fail "last line \"$verdict\", want \"integrity: ok\""
    ;;
  faults | members | failover | netns | direct)
    if [ "$verdict" = "integrity: ok" ]; then
      [ "$rc" = 0 ] || fail "integrity ok but exit $rc"
    else
      [ "${BFTNET_CLUSTER_STRICT:-1}" = 1 ] && fail "strict (BFTNET_CLUSTER_STRICT=0 relaxes it) and: $verdict"
      [ "$rc" = 1 ] || fail "exit status $rc, want 1 for a failed verdict"
      [[ $verdict =~ $INFLIGHT_RE ]] || fail "the verdict may fail only for in-flight loss: $verdict"
      echo "  (BFTNET_CLUSTER_STRICT=0: a failed verdict for in-flight loss only is tolerated)"
    fi
    ;;
esac

# --- live lines, table, files
n=$(grep -cE '^\[ *[0-9.]+s\] +[0-9]+ msgs/s +p50 ' "$work/stdout")
[ "$n" -ge 4 ] || fail "only $n live progress lines"
grep -qE '^\[ *[0-9.]+s\] +[0-9]+ msgs/s +p50 +[^ ]+ +p99 +[^ ]+ +drops [0-9]+ +reconnects [0-9]+ +migrations [0-9]+ +up [0-9]+/[0-9]+' \
  "$work/stdout" || fail "live lines without msgs/s, p50, p99, drops, reconnects and migrations"
grep -qE '^pair +sent +dropped +aborted +delivered +lost +gaps +dups +reord +p50 +p99 +max +recon +migr +verdict$' \
  "$work/stdout" || fail "no per-pair table header"
[ -s "$out/report.json" ] || fail "no report.json"
csv=$out/timeseries.csv
[ -s "$csv" ] || fail "no timeseries.csv"
[ "$(head -n 1 "$csv")" = "t_s,replica,msgs_per_s,p50_us,p99_us,drops,reconnects,migrations" ] ||
  fail "CSV header: $(head -n 1 "$csv")"
for r in r0 r1 r2 all; do
  grep -qE "^[0-9.]+,$r," "$csv" || fail "CSV has no rows for $r"
done
awk -F, 'NR > 1 && NF != 8 { bad = 1 } END { exit bad }' "$csv" || fail "CSV rows without 8 fields"
if command -v gnuplot >/dev/null 2>&1; then
  [ -s "$out/plot.png" ] || fail "gnuplot is installed but there is no plot.png"
  [ "$(head -c 8 "$out/plot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "plot.png is not a PNG"
else
  echo "  (gnuplot not installed: PNG not checked)"
  grep -q 'gnuplot is not installed' "$work/stdout" || fail "no word about the missing gnuplot"
fi
for r in r0 r1 r2; do
  [ -s "$out/replicas/$r.report.json" ] || fail "no report from $r"
done

# --- report.json
case $MODE in
  members) "$CHECK" members "$out/report.json" r3 r1 >"$work/check" 2>&1 ;;
  failover) "$CHECK" failover "$out/report.json" r1 >"$work/check" 2>&1 ;;
  netns) "$CHECK" netns "$out/report.json" r2 >"$work/check" 2>&1 ;;
  direct) "$CHECK" direct "$out/report.json" 2 >"$work/check" 2>&1 ;;
  classes) "$CHECK" classes "$out/report.json" vote block >"$work/check" 2>&1 ;;
  *) "$CHECK" "$MODE" "$out/report.json" >"$work/check" 2>&1 ;;
esac || { cat "$work/check" >&2; fail "report.json check"; }
cat "$work/check"
if [ "$MODE" = direct ]; then
  stale=$(cd "$out" && ls keys members replicas | grep -E '^r(4|5|11)\.' || true)
  [ -z "$stale" ] || fail "files of the earlier, larger run left in --out: $stale"
  [ -s "$out/replicas/notes.txt" ] || fail "a file that is no replica's was removed"
  grep -q '^links: direct, through a proxy only where a fault acts (2 proxies)$' "$work/stdout" ||
    fail "no 'links: direct' line with 2 proxies"
fi
if [ "$MODE" = classes ]; then
  for c in vote block; do
    grep -qE "^ +$c +[0-9]+ msgs/s +p50 +[^ ]+ +p99 +[0-9.]+(us|ms|s)$" "$work/stdout" ||
      fail "no live line for class $c"
    grep -qE "^r[0-9]->r[0-9]/$c +[0-9]+ " "$work/stdout" || fail "no table row for class $c"
    grep -qE "^$c +[0-9.]+(us|ms|s) +[0-9.]+(us|ms|s) +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +0 +[0-9]+/[0-9]+ +ok\$" \
      "$work/stdout" || fail "no per-class summary line for $c (or its integrity is not ok)"
  done
  grep -q "p99 per class" "$out/plot.gp" 2>/dev/null || ! command -v gnuplot >/dev/null ||
    fail "the plot has no per-class p99 panel"
fi
grep -qE '^per replica \([0-9]+, from time zero to the stop\): CPU mean [0-9.]+% of a core' \
  "$work/stdout" || fail "no per-replica resource line"
if [ "$MODE" = netns ]; then
  left=$(ip netns list 2>/dev/null | grep -c "^bftc$nspid-" || true)
  [ "$left" = 0 ] || fail "$left namespaces bftc$nspid-* left behind"
fi
echo "cluster_$MODE: ok"
