#!/usr/bin/env bash
# Installs what the real-kernel tier needs on a bare Debian machine, idempotently:
# QEMU, udev/kmod (the guest loses stdout without udevd), a Debian kernel image
# with CONFIG_NUMA + 9p/virtio modules, numactl (the peer we cross-check) and
# python3-venv (scripts/test.sh installs virtme-ng, which boots that kernel over the
# host's root filesystem, and the test extras into the repo's .venv).
set -euo pipefail

need_apt=()
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
command -v udevadm >/dev/null || need_apt+=(udev)
command -v depmod >/dev/null || need_apt+=(kmod)
command -v numastat >/dev/null || need_apt+=(numactl)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v promtool >/dev/null || need_apt+=(prometheus)  # the exporter tests: promtool, a real server
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)

kernel_image() { ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1; }

export DEBIAN_FRONTEND=noninteractive
if [ ${#need_apt[@]} -gt 0 ] || [ -z "$(kernel_image)" ]; then
    apt-get update -qq
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ -z "$(kernel_image)" ]; then
    # Unpack rather than install: no initramfs/bootloader hooks are wanted here,
    # virtme-ng boots the image directly.
    tmp=$(mktemp -d)
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    (cd "$tmp" && apt-get download -qq "$pkg")
    dpkg -x "$tmp"/*.deb "$tmp/root"
    ver=$(ls "$tmp/root/lib/modules")
    cp "$tmp/root/boot/vmlinuz-$ver" /boot/
    mkdir -p /lib/modules
    rm -rf "/lib/modules/$ver"
    cp -a "$tmp/root/lib/modules/$ver" /lib/modules/
    depmod "$ver"
    rm -rf "$tmp"
fi

echo "kernel: $(kernel_image) (vng: scripts/test.sh installs virtme-ng into .venv)"
