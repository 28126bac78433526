#!/usr/bin/env bash
# `cmake --install` into a scratch prefix gives what a user outside the tree needs:
#  - tools that run from the prefix (no LD_LIBRARY_PATH: their RUNPATH is relative);
#  - only bftnet.h among headers, only the shared library, and a clean bftnet.pc
#    (no -D from ck's .pc, nothing for --static);
#  - a program built with pkg-config, and examples/ built with
#    find_package(bftnet CONFIG) + bftnet::bftnet, both run against the prefix.
#   install_test.sh BUILD_DIR CC SOURCE_DIR [FLAGS...]
# FLAGS: the build's sanitizer flags, so the outside programs link their runtimes.
set -euo pipefail
build=$1 cc=$2 src=$3
shift 3
extra=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
P=$tmp/prefix
cmake --install "$build" --prefix "$P" > "$tmp/install.log"

# --- What is installed
[ -f "$P/include/bftnet.h" ] || fail "header not installed"
others=$(cd "$P/include" && find . -type f ! -name bftnet.h)
[ -z "$others" ] || fail "headers other than bftnet.h installed: $others"
pc=$(find "$P" -name bftnet.pc | head -n1)
[ -n "$pc" ] || fail "bftnet.pc not installed"
libdir=$(cd "$(dirname "$pc")/.." && pwd)
[ -e "$libdir/libbftnet.so.0" ] || fail "libbftnet.so.0 not in $libdir"
[ ! -e "$libdir/libbftnet.a" ] || fail "libbftnet.a installed (the .pc does not describe it)"
[ -f "$libdir/cmake/bftnet/bftnetConfig.cmake" ] || fail "CMake package not installed"

# --- The installed tools run from the prefix
kv=$(env -u LD_LIBRARY_PATH "$P/bin/bftnet-keygen" --version) || fail "installed bftnet-keygen --version"
[ "${kv%% *}" = bftnet-keygen ] || fail "installed bftnet-keygen --version printed '$kv'"
id=$(env -u LD_LIBRARY_PATH "$P/bin/bftnet-keygen" "$tmp/k.key") || fail "installed bftnet-keygen FILE"
[ "$(env -u LD_LIBRARY_PATH "$P/bin/bftnet-keygen" --show "$tmp/k.key")" = "$id" ] ||
  fail "installed bftnet-keygen --show differs from what it printed when it made the key"
for t in "$P"/bin/*; do
  # Every tool finds its libraries (ldd prints "not found" otherwise).
  deps=$(ldd "$t")
  if grep -q 'not found' <<< "$deps"; then
    echo "$deps"
    fail "$(basename "$t") cannot find a library once installed"
  fi
done

# --- pkg-config: clean flags, nothing for --static
export PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$(pkg-config --cflags bftnet)
libs=$(pkg-config --libs bftnet)
static=$(pkg-config --static --libs bftnet)
echo "pkg-config --cflags: $cflags"
echo "pkg-config --libs:   $libs"
case " $cflags " in *" -D"*) fail "--cflags defines macros: $cflags" ;; esac
[ "$static" = "$libs" ] || fail "--static lists more than the shared library: $static"
cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <bftnet.h>
int main(void) {
  bftnet_key_t *key;
  if (bftnet_key_generate(&key) != 0) return 1;
  char id[BFTNET_PEER_ID_MAX];
  if (bftnet_key_peer_id(key, id, sizeof id) != 0) return 1;
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = key;
  bftnet_t *net;
  if (bftnet_new(&net, &cfg) != 0) return 2;
  char addr[BFTNET_ADDR_MAX];
  if (bftnet_listen(net, "/ip4/127.0.0.1/tcp/0", addr, sizeof addr) != 0) return 3;
  printf("%s %s\n", id, bftnet_err_name(BFTNET_ENOTMEMBER));
  bftnet_free(net);
  bftnet_key_free(key);
  return strncmp(id, "12D3KooW", 8) == 0 ? 0 : 4;
}
C
# shellcheck disable=SC2086 # pkg-config's output is a list of words
"$cc" -std=c11 -Wall -Wextra -Werror "${extra[@]}" -o "$tmp/app" "$tmp/app.c" $cflags $libs \
  -Wl,-rpath,"$(pkg-config --variable=libdir bftnet)"
"$tmp/app"
echo "ok: pkg-config: built and ran a program outside the tree"

# --- find_package: examples/ as its own project against the prefix, run as two replicas
cmake -S "$src/examples" -B "$tmp/embed" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="${extra[*]} -Werror" -DCMAKE_EXE_LINKER_FLAGS="${extra[*]}" \
  -DCMAKE_BUILD_TYPE=Release > "$tmp/embed-configure.log" ||
  { cat "$tmp/embed-configure.log"; fail "find_package(bftnet CONFIG): configure"; }
cmake --build "$tmp/embed" > "$tmp/embed-build.log" 2>&1 ||
  { cat "$tmp/embed-build.log"; fail "find_package(bftnet CONFIG): build"; }
grep -q "$libdir" <(ldd "$tmp/embed/embed") || fail "examples/embed does not use the installed library"
"$src/tests/unit/embed_run.sh" "$tmp/embed/embed" "$P/bin/bftnet-keygen" 100 | tail -n1
echo "ok: find_package(bftnet CONFIG): built examples/ and ran it against the prefix"
