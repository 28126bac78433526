#!/usr/bin/env bash
# examples/embed.c compiles with gcc and with clang, warnings as errors, and
# (outside sanitizer builds, whose library needs the sanitizer's runtime)
# links against the built libbftnet.so and starts.
#   embed_compile.sh EMBED_C INCLUDE_DIR LIBBFTNET_SO plain|sanitized
set -euo pipefail
src=$1 inc=$2 lib=$3 mode=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O2)
done_any=0
for cc in gcc clang; do
  if ! command -v "$cc" > /dev/null 2>&1; then
    echo "note: $cc not found: not compiled with it"
    continue
  fi
  "$cc" "${flags[@]}" -I"$inc" -c "$src" -o "$tmp/embed-$cc.o"
  if [ "$mode" = plain ]; then
    "$cc" -o "$tmp/embed-$cc" "$tmp/embed-$cc.o" -L"$(dirname "$lib")" -lbftnet \
      -Wl,-rpath,"$(dirname "$lib")"
    rc=0
    "$tmp/embed-$cc" > "$tmp/out" 2>&1 || rc=$?
    if [ $rc -ne 2 ] || ! grep -q '^usage: embed' "$tmp/out"; then
      echo "FAIL: embed built by $cc, run without arguments, exited $rc:"
      cat "$tmp/out"
      exit 1
    fi
    echo "ok: $cc ${flags[*]}: compiled, linked, started"
  else
    echo "ok: $cc ${flags[*]}: compiled (sanitizer build: not linked)"
  fi
  done_any=1
done
if [ $done_any -eq 0 ]; then
  echo "SKIP: neither gcc nor clang is installed"
  exit 77
fi
