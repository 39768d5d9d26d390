#!/usr/bin/env bash
# Builds and runs every test: once normally (-Wall -Wextra -Werror), once under
# AddressSanitizer + UBSan. Usage: scripts/test.sh [--no-sanitize] [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=1
if [ "${1:-}" = "--no-sanitize" ]; then sanitize=0; shift; fi
jobs=$(nproc)
# A failed test runs once more before it counts as failed: the system tests drive SIPp 3.6.1
# and baresip over real sockets, where a port taken between choice and bind, or SIPp's AKA key
# loading bug, can fail a run that has nothing wrong. A real defect fails both runs.
retry="--repeat until-pass:2"

echo "== build (release) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests (release) =="
(cd build && ctest --output-on-failure $retry "$@")

if [ "$sanitize" = 1 ]; then
  echo "== build (ASan + UBSan) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIMS_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests (ASan + UBSan) =="
  # Leak checking stays on for unit tests; freeDiameter keeps global state it never frees at exit,
  # so the daemons' own leak report is suppressed (tests/asan.supp).
  export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The deploy label validates manifests and the image's package list (which sanitized binaries,
  # needing libasan, cannot match): it runs in the normal pass only.
  (cd build-asan && ctest --output-on-failure $retry -LE deploy "$@")
fi

# libFuzzer targets (tests/fuzz), each briefly on a copy of its seed corpus: a crash, leak or hang
# fails the run naming the target and the crash file. IMS_FUZZ_SECONDS changes the time per target.
echo "== fuzz (clang, ${IMS_FUZZ_SECONDS:-15} s per target) =="
bash scripts/fuzz.sh "${IMS_FUZZ_SECONDS:-15}"
