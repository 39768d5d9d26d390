#!/usr/bin/env bash
# Installs every Debian 12 package the IMS core needs to build, test and run.
# One source of truth: the README, .ci/run and deploy/Dockerfile all call this script.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh build    what building the binaries needs (the image's build stage)
#   scripts/install-deps.sh runtime  only what the binaries need at run time
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# libcap2-bin: setcap gives the pcscf binary CAP_NET_ADMIN for IPsec sec-agree (deploy/Dockerfile)
RUNTIME_PKGS="libsofia-sip-ua0 libfdcore6 libfdproto6 freediameter-extensions libmicrohttpd12 libjson-c5 libyaml-0-2 libsqlite3-0 libpq5 libxml2 libssl3 libcurl4 ca-certificates libmnl0 libcap2-bin libhiredis0.14"
BUILD_PKGS="build-essential cmake pkg-config libsofia-sip-ua-dev libfreediameter-dev freediameter-extensions libmicrohttpd-dev libjson-c-dev libyaml-dev libsqlite3-dev libpq-dev libxml2-dev libssl-dev libcurl4-openssl-dev libcmocka-dev libmnl-dev libhiredis-dev"
# podman ... debootstrap: tests/deploy/container_lab.sh (the compose lab run for real). netavark,
# aardvark-dns and iptables by name: without recommends apt would pick the CNI plugins instead;
# runc: crun refuses hybrid cgroup hierarchies.
# qemu-system-x86 ... cpio: tests/vm/run.sh, the VM with Debian's own kernel where the IPsec (ESP)
# tests run (the machines' kernel has no ESP); tcpdump: captures on the UE's veth in those tests.
# rtpengine-daemon: the media anchor (deploy/lab, tests/bench/bench_sip.py --anchor, the tests that
# start it); nftables: deploy/lab's filter on rtpengine's ng port.
# postgresql: the HSS on PostgreSQL tests (a cluster per test, as user postgres); nftables also: tests/system/test_nat.py.
# redis-server: the state store tests (tests/unit/test_state.c, tests/system/test_restart_redis.py).
TEST_PKGS="qemu-system-x86 linux-image-amd64 busybox-static cpio tcpdump clang libclang-rt-14-dev curl sip-tester baresip-core iproute2 procps sqlite3 postgresql python3 docker-compose podman runc netavark aardvark-dns iptables debootstrap rtpengine-daemon nftables redis-server"

if [ "${1:-}" = "runtime" ]; then
  PKGS="$RUNTIME_PKGS"
elif [ "${1:-}" = "build" ]; then
  PKGS="$RUNTIME_PKGS $BUILD_PKGS"
else
  PKGS="$RUNTIME_PKGS $BUILD_PKGS $TEST_PKGS"
  # The Kubernetes manifest validation (tests/deploy) runs npm's kubernetes-models. Machines that
  # already have Node.js and npm keep theirs; others get Debian's.
  command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "install-deps: all packages present"
fi
