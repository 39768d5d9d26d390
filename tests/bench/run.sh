#!/usr/bin/env bash
# The benchmarks: builds an optimised tree (build-release, -O2, no sanitizers), then runs
#   bench_hss.py   Cx MAR/SAR per second with many requests in flight; 1M-subscriber import
#                  time and database size per subscriber
#   bench_sip.py   AKA registrations/s and calls/s through P-CSCF -> I-CSCF -> S-CSCF with the
#                  HSS (SIPp, stepped rates, 3 runs per series, kernel UDP drops per step), memory
#                  per registered user and per call/s, overload behaviour, and a one-hop Kamailio
#                  reference when `kamailio` is on PATH (apt-get install kamailio; never installed here)
# and prints their tables. Not a test: figures depend on the machine (they are printed with it).
# Usage: bash tests/bench/run.sh [--quick]      (--quick: small scale, 1 run, a smoke run of a few minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=()
if [ "${1:-}" = "--quick" ]; then quick=(--quick); fi

cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
export IMS_BUILD_DIR="$PWD/build-release" IMS_SOURCE_DIR="$PWD"
# Many SIPp users and sockets at once.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, $(date -u +%Y-%m-%d) =="
python3 tests/bench/bench_hss.py "${quick[@]}"
python3 tests/bench/bench_sip.py "${quick[@]}"
