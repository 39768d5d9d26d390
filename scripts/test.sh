#!/usr/bin/env bash
# Builds and runs every test in three passes: a normal build (-Wall -Wextra -Werror) with ctest,
# the same under AddressSanitizer + UBSan, then the libFuzzer targets (scripts/fuzz.sh).
# Usage: scripts/test.sh [--no-sanitize] [ctest args...]
# Every pass runs even when an earlier one fails; the script ends with one line per pass and a
# verdict, and exits non-zero when any pass failed (a build failure fails its pass).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
sanitize=1
if [ "${1:-}" = "--no-sanitize" ]; then sanitize=0; shift; fi
jobs=$(nproc)
# A failed test runs once more before it counts as failed: the system tests drive SIPp 3.6.1
# and baresip over real sockets, where a port taken between choice and bind, or SIPp's AKA key
# loading bug, can fail a run that has nothing wrong. A real defect fails both runs.
retry=(--repeat until-pass:2)

logs="$(mktemp -d /tmp/ims-test.XXXXXX)"
trap 'rm -rf "$logs"' EXIT
results=()   # one line per pass: "PASS|FAIL  <pass>: <detail>"
failed=()    # names of the passes that failed

record() { # record PASS|FAIL <pass name> <detail>
  results+=("$(printf '%-4s  %s: %s' "$1" "$2" "$3")")
  [ "$1" = PASS ] || failed+=("$2")
}

# ctest_pass <pass name> <build dir> <ctest args...>: runs ctest (output shown as it comes) and
# records the pass with ctest's own closing line and the names of the tests that failed.
ctest_pass() {
  local name=$1 dir=$2 rc=0
  shift 2
  (cd "$dir" && ctest --output-on-failure "${retry[@]}" "$@") 2>&1 | tee "$logs/ctest.log" || rc=$?
  local verdict
  verdict="$(grep -E '^[0-9]+% tests passed' "$logs/ctest.log" | tail -1)"
  if grep -q '^No tests were found' "$logs/ctest.log"; then verdict="no tests were found"; fi
  if [ "$rc" -eq 0 ]; then
    record PASS "$name" "${verdict:-ctest exit 0}"
  else
    local which
    which="$(sed -n '/^The following tests FAILED:/,$p' "$logs/ctest.log" \
             | grep -E '^[[:space:]]+[0-9]+ - ' | sed -E 's/^[[:space:]]+[0-9]+ - //' \
             | paste -sd ';' - | sed 's/;/; /g')"
    record FAIL "$name" "${verdict:-ctest exit $rc}${which:+ -- failed: $which}"
  fi
}

echo "== build (release) =="
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j"$jobs"; then
  echo "== tests (release) =="
  ctest_pass "release" build "$@"
else
  record FAIL "release" "build failed (cmake, see above); no tests run"
fi

if [ "$sanitize" = 1 ]; then
  echo "== build (ASan + UBSan) =="
  if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIMS_SANITIZE=ON >/dev/null &&
     cmake --build build-asan -j"$jobs"; then
    echo "== tests (ASan + UBSan) =="
    # Leak checking stays on for unit tests; freeDiameter keeps global state it never frees at
    # exit, so the daemons' own leak report is suppressed (tests/lsan.supp).
    export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1"
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    # The deploy label validates manifests and the image's package list (which sanitized
    # binaries, needing libasan, cannot match): it runs in the normal pass only.
    ctest_pass "ASan + UBSan" build-asan -LE deploy "$@"
  else
    record FAIL "ASan + UBSan" "build failed (cmake, see above); no tests run"
  fi
else
  echo "== ASan + UBSan pass skipped (--no-sanitize) =="
fi

# libFuzzer targets (tests/fuzz), each briefly on a copy of its seed corpus: a crash, leak or hang
# fails the run naming the target and the crash file. IMS_FUZZ_SECONDS changes the time per target.
secs="${IMS_FUZZ_SECONDS:-15}"
echo "== fuzz (clang, ${secs} s per target) =="
rc=0
bash scripts/fuzz.sh "$secs" 2>&1 | tee "$logs/fuzz.log" || rc=$?
ok="$(grep -c '^ok: ' "$logs/fuzz.log")"
bad="$(grep -Eo '^FAIL: fuzz target [A-Za-z0-9_]+' "$logs/fuzz.log" | awk '{print $4}' | paste -sd ' ' -)"
if [ "$rc" -eq 0 ]; then
  record PASS "fuzz" "$ok targets ran ${secs} s each without a crash, leak or hang"
elif [ -n "$bad" ]; then
  record FAIL "fuzz" "target(s) failed: $bad ($ok clean); crash files in build-fuzz/fuzz-crashes/"
else
  record FAIL "fuzz" "scripts/fuzz.sh exit $rc before running the targets (see above)"
fi

echo
echo "== summary =="
for r in "${results[@]}"; do echo "$r"; done
if [ "${#failed[@]}" -eq 0 ]; then
  [ "$sanitize" = 1 ] && passes="release, ASan + UBSan, fuzz" || passes="release, fuzz; ASan + UBSan skipped"
  echo "test.sh: ALL PASSED ($passes)"
  exit 0
fi
joined="$(printf '%s, ' "${failed[@]}")"
echo "test.sh: FAILED: ${#failed[@]} of ${#results[@]} passes failed: ${joined%, }"
exit 1
