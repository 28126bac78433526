#!/usr/bin/env bash
# check-format.sh — every tracked C file is formatted as the committed
# .clang-format says. Prints the files that differ and exits 1; with --fix,
# rewrites them in place. scripts/test.sh runs it.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CF=${CLANG_FORMAT:-$(command -v clang-format || compgen -G '/usr/bin/clang-format-*' | sort -V | tail -n1 || true)}
if [ -z "$CF" ]; then
  echo "check-format: clang-format not found (Debian: apt-get install clang-format)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  "$CF" -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files with $("$CF" --version)"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$CF" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format ($("$CF" --version)):"
  printf '  %s\n' "${bad[@]}"
  echo "check-format: run ./scripts/check-format.sh --fix"
  exit 1
fi
echo "check-format: all ${#files[@]} C files match .clang-format"
