#!/usr/bin/env bash
# Only bftnet_* symbols may be exported by the shared library (STYLE rule 1).
set -euo pipefail
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' || true)
bad=$(printf '%s\n' "$syms" | grep -v '^bftnet_' | grep -v '^$' || true)
count=$(printf '%s\n' "$syms" | grep -c '^bftnet_' || true)
if [ -n "$bad" ]; then
  echo "exported symbols outside the public API:"; echo "$bad"; exit 1
fi
[ "$count" -ge 20 ] || { echo "only $count bftnet_ symbols exported: is the API missing?"; exit 1; }
echo "ok: $count exported symbols, all bftnet_*"
