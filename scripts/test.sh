#!/usr/bin/env bash
# test.sh — install dependencies, build, and run bftnet's whole test suite.
#
#   A: build/asan  clang, -DBFTNET_ASAN=ON -DBFTNET_FUZZ=ON: every test (unit,
#                  integration, interop, short libFuzzer runs) under ASan+UBSan.
#   B: build/tsan  clang, -DBFTNET_TSAN=ON: the tests labelled "threads".
#   C: build/gcc   gcc, Release, warnings as errors: every target (tests, tools,
#                  bench, examples), then the fast tests: everything not labelled
#                  threads, integration, cluster, interop or bench (unit tests,
#                  the embedding example, install, the Debian packages).
# Without clang A and B use gcc and the fuzz targets are left out.
# Prints a summary and exits non-zero if any step failed.
#
# Environment: BFTNET_JOBS (default: nproc) for make and ctest; BFTNET_FUZZ_SECONDS
# (default 10) per fuzz target; BFTNET_CC to force a compiler (e.g. gcc: no
# fuzz targets); BFTNET_CMAKE_ARGS for extra configure arguments (e.g.
# -DBFTNET_WERROR=OFF); BFTNET_SKIP_DEPS=1 to skip scripts/deps.sh.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${BFTNET_JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${BFTNET_FUZZ_SECONDS:-10}
START=$(date +%s)

say() { printf '\n==> %s\n' "$*"; }
SUMMARY=()
TAILS=()
FAILED=0
record() { # record STATUS TEXT
  SUMMARY+=("$(printf '%-5s %s' "$1" "$2")")
  [ "$1" != FAIL ] || FAILED=1
}
finish() {
  local t=$(($(date +%s) - START))
  printf '\n==> summary (%dm%02ds)\n' $((t / 60)) $((t % 60))
  local line
  for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
  for line in "${TAILS[@]}"; do printf '%s\n' "$line"; done
  if [ $FAILED -ne 0 ]; then
    echo "test.sh: FAILED"
    exit 1
  fi
  echo "test.sh: all passed"
  exit 0
}

# --- Dependencies
if [ "${BFTNET_SKIP_DEPS:-0}" = 1 ]; then
  record skip "deps.sh (BFTNET_SKIP_DEPS=1)"
else
  say "dependencies (scripts/deps.sh)"
  if bash "$ROOT/scripts/deps.sh"; then
    record ok "deps.sh"
  else
    record FAIL "deps.sh"
    finish
  fi
fi

# --- Formatting: every tracked C file as the committed .clang-format says.
say "format (scripts/check-format.sh)"
if bash "$ROOT/scripts/check-format.sh"; then
  record ok "format: .clang-format"
else
  record FAIL "format: files differ from .clang-format (./scripts/check-format.sh --fix)"
fi

# --- Compiler choice: clang (fuzz targets need libFuzzer), else gcc.
FUZZ=OFF
if [ -n "${BFTNET_CC:-}" ]; then
  CC_BIN=$(command -v "$BFTNET_CC") || { echo "test.sh: BFTNET_CC=$BFTNET_CC not found" >&2; exit 1; }
elif command -v clang >/dev/null 2>&1; then
  CC_BIN=$(command -v clang)
else
  CC_BIN=$(command -v gcc || command -v cc || true)
  [ -n "$CC_BIN" ] || { echo "test.sh: no C compiler (clang or gcc) found" >&2; exit 1; }
  say "clang not found: building with gcc, without the fuzz targets (libFuzzer needs clang)"
fi
if "$CC_BIN" --version 2>/dev/null | grep -qi clang; then
  FUZZ=ON
else
  record skip "fuzz targets: $(basename "$CC_BIN") is not clang"
fi

# Sanitizer runtime options: fail on the first report, symbolized stacks.
SYMBOLIZER=$(command -v llvm-symbolizer ||
  compgen -G '/usr/bin/llvm-symbolizer-*' | sort -V | tail -n1 || true)
