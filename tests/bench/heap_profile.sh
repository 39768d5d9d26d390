#!/bin/bash
# Where one NF's heap goes under the steady call load (issue 16): runs
#   bench_sip.py --only steady --no-kamailio [your arguments]
# with that NF under heaptrack (Debian package heaptrack), then prints heaptrack's peak heap and
# the peak split by function (inclusive: a caller's figure contains its callees'; the frames of
# sofia-sip without symbols are left out).
#
#   tests/bench/heap_profile.sh pcscf --steady 2 --steady-rate 300 --users 4000 --pairs 2000
#
# The RSS column of the run shows heaptrack's wrapper, not the NF: take RSS from a run without
# this script. heaptrack slows the NF down (every malloc is recorded): at 300 calls/s the
# P-CSCF keeps up on 2 cores. Files stay in the printed directory (heaptrack_gui opens the .zst).
set -euo pipefail
nf=${1:-pcscf}
shift || true
case "$nf" in pcscf|icscf|scscf|hss) ;; *) echo "usage: $0 pcscf|icscf|scscf|hss [bench_sip.py arguments]" >&2; exit 2;; esac
command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null ||
    { echo "heaptrack is not installed: sudo apt-get install heaptrack" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=${IMS_BUILD_DIR:-$here/../../build}
build=$(cd "$build" && pwd)
work=$(mktemp -d /tmp/ims-heap-XXXXXX)
for n in hss icscf scscf pcscf; do
    mkdir -p "$work/bin/$n"
    [ "$n" = "$nf" ] || ln -s "$build/$n/$n" "$work/bin/$n/$n"
done
cat > "$work/bin/$nf/$nf" <<EOF
#!/bin/sh
exec heaptrack -o "$work/$nf" "$build/$nf/$nf" "\$@"
EOF
chmod +x "$work/bin/$nf/$nf"

IMS_BUILD_DIR="$work/bin" python3 "$here/bench_sip.py" --only steady --no-kamailio --out "$work/run" "$@" || true
# heaptrack's wrapper does not pass the benchmark's stop on: end the NF so that its data is written
pkill -TERM -f "^$build/$nf/$nf -c $work/run" || true
for _ in $(seq 60); do pgrep -f "heaptrack.*$work/$nf" >/dev/null || break; sleep 1; done
data=$(ls "$work/$nf".*zst 2>/dev/null | head -1 || true)
[ -n "$data" ] || { echo "no heaptrack data in $work" >&2; exit 1; }
heaptrack_print -f "$data" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 0 \
    -F "$work/peak.fg" --flamegraph-cost-type peak | grep -E "peak heap|calls to allocation"
python3 - "$work/peak.fg" <<'EOF'
import collections, sys
inc = collections.Counter()
skip = ("0x", "main", "su_base_port_run", "ims_sip_run", "tport_recv_event", "tport_deliver", "malloc",
        "calloc", "realloc", "su_alloc", "su_zalloc", "su_realloc", "__libc", "_start")
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip("\n").rpartition(" ")
    if not stack:
        continue
    for frame in set(stack.split(";")):
        name = frame.split(" ")[0]
        if name and not name.startswith(skip):
            inc[name] += int(cost)
print("peak heap by function (inclusive), MB:")
for name, cost in inc.most_common(20):
    print("  %8.1f  %s" % (cost / 1e6, name))
EOF
echo "files: $work"
