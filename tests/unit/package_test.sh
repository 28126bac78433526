#!/usr/bin/env bash
# The Debian packages: cpack builds libbftnet0, libbftnet-dev and bftnet-tools
# from this build; their Depends name the libraries' packages; extracted into
# a scratch root with dpkg-deb -x, they build examples/embed.c (pkg-config and
# find_package) and run it as two replicas with the packaged bftnet-keygen;
# lintian finds no error in them (warnings are printed, not fatal).
#   package_test.sh BUILD_DIR SOURCE_DIR CC CPACK plain|sanitized
# Exit 77 (skipped) in a sanitizer build or without dpkg-deb, dpkg-shlibdeps
# (Debian: dpkg-dev) or lintian.
set -euo pipefail
build=$1 src=$2 cc=$3 cpack=$4 mode=$5
if [ "$mode" != plain ]; then
  echo "SKIP: a sanitizer build is not packaged (scripts/test.sh's gcc build C runs this test)"
  exit 77
fi
missing=()
for t in dpkg-deb dpkg-shlibdeps lintian pkg-config; do
  command -v "$t" > /dev/null 2>&1 || missing+=("$t")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "SKIP: ${missing[*]} not installed (Debian: apt-get install dpkg-dev lintian pkg-config)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

# --- Build the packages
(cd "$build" && "$cpack" -G DEB -B "$tmp/pkg") > "$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
debs=()
for p in libbftnet0 libbftnet-dev bftnet-tools; do
  f=$(find "$tmp/pkg" -maxdepth 1 -name "${p}_*.deb" | head -n1)
  [ -n "$f" ] || { cat "$tmp/cpack.log"; fail "no ${p}_*.deb"; }
  debs+=("$f")
  echo "== $(basename "$f")"
  dpkg-deb -f "$f" Package Version Architecture Depends | sed 's/^/   /'
done
lib_deb=${debs[0]} dev_deb=${debs[1]} tools_deb=${debs[2]}
version=$(dpkg-deb -f "$lib_deb" Version)

# --- Runtime dependencies: the shared libraries' packages, and each other.
# (Outputs are captured first: grep -q in a pipeline could SIGPIPE its writer.)
has() { grep -q "$@"; }
lib_dep=$(dpkg-deb -f "$lib_deb" Depends)
dev_dep=$(dpkg-deb -f "$dev_deb" Depends)
tools_dep=$(dpkg-deb -f "$tools_deb" Depends)
for d in libc6 libuv1 libsodium libprotobuf-c1 libck0 libjansson4; do
  has "\b$d" <<< "$lib_dep" || fail "libbftnet0 does not depend on $d: $lib_dep"
done
has "libbftnet0 (= $version)" <<< "$dev_dep" || fail "libbftnet-dev: $dev_dep"
has "libbftnet0 (= $version)" <<< "$tools_dep" || fail "bftnet-tools: $tools_dep"
lib_ctrl=$(dpkg-deb --ctrl-tarfile "$lib_deb" | tar -t)
has -x './shlibs' <<< "$lib_ctrl" || fail "libbftnet0 has no shlibs file"
has -x './triggers' <<< "$lib_ctrl" || fail "libbftnet0 has no triggers file (ldconfig)"

# --- Contents
contents() { dpkg-deb -c "$1" | awk '{print $6}'; }
lib_files=$(contents "$lib_deb")
dev_files=$(contents "$dev_deb")
tools_files=$(contents "$tools_deb")
has '/libbftnet\.so\.0$' <<< "$lib_files" || fail "libbftnet0 lacks libbftnet.so.0"
if has -e '\.h$' -e '/libbftnet\.so$' -e '\.pc$' <<< "$lib_files"; then
  fail "libbftnet0 holds development files"
fi
for f in /include/bftnet.h /libbftnet.so /pkgconfig/bftnet.pc /cmake/bftnet/bftnetConfig.cmake; do
  has "$f\$" <<< "$dev_files" || fail "libbftnet-dev lacks $f"
done
has '/bin/bftnet-keygen$' <<< "$tools_files" || fail "bftnet-tools lacks bftnet-keygen"

# --- Extract into a scratch root and use them from there
R=$tmp/root
for f in "${debs[@]}"; do dpkg-deb -x "$f" "$R"; done
pc=$(find "$R" -name bftnet.pc | head -n1)
kv=$("$R/usr/bin/bftnet-keygen" --version)
[ "$kv" = "bftnet-keygen ${version%-*}" ] || fail "packaged bftnet-keygen --version: $kv"
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/embed-pc" "$src/examples/embed.c" \
  $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs bftnet) \
  -Wl,-rpath,"$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir bftnet)" ||
  fail "examples/embed.c with pkg-config against the packages"
cmake -S "$src/examples" -B "$tmp/embed" -DCMAKE_PREFIX_PATH="$R/usr" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS=-Werror -DCMAKE_BUILD_TYPE=Release > "$tmp/embed.log" 2>&1 &&
  cmake --build "$tmp/embed" >> "$tmp/embed.log" 2>&1 ||
  { cat "$tmp/embed.log"; fail "examples/ with find_package against the packages"; }
for e in "$tmp/embed-pc" "$tmp/embed/embed"; do
  has "$R/.*libbftnet.so.0" <<< "$(ldd "$e")" || fail "$e does not load the packaged library"
done
"$src/tests/unit/embed_run.sh" "$tmp/embed-pc" "$R/usr/bin/bftnet-keygen" 100 | tail -n1
"$src/tests/unit/embed_run.sh" "$tmp/embed/embed" "$R/usr/bin/bftnet-keygen" 100 | tail -n1
echo "ok: examples/embed.c built against the extracted packages (pkg-config, find_package) and ran"

# --- lintian: no errors (it exits 1 on errors, 2 if it could not check)
lrc=0
lintian --no-cfg "${debs[@]}" > "$tmp/lintian.log" 2>&1 || lrc=$?
grep -E '^[EWI]:' "$tmp/lintian.log" || true
if [ $lrc -ne 0 ] || grep -q '^E:' "$tmp/lintian.log"; then
  [ $lrc -eq 1 ] || cat "$tmp/lintian.log"
  fail "lintian exited $lrc (errors above)"
fi
echo "ok: lintian: no errors in ${#debs[@]} packages ($(grep -c '^W:' "$tmp/lintian.log" || true) warnings)"
