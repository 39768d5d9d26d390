#!/usr/bin/env bash
# Installs dependencies, builds, and runs the IMS core on this machine with the default configs in
# deploy/config (loopback addresses, embedded SQLite, demo subscribers alice and bob).
# Ctrl-C stops every NF. Logs go to var/<nf>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p var

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

start() {   # start NF CONFIG
  local nf=$1 cfg=$2
  [ -x "build/$nf/$nf" ] || return 0
  "build/$nf/$nf" -c "$cfg" >"var/$nf.log" 2>&1 &
  pids+=($!)
  echo "started $nf (pid $!, log var/$nf.log)"
}

start hss deploy/config/hss.yaml
for nf in icscf scscf pcscf; do
  [ -f "deploy/config/$nf.yaml" ] && start "$nf" "deploy/config/$nf.yaml"
done

for _ in $(seq 1 50); do
  curl -fs http://127.0.0.1:9090/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
echo
echo "HSS provisioning API: http://127.0.0.1:9090/api/v1/subscribers"
curl -s http://127.0.0.1:9090/api/v1/subscribers; echo
echo "Press Ctrl-C to stop."
wait
