#!/usr/bin/env bash
# deps.sh — install what bftnet needs to build, test and demo, if it is missing.
#
# Debian (12 "bookworm") with apt-get only. Safe to run again: packages that are
# already installed are skipped, and `apt-get update` runs only when something
# is missing. As root it installs; as another user it prints the exact
# `sudo apt-get install ...` line and exits 1. Then, when Node >= 20 is
# available, it runs `npm ci` in tests/interop for the js-libp2p interop peer
# (skipped, with a message, otherwise: those tests then report "skipped").
#
# Environment: CLANG_MAJOR (default: the installed clang's, else 14) picks the
# libclang-rt-N-dev / llvm-N packages; BFTNET_SKIP_NPM=1 skips the npm step.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'deps: %s\n' "$*"; }

# clang's runtime libraries (libFuzzer, ASan, TSan, UBSan: libclang_rt.*.a) are
# in libclang-rt-N-dev, which clang-N only reaches through Recommends, so it is
# named explicitly. llvm-N brings llvm-symbolizer for readable sanitizer traces.
if [ -z "${CLANG_MAJOR:-}" ]; then
  if command -v clang >/dev/null 2>&1; then
    CLANG_MAJOR=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
  fi
  CLANG_MAJOR=${CLANG_MAJOR:-14}
fi

PACKAGES=(
  # build
  cmake make pkg-config gcc libc6-dev clang "libclang-rt-${CLANG_MAJOR}-dev" "llvm-${CLANG_MAJOR}"
  # the architecture checks (tests/arch) and the format check (scripts/check-format.sh)
  python3 clang-format
  # libraries
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev libck-dev libssl-dev
  libcmocka-dev libjansson-dev libzmq3-dev
  # benchmarks' plots, network-namespace tests
  gnuplot-nox iproute2
  # bftnet-replica --metrics-listen (HTTP), and the metrics tests (promtool, a
  # Prometheus server scraping replicas)
  libmicrohttpd-dev prometheus
  # Debian packages (cpack -G DEB: dpkg-shlibdeps, file) and their check
  dpkg-dev file lintian
)

# --- Debian packages
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "WARNING: not a Debian system (no dpkg-query/apt-get); install the equivalents of:"
  say "  ${PACKAGES[*]}"
else
  missing=()
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case $status in
      ii*) ;;
      *) missing+=("$p") ;;
    esac
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#PACKAGES[@]} Debian packages are installed"
  elif [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}"
    say "run this as root, or:"
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  else
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    say "installed ${#missing[@]} package(s)"
  fi
fi

# --- The js-libp2p interop peer's npm packages (tests/interop/package-lock.json)
INTEROP=$ROOT/tests/interop
if [ "${BFTNET_SKIP_NPM:-0}" = 1 ]; then
  say "npm: skipped (BFTNET_SKIP_NPM=1)"
elif [ ! -f "$INTEROP/package-lock.json" ]; then
  say "npm: no $INTEROP/package-lock.json; nothing to install"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "npm: SKIPPED: Node.js >= 20 with npm is not installed; the js-libp2p interop tests will be skipped"
else
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "${node_major:-0}" -lt 20 ]; then
    say "npm: SKIPPED: Node $(node --version) is older than 20; the js-libp2p interop tests will be skipped"
  elif [ -f "$INTEROP/node_modules/.package-lock.json" ] &&
    [ "$INTEROP/node_modules/.package-lock.json" -nt "$INTEROP/package-lock.json" ] &&
    [ "$INTEROP/node_modules/.package-lock.json" -nt "$INTEROP/package.json" ]; then
    say "npm: tests/interop/node_modules is up to date"
  else
    say "npm: npm ci in tests/interop (Node $(node --version))"
    (cd "$INTEROP" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  fi
fi
