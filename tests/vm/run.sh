#!/usr/bin/env bash
# tests/vm/run.sh COMMAND [ARG...]: runs COMMAND as root inside a throw-away QEMU VM that boots
# Debian 12's own kernel (package linux-image-amd64) with this machine's root filesystem shared
# read-write over 9p, in the current directory, and exits with COMMAND's exit code. COMMAND's
# output (stdout and stderr) is printed as it comes.
#
# Why a VM: the build/CI machines' kernel has no ESP ("ip xfrm state add ... proto esp" answers
# "Requested type not found"), so the P-CSCF's IPsec SAs (TS 33.203 sec-agree) can only be tested
# against a stock kernel. Inside the VM ESP, XFRM and veth work (docs/pitfalls.md "Kernel, IPsec, VMs").
#
# Exit codes: COMMAND's; 77 = skipped (qemu, the kernel or busybox missing, or not root; outside
# CI only: with CI=true a missing piece is a failure, 1); 124 = timed out (VM_TIMEOUT seconds,
# default 300); 125 = the VM did not get to run COMMAND.
# Environment passed into the VM: CI, every IMS_* / PYTHON* variable, the sanitizers' options, and
# IMS_IN_VM=1 (programs that change the kernel's IPsec or network state refuse to run without it).
# The VM has 1 CPU (TCG) and VM_MEMORY MiB (default 1024). /run and /dev/shm are fresh tmpfs in the
# VM (network namespaces stay there); everything else is the host's filesystem (VM_9P_CACHE below):
# write only to your own temporary paths. A program start costs ~0.1-0.2 s, python3 ~2 s: run many
# cases in one VM rather than one VM per case.
#
# Facts this depends on (verified on Debian 12, QEMU 7.2, kernel 6.1):
#  - KVM hangs or fails on these machines (MSR 0x10a): TCG only.
#  - Module order: virtio_ring before virtio; 9p needs netfs and fscache.
#  - switch_root (not chroot) onto the 9p root, so that the kernel's modprobe helper finds
#    /sbin/modprobe for the crypto modules an ESP SA pulls in.
set -uo pipefail

die_missing() { # a piece of the VM is missing: skip, or fail in CI
    if [ "${CI:-}" = "true" ]; then
        echo "vm: FAIL: $1 (CI=true: the VM tests must run; scripts/install-deps.sh installs them)" >&2
        exit 1
    fi
    echo "vm: SKIPPED: $1 (scripts/install-deps.sh installs qemu-system-x86, linux-image-amd64, busybox-static)" >&2
    exit 77
}

if [ $# -lt 1 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi
[ "$EUID" -eq 0 ] || die_missing "needs root (the 9p root filesystem is shared with security_model=passthrough)"
qemu=$(command -v qemu-system-x86_64) || die_missing "qemu-system-x86_64 not found"
busybox=$(command -v busybox) || die_missing "busybox not found"
# busybox must be static (package busybox-static): it runs in the initramfs, before the root
# filesystem with the shared libraries is there.
ldd "$busybox" >/dev/null 2>&1 && die_missing "$busybox is dynamically linked (busybox-static is needed)"
# The newest kernel that has both an image in /boot and its modules (not the host's running one,
# which may be a kernel without ESP and without modules).
K=""
for v in $(ls /lib/modules 2>/dev/null | sort -V); do
    [ -r "/boot/vmlinuz-$v" ] && [ -d "/lib/modules/$v/kernel" ] && K=$v
done
[ -n "$K" ] || die_missing "no kernel with both /boot/vmlinuz-VERSION and /lib/modules/VERSION"

w=$(mktemp -d /tmp/ims-vm.XXXXXX) || exit 125
trap 'rm -rf "$w"' EXIT
trap 'exit 130' INT TERM

# 9p cache mode. loose: the VM caches what it read from the host (a program starts 2-3 times
# faster: python3 ~1.9 s instead of ~3.1 s, a test file's run ~40 % shorter); what the VM writes
# reaches the host (sync before power-off), but files the host changes while the VM runs may look
# stale inside it. VM_9P_CACHE=none turns the cache off.
cache=${VM_9P_CACHE:-loose}

# The initramfs: static busybox and the modules for virtio PCI + 9p; its init mounts the host's
# root and switch_roots into it, then runs $w/inner.sh (its path comes on the kernel command line).
R=$w/initrd
mkdir -p "$R/bin" "$R/mods" "$R/host" "$R/proc" "$R/sys" "$R/dev"
cp "$busybox" "$R/bin/busybox"
for a in sh mount insmod switch_root sed; do ln -s busybox "$R/bin/$a"; done
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
for m in $mods; do
    f=$(find "/lib/modules/$K" -name "$m.ko*" | head -1)
    if [ -z "$f" ]; then
        # Built into this kernel, or missing: the insmod in the VM says which.
        continue
    fi
    case "$f" in
    *.ko.xz) xz -dc "$f" >"$R/mods/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$R/mods/$m.ko" ;;
    *) cp "$f" "$R/mods/$m.ko" ;;
    esac
