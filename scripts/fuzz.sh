#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) and runs each one for a while on a
# copy of its seed corpus (the repository's corpus is never written). Exits 1 naming the target and
# the crash file when a target crashes, leaks, times out or runs out of memory.
#   scripts/fuzz.sh [seconds-per-target] [target...]     default: 15 s, every target
#   IMS_FUZZ_BUILD_DIR=build-fuzz (default)   IMS_FUZZ_JOBS=N  build parallelism
# Crash inputs are kept in <build dir>/fuzz-crashes/<target>/; to reproduce one:
#   <build dir>/tests/fuzz/<target> <crash file>
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_userdata fuzz_reginfo fuzz_json fuzz_cx fuzz_secagree fuzz_bencode)
build="${IMS_FUZZ_BUILD_DIR:-build-fuzz}"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang is not installed (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
echo "== fuzz: build ($build, clang, IMS_FUZZ=ON) =="
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMS_FUZZ=ON >/dev/null
cmake --build "$build" -j"${IMS_FUZZ_JOBS:-$(nproc)}" --target fuzz_all

work="$(mktemp -d /tmp/ims-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t ($bin)" >&2; exit 1; }
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  echo "== fuzz: $t for ${secs} s =="
  rc=0
  # A fixed seed (IMS_FUZZ_SEED, default 1; 0 = random) makes a CI run repeat the same mutations,
  # so a red run is reproducible and does not depend on luck; long runs by hand explore further.
  "$bin" -max_total_time="$secs" -seed="${IMS_FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
  cov="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$work/$t/log" | tail -1 || true)"
  speed="$(grep -Eo 'average_exec_per_sec: *[0-9]+' "$work/$t/log" | grep -Eo '[0-9]+$' || true)"
  runs="$(grep -Eo 'number_of_executed_units: *[0-9]+' "$work/$t/log" | grep -Eo '[0-9]+$' || true)"
  artifacts=("$work/$t/artifacts"/*)
  if [ "$rc" -ne 0 ] || [ -e "${artifacts[0]}" ]; then
    failed=1
    keep="$build/fuzz-crashes/$t"
    mkdir -p "$keep"
    crash=""
    for a in "${artifacts[@]}"; do
      [ -e "$a" ] || continue
      cp "$a" "$keep/"
      crash="$keep/$(basename "$a")"
    done
    echo "FAIL: fuzz target $t failed (exit $rc), crash file: ${crash:-none written}"
    echo "      reproduce: $bin ${crash:-<input>}"
    grep -aE 'ERROR:|SUMMARY:|runtime error|fuzz_[a-z]+:' "$work/$t/log" | head -20 || true
    tail -40 "$work/$t/log"
  else
    echo "ok: $t  runs ${runs:-?}  exec/s ${speed:-?}  ${cov:-cov ?}"
  fi
done
exit "$failed"
