#!/usr/bin/env bash
# The shared library exports exactly the functions include/bftnet.h declares
# with BFTNET_API: nothing internal leaks, nothing is missing.
# Sanitizer runtimes add their own hooks; those are not ours and are ignored.
set -euo pipefail
lib=$1 header=$2
declared=$(grep -E '^BFTNET_API' "$header" | grep -oE 'bftnet_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' |
  grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' |
  grep -vE '^(__asan|__ubsan|__sanitizer|__sancov|__tsan|__lsan|__msan|__odr_asan)' | sort -u)
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$extra" ]; then echo "exported but not in the public API:"; echo "$extra"; fi
if [ -n "$missing" ]; then echo "declared in bftnet.h but not exported:"; echo "$missing"; fi
[ -z "$extra" ] && [ -z "$missing" ] || exit 1
echo "ok: $(echo "$declared" | wc -l) exported symbols, exactly the public API"
