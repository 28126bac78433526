#!/usr/bin/env bash
# Bounded libFuzzer run: run_fuzz.sh BINARY SEED_CORPUS WORK_DIR SECONDS
# The default suite runs each target briefly; scripts/fuzz.sh runs longer.
set -euo pipefail
bin=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work"
[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work"