if [ -n "$SYMBOLIZER" ]; then
  export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER
  export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}external_symbolizer_path=$SYMBOLIZER"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}halt_on_error=1:second_deadlock_stack=1"

# configure DIR ARGS...: (re)configures DIR with $CC_BIN; a build dir made by
# another compiler is wiped first (CMake cannot switch compilers in place).
configure() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ]; then
    local cached
    cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
    if [ -n "$cached" ] && [ "$(readlink -f "$cached")" != "$(readlink -f "$CC_BIN")" ]; then
      echo "test.sh: $dir was configured with $cached; starting it afresh"
      rm -rf "$dir"
    fi
  fi
  # Options are given every time: a cache keeps what an earlier run set.
  # shellcheck disable=SC2086 # BFTNET_CMAKE_ARGS is a list of words
  cmake -S "$ROOT" -B "$dir" -DCMAKE_C_COMPILER="$CC_BIN" -DBFTNET_WERROR=ON "$@" \
    ${BFTNET_CMAKE_ARGS:-}
}

# run_ctest DIR LOG WHAT ARGS...: runs ctest (behind the command in the array
# CTEST_WRAP, if any), keeps its output in LOG, and records its closing line
# ("100% tests passed, 0 tests failed out of N").
CTEST_WRAP=()
run_ctest() {
  local dir=$1 log=$2 what=$3
  shift 3
  local rc=0
  "${CTEST_WRAP[@]}" ctest --test-dir "$dir" --output-on-failure --test-output-size-failed 1000000 --test-output-truncation middle -j "$JOBS" "$@" 2>&1 | tee "$log" || rc=$?
  local closing
  closing=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -n1 || true)
  if [ $rc -eq 0 ]; then
    record ok "$what: ${closing:-ctest passed}"
  else
    record FAIL "$what: ${closing:-ctest exited $rc} (log: ${log#"$ROOT"/})"
    failed_tails "$dir"
  fi
}

