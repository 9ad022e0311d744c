#!/usr/bin/env bash
# Try numatui on a real 4-node NUMA kernel from a single-node machine.
#
#   scripts/provision-vm.sh        # once, as root: QEMU, a Debian kernel, virtme-ng
#   scripts/try-numa-guest.sh      # in a terminal (it is interactive)
#
# Boots a QEMU guest (software emulation, no KVM: allow 20-60 s to boot) that shares this
# machine's files and Python, with four NUMA nodes: 0 and 1 with one CPU each, 2 and 3
# memory-only (how CXL memory appears), 512 MiB each, and 20 x 2 MiB huge pages spread over
# them. Demo workloads start in the background (tests/tooling/workload.py):
#   - 256 MiB private anonymous memory bound to node 0
#   - 128 MiB shared anonymous memory bound to node 1
#   -   8 MiB hugetlb memory bound to node 2
# then numatui starts in the terminal: pick a workload, migrate it to another node, watch it
# move. Quitting numatui leaves a root shell in the guest (`numatui` runs it again,
# `cat /tmp/numatui-demo/*.json` shows the workloads); exit that shell (Ctrl-D) to power off.
# Everything is emulated, so expect it to be slower than on real hardware.
#
# Environment: NUMATUI_KERNEL=/boot/vmlinuz-... picks the kernel (default: the newest
# /boot/vmlinuz-*-amd64). The same file runs inside the guest as the login shell (vng
# --shell); it knows it is there from `numatui.try_guest=1` on the kernel command line.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

cmdline_value() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }

guest_main() {
    local py demo=/tmp/numatui-demo
    py=$(cmdline_value numatui.python)
    cd "$REPO"
    export PYTHONPATH="$REPO" PYTHONDONTWRITEBYTECODE=1 HOME=/root
    case "${TERM:-dumb}" in linux | dumb | vt100 | vt102 | "") export TERM=xterm-256color ;; esac
    mkdir -p "$demo"
    echo 20 >/proc/sys/vm/nr_hugepages
    echo "nodes online: $(cat /sys/devices/system/node/online)  (with CPUs: $(cat /sys/devices/system/node/has_cpu))"
    start_workload() { # name, then workload options
        local name=$1
        shift
        # The workload exits when its stdin closes: keep a writer open for the guest's life.
        (sleep infinity | "$py" -S tests/tooling/workload.py "$@" >"$demo/$name.json" 2>"$demo/$name.err") &
    }
    start_workload private --kind private --size-mib 256 --node 0
    start_workload shared --kind shared --size-mib 128 --node 1
    start_workload hugetlb --kind hugetlb --size-mib 8 --node 2
    echo "starting demo workloads (filling memory takes a few seconds under emulation)..."
    local name waited
    for name in private shared hugetlb; do
        waited=0
        until [ -s "$demo/$name.json" ] || [ $waited -ge 180 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        echo "  $name: $(cat "$demo/$name.json" "$demo/$name.err" 2>/dev/null | head -c 300)"
    done
    cat >"$demo/bashrc" <<EOF
PS1='numa-guest# '
alias numatui='$py -m numatui'
cd '$REPO'
echo "numatui quit. Workloads: cat $demo/*.json; run numatui again: numatui; power off: Ctrl-D"
EOF
    "$py" -m numatui || echo "numatui exited with status $?"
    exec bash --rcfile "$demo/bashrc" -i
}

host_main() {
    local kernel py
    kernel=${NUMATUI_KERNEL:-$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)}
    if [ -z "$kernel" ] || [ ! -f "$kernel" ] || ! command -v vng >/dev/null; then
        echo "No guest kernel or virtme-ng here: run scripts/provision-vm.sh (as root) first." >&2
        exit 1
    fi
    if [ ! -t 0 ] || [ ! -t 1 ]; then
        echo "try-numa-guest.sh is interactive: run it in a terminal." >&2
        exit 1
    fi
    # The host's real interpreter (not a pyenv shim): the guest's own python3 lacks our deps.
    py=$(python3 -c 'import sys; print(sys.executable)')
    echo "Booting a 4-node guest with $kernel (no KVM: 20-60 s)..."
    exec vng --disable-kvm -r "$kernel" --user root \
        -m 2G -p 2 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa 512M --numa 512M \
        --cwd "$REPO" --shell "$REPO/scripts/try-numa-guest.sh" \
        --append numatui.try_guest=1 --append "numatui.python=$py"
}

if grep -qw numatui.try_guest=1 /proc/cmdline 2>/dev/null; then
    guest_main
else
    host_main "$@"
fi
