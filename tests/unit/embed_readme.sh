#!/usr/bin/env bash
# The README's embedding code is examples/embed.c's core verbatim: the lines
# between "/* [embed-core] */" and "/* [/embed-core] */" (less the two spaces
# of indentation they have inside main) equal the ```c block that follows
# "<!-- examples/embed.c [embed-core] -->" in the README.
#   embed_readme.sh README.md examples/embed.c
set -euo pipefail
readme=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -n '\|/\* \[embed-core\] \*/|,\|/\* \[/embed-core\] \*/|p' "$src" | sed '1d;$d' |
  sed 's/^  //' > "$tmp/file"
awk '/^<!-- examples\/embed.c \[embed-core\] -->$/ { mark = 1; next }
     mark && !code && /^```c$/ { code = 1; next }
     code && /^```$/ { exit }
     code { print }' "$readme" > "$tmp/readme"
[ -s "$tmp/file" ] || { echo "FAIL: no [embed-core] region in $src"; exit 1; }
[ -s "$tmp/readme" ] || { echo "FAIL: no code block after the [embed-core] mark in $readme"; exit 1; }
if ! diff -u --label "$src (core)" --label "$readme" "$tmp/file" "$tmp/readme"; then
  echo "FAIL: the README's embedding code differs from examples/embed.c (copy the region over)"
  exit 1
fi
echo "ok: the README shows examples/embed.c's core verbatim ($(wc -l < "$tmp/file") lines)"