# failed_tails DIR: the last lines each failed test printed (its verdict: an
# assertion, a sanitizer report, "internal invariant failed"), kept for the
# summary, where a log cut in the middle still shows them.
failed_tails() {
  local dir=$1 t
  local last=$dir/Testing/Temporary/LastTest.log
  [ -f "$dir/Testing/Temporary/LastTestsFailed.log" ] && [ -f "$last" ] || return 0
  while IFS=: read -r _ t; do
    TAILS+=("--- ${dir#"$ROOT"/}: $t, the last 25 lines of its output:")
    TAILS+=("$(awk -v t="$t" '
      $0 ~ "^[0-9]+/[0-9]+ Testing: " { on = ($3 == t); if (on) n = 0; next }
      on && /^<end of output>/ { on = 0 }
      on { buf[n++ % 25] = $0 }
      END { s = n > 25 ? n - 25 : 0; for (i = s; i < n; i++) print "    " buf[i % 25] }' "$last")")
  done <"$dir/Testing/Temporary/LastTestsFailed.log"
}

# --- A: ASan + UBSan (+ fuzz), the whole suite
A=$ROOT/build/asan
say "A: configure $A ($(basename "$CC_BIN"), ASan+UBSan, fuzz=$FUZZ)"
if configure "$A" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBFTNET_ASAN=ON -DBFTNET_FUZZ=$FUZZ \
  -DBFTNET_TESTS=ON -DBFTNET_INTEROP=ON -DBFTNET_FUZZ_SECONDS="$FUZZ_SECONDS"; then
  say "A: build (-j$JOBS)"
  if cmake --build "$A" -j "$JOBS"; then
    record ok "A build ($(basename "$CC_BIN"), ASan+UBSan, fuzz=$FUZZ)"
    say "A: ctest (whole suite)"
    run_ctest "$A" "$A/ctest.log" "A tests" --no-tests=error
    if grep -qE '\(Skipped\)|Not Run' "$A/ctest.log"; then
      echo "test.sh: note: some tests were skipped (see above; interop needs Node >= 20 and npm ci)"
    fi
  else
    record FAIL "A build"
  fi
else
  record FAIL "A configure"
fi

# --- B: TSan, only the tests labelled "threads"
B=$ROOT/build/tsan
say "B: configure $B ($(basename "$CC_BIN"), TSan)"
if configure "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBFTNET_TSAN=ON -DBFTNET_FUZZ=OFF \
  -DBFTNET_TESTS=ON -DBFTNET_INTEROP=OFF; then
  mapfile -t THREAD_TESTS < <(ctest --test-dir "$B" -N -L threads 2>/dev/null |
    sed -n 's/^ *Test *#[0-9]*: *//p')
  if [ ${#THREAD_TESTS[@]} -eq 0 ]; then
    echo "test.sh: no tests are labelled \"threads\" yet; nothing to run under TSan"
    record skip "B (TSan): no tests labelled threads yet"
  else
    say "B: build ${#THREAD_TESTS[@]} test(s) labelled threads: ${THREAD_TESTS[*]}"
    # Tests made by bftnet_test() are targets of the same name; build just
    # those, or everything if some test is not a target of its own.
    if cmake --build "$B" -j "$JOBS" --target "${THREAD_TESTS[@]}" 2>/dev/null ||
      cmake --build "$B" -j "$JOBS"; then
      record ok "B build ($(basename "$CC_BIN"), TSan)"
      # TSan of clang 14 cannot map its shadow with high ASLR entropy (newer
      # kernels): run without address randomization where that is allowed.
      NOASLR=()
      if setarch "$(uname -m)" -R true 2>/dev/null; then
        NOASLR=(setarch "$(uname -m)" -R)
      fi
      say "B: ctest -L threads"
      # The migration tests' fault runs are sized for A; under TSan (5-15x
      # slower) fewer rounds exercise the same threads (BFTNET_TEST_QUICK).
      export BFTNET_TEST_QUICK=1
      CTEST_WRAP=("${NOASLR[@]}")
      run_ctest "$B" "$B/ctest.log" "B tests (threads)" -L threads
    else
      record FAIL "B build"
    fi
  fi
else
  record FAIL "B configure"
fi

# --- C: gcc, Release, -Werror: every target, then the fast tests. Users build
# with Debian's default compiler: nothing may warn with it. Its install prefix
# is /usr so that the Debian packages it makes use the multiarch libdir.
C=$ROOT/build/gcc
GCC_BIN=$(command -v gcc || true)
if [ -z "$GCC_BIN" ]; then
  record FAIL "C: gcc not found (scripts/deps.sh installs it)"
else
  CC_BIN=$GCC_BIN
  say "C: configure $C (gcc, Release, warnings as errors)"
  if configure "$C" -DCMAKE_BUILD_TYPE=Release -DBFTNET_ASAN=OFF -DBFTNET_TSAN=OFF \
    -DBFTNET_FUZZ=OFF -DBFTNET_TESTS=ON -DBFTNET_INTEROP=OFF -DCMAKE_INSTALL_PREFIX=/usr; then
    say "C: build every target (-j$JOBS)"
    if cmake --build "$C" -j "$JOBS"; then
      record ok "C: gcc build of every target with -DBFTNET_WERROR=ON (Release)"
      say "C: ctest (unit, sim, example, install, packages)"
      CTEST_WRAP=()
      run_ctest "$C" "$C/ctest.log" "C tests (gcc Release: unit, sim, example, install, packages)" \
        --no-tests=error -LE 'threads|integration|cluster|interop|bench|fuzz'
    else
      record FAIL "C: gcc build of every target with -DBFTNET_WERROR=ON (Release)"
    fi
  else
    record FAIL "C configure"
  fi
fi

finish
