#!/usr/bin/env bash
# bftnet-keygen's command line: --help/-h (stdout, exit 0), --version, bad
# usage (exit 2, stderr only), FILE (prints the peer ID, mode 0600, never
# overwrites: exit 1), --show FILE (the same peer ID; exit 1 for a missing or
# malformed key), -- FILE for a name starting with '-'.
#   keygen_cli_test.sh BFTNET_KEYGEN
set -euo pipefail
k=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
# run WANT_RC ARGS...: runs keygen, leaves stdout/stderr in $tmp/out, $tmp/err.
run() {
  local want=$1 rc=0
  shift
  "$k" "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  [ $rc -eq "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "bftnet-keygen $* exited $rc, want $want"; }
}
for h in -h --help; do
  run 0 $h
  grep -q '^usage: bftnet-keygen FILE' "$tmp/out" || fail "$h: no usage on stdout"
  grep -q -- '--show FILE' "$tmp/out" || fail "$h: --show not described"
  [ ! -s "$tmp/err" ] || fail "$h wrote to stderr"
done
run 0 --version
grep -qE '^bftnet-keygen [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out" || fail "--version printed: $(cat "$tmp/out")"
for bad in "" "--bogus" "--show" "a b" "--show a b"; do
  # shellcheck disable=SC2086 # each case is a list of arguments
  run 2 $bad
  [ ! -s "$tmp/out" ] || fail "'$bad': bad usage wrote to stdout"
  grep -q '^usage: bftnet-keygen' "$tmp/err" || fail "'$bad': no usage on stderr"
done
run 2 --bogus
grep -q "unknown option '--bogus'" "$tmp/err" || fail "--bogus: not named"

run 0 "$tmp/r0.key"
id=$(cat "$tmp/out")
[[ $id == 12D3KooW* ]] || fail "FILE printed '$id', not a peer ID"
[ "$(stat -c %a "$tmp/r0.key")" = 600 ] || fail "key file mode $(stat -c %a "$tmp/r0.key")"
sum=$(cksum < "$tmp/r0.key")
run 1 "$tmp/r0.key"
[ "$(cksum < "$tmp/r0.key")" = "$sum" ] || fail "an existing key was overwritten"
grep -q 'r0.key' "$tmp/err" || fail "the refusal does not name the file"
run 0 --show "$tmp/r0.key"
[ "$(cat "$tmp/out")" = "$id" ] || fail "--show printed $(cat "$tmp/out"), want $id"
run 1 --show "$tmp/missing.key"
echo "not a key" > "$tmp/bad.key"
run 1 --show "$tmp/bad.key"
grep -q 'bad.key' "$tmp/err" || fail "--show of a bad key does not name the file"
(cd "$tmp" && "$k" -- -dash.key > /dev/null) || fail "-- FILE"
[ -f "$tmp/-dash.key" ] || fail "-- FILE did not write -dash.key"
echo "ok: bftnet-keygen --help, --version, bad usage, FILE, --show FILE, -- FILE"
