#!/usr/bin/env bash
# `cmake --install` into a temporary prefix gives a library, the header and a
# pkg-config file that a program outside the tree can build and run against.
set -euo pipefail
build=$1 cc=${2:-cc}
shift 2 || true
extra=("$@") # the build's sanitizer flags, so the outside program links their runtimes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name bftnet.pc | head -n1)")
[ -f "$tmp/prefix/include/bftnet.h" ] || { echo "header not installed"; exit 1; }
cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <bftnet.h>
int main(void) {
  bftnet_key_t *key;
  if (bftnet_key_generate(&key) != 0) return 1;
  char id[BFTNET_PEER_ID_MAX];
  bftnet_key_peer_id(key, id, sizeof id);
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
# shellcheck disable=SC2046
"$cc" -std=c11 "${extra[@]}" -o "$tmp/app" "$tmp/app.c" $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs bftnet) \
  -Wl,-rpath,"$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir bftnet)"
"$tmp/app"
echo "ok: installed, found with pkg-config, built and ran outside the tree"