done
cat >"$R/init" <<INIT
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
for m in $mods; do [ -e /mods/\$m.ko ] && { insmod /mods/\$m.ko || echo "vm: insmod \$m failed"; }; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=$cache hostroot /host || echo "vm: 9p mount failed"
mount -t proc proc /host/proc; mount -t sysfs sysfs /host/sys; mount -t devtmpfs dev /host/dev
mount -t tmpfs run /host/run
inner=\$(sed -n 's/.*vmrun=\([^ ]*\).*/\1/p' /proc/cmdline)
exec switch_root /host /bin/sh "\$inner/inner.sh"
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$w/initrd.gz") || exit 125

# What runs in the VM after switch_root: the caller's environment subset, directory and command.
{
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
    env | grep -E '^(CI|IMS_[A-Za-z0-9_]*|PYTHON[A-Za-z0-9_]*|[AUL]SAN_OPTIONS)=' | while IFS= read -r kv; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
    # Programs that change the kernel's network or IPsec state check this before they do.
    echo "export IMS_IN_VM=1"
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'echo %q\n' "vm: running $*"
    printf '%q ' "$@"
    echo
} >"$w/cmd.sh"
cat >"$w/inner.sh" <<INNER
#!/bin/sh
mount -t tmpfs tmp /dev/shm 2>/dev/null
( . "$w/cmd.sh" ) </dev/null
echo \$? >"$w/rc"
sync
echo o >/proc/sysrq-trigger
# The power-off runs asynchronously: init must not exit before it (that would be a panic).
sleep 30
INNER

timeout=${VM_TIMEOUT:-300}
start=$(date +%s)
# The console carries the command's output. SeaBIOS and the boot are cut off (everything up to
# our first line), CRs and the kernel's power-off lines removed.
timeout -k 5 "$timeout" "$qemu" -accel tcg -m "${VM_MEMORY:-1024}" -smp 1 -nographic -no-reboot \
    -nodefaults -serial stdio -kernel "/boot/vmlinuz-$K" -initrd "$w/initrd.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 vmrun=$w" \
    -fsdev local,id=r,path=/,security_model=passthrough,multidevs=remap \
    -device virtio-9p-pci,fsdev=r,mount_tag=hostroot </dev/null 2>&1 | tee "$w/console" |
    sed -u -n -e 's/\r$//' -e '/vm: running /,$ { s/.*\(vm: running \)/\1/' \
        -e '/\] \(sysrq: Power Off\|reboot: Power down\)$/d' -e 'p }'
qemu_rc=${PIPESTATUS[0]}
secs=$(($(date +%s) - start))
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    echo "vm: TIMEOUT: '$*' did not finish within $timeout s (VM_TIMEOUT); VM stopped" >&2
    exit 124
fi
if [ ! -s "$w/rc" ]; then
    echo "vm: ERROR: the VM stopped after $secs s without running '$*' to its end; console:" >&2
    tr -d '\r\033' <"$w/console" | tail -30 >&2
    exit 125
fi
rc=$(cat "$w/rc")
echo "vm: '$*' exited $rc after $secs s (kernel $K, boot included)"
exit "$rc"
