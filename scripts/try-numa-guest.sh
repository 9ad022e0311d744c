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
#   - 256 MiB private anonymous memory bound to node 0, running on node 1's CPU (misplaced)
#   - 128 MiB shared anonymous memory bound to node 3 (memory-only: node 1 keeps room for
#     the private one, which needs 256 MiB of its 512 MiB beside the kernel and caches)
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
    local py trace demo=/tmp/numatui-demo
    py=$(cmdline_value numatui.python)
    cd "$REPO"
    export PYTHONPATH="$REPO" PYTHONDONTWRITEBYTECODE=1 HOME=/root
    case "${TERM:-dumb}" in linux | dumb | vt100 | vt102 | "") export TERM=xterm-256color ;; esac
    mkdir -p "$demo"
    # virtme-ng-init opens the console O_NONBLOCK and hands that one open file to this shell
    # as stdin, stdout and stderr. The emulated serial port drains slower than a full-screen
    # app writes: a non-blocking write then fails (EAGAIN), Textual's writer thread dies of
    # it and the app freezes, its frame half drawn, keys dead. The console blocks again:
    trace=$(cmdline_value numatui.trace_dir)
    [ -z "$trace" ] || echo "console before: $(grep flags /proc/$$/fdinfo/0) (04000: O_NONBLOCK)" >>"$trace/console.txt"
    "$py" -c 'import os; os.set_blocking(0, True); os.set_blocking(1, True); os.set_blocking(2, True)'
    echo 20 >/proc/sys/vm/nr_hugepages
    echo "nodes online: $(cat /sys/devices/system/node/online)  (with CPUs: $(cat /sys/devices/system/node/has_cpu))"
    start_workload() { # name, then workload options
        local name=$1
        shift
        # The workload exits when its stdin closes: keep a writer open for the guest's life.
        (sleep infinity | "$py" -S tests/tooling/workload.py "$@" >"$demo/$name.json" 2>"$demo/$name.err") &
    }
    # Memory on node 0, running on node 1's CPU: misplaced, so `m` proposes moving it home.
    start_workload private --kind private --size-mib 256 --node 0 --cpu 1
    start_workload shared --kind shared --size-mib 128 --node 3
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
    if [ -n "$trace" ]; then
        trace_app "$trace" &
        "$py" -c "$TRACED_APP" "$trace" || echo "numatui exited with status $?"
    else
        "$py" -m numatui || echo "numatui exited with status $?"
    fi
    exec bash --rcfile "$demo/bashrc" -i
}

# NUMATUI_DEMO_TRACE_DIR (tests/kernel/test_try_demo.py sets it): where the app waits, read
# every 10 s from inside the guest into that host folder: each thread's kernel stack and
# wchan, and the console's tty state (a frozen demo cannot be asked anything). Each
# thread's Python stack (faulthandler on SIGUSR1, which works while another thread holds
# the GIL) only when the test asks for it (the file dump-python-stacks), once it is about
# to fail: faulthandler reads the other threads' frames while they run, which can crash a
# busy process (CPython issue 116008; it crashed the demo once, at a migration's start).
TRACED_APP='
import faulthandler, os, runpy, signal, sys
trace = sys.argv[1]
faulthandler.register(signal.SIGUSR1, open(f"{trace}/python-stacks.txt", "a"), all_threads=True)
import threading, traceback
def thread_died(args):  # Textual captures stderr while the app runs: keep deaths here
    with open(f"{trace}/thread-exceptions.txt", "a") as log:
        log.write(f"thread {args.thread.name if args.thread else None!r} died:\n")
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=log)
threading.excepthook = thread_died
with open(f"{trace}/app.pid", "w") as pid_file:
    pid_file.write(str(os.getpid()))
sys.argv = ["numatui"]
runpy.run_module("numatui", run_name="__main__", alter_sys=True)
'

trace_sample() { # app pid: its threads' kernel side, the console, the kernel log
    local pid=$1 task
    echo "== uptime $(cut -d' ' -f1 /proc/uptime) s"
    for task in /proc/"$pid"/task/*; do
        echo "-- thread ${task##*/} $(cat "$task/comm") state=$(cut -d' ' -f3 "$task/stat")" \
            "wchan=$(cat "$task/wchan") syscall=$(cut -d' ' -f1-3 "$task/syscall")"
        cat "$task/stack"
    done 2>/dev/null
    grep -H flags /proc/"$pid"/fdinfo/[012] # O_NONBLOCK is 04000 (octal)
    grep -E '^ *[0-9]+: uart' /proc/tty/driver/serial
    stty -a -F /dev/ttyS0 | tr '\n' ' '
    echo
    ps -eLo pid,tid,stat,wchan:28,comm | awk '$3 !~ /^[SI]/ || $5 ~ /python|bash/'
    dmesg | tail -n 20
}

trace_app() { # trace folder
    local trace=$1 pid
    local tick=0
    while sleep 1; do
        pid=$(cat "$trace/app.pid" 2>/dev/null) && [ -d "/proc/$pid" ] || continue
        if [ -e "$trace/dump-python-stacks" ]; then
            echo "== uptime $(cut -d' ' -f1 /proc/uptime) s" >>"$trace/python-stacks.txt"
            kill -USR1 "$pid"
            rm -f "$trace/dump-python-stacks"
        fi
        tick=$((tick + 1))
        [ $((tick % 10)) -eq 0 ] || continue
        # Bounded: some /proc reads wait for locks the traced threads may hold.
        timeout 20 bash -c "$(declare -f trace_sample); trace_sample $pid" >>"$trace/kernel-stacks.txt" 2>&1 ||
            echo "(sample cut short after 20 s)" >>"$trace/kernel-stacks.txt"
    done
}

# Prints the interpreter that can run this checkout's numatui (>= 3.11, and the app and CLI
# import with every dependency), as its sys.executable: a venv's own path, never a pyenv
# shim or the python3 that happens to be first on PATH (after scripts/install.sh, pipx or a
# venv, that one has no Textual). The guest shares this machine's files, so the same path
# works there.
find_python() {
    local candidate entry_point data=${XDG_DATA_HOME:-$HOME/.local/share}
    entry_point=$(command -v numatui 2>/dev/null) && entry_point=$(sed -n '1s/^#!//p' "$entry_point")
    for candidate in "${NUMATUI_PYTHON:-}" "$REPO/.venv/bin/python" "$entry_point" \
        /opt/numatui/bin/python "$data/numatui/bin/python" python3; do
        [ -n "$candidate" ] || continue
        if PYTHONPATH="$REPO" "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)
import numatui.app, numatui.cli' >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return
        fi
    done
    echo "No Python here has numatui's dependencies: run scripts/install.sh first" \
        "(or set NUMATUI_PYTHON=/path/to/python)." >&2
    return 1
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
    py=$(find_python) || exit 1
    local trace_args=()
    if [ -n "${NUMATUI_DEMO_TRACE_DIR:-}" ]; then
        mkdir -p "$NUMATUI_DEMO_TRACE_DIR"
        trace_args=(--rwdir "$NUMATUI_DEMO_TRACE_DIR" --append "numatui.trace_dir=$NUMATUI_DEMO_TRACE_DIR")
    fi
    echo "Booting a 4-node guest with $kernel (no KVM: 20-60 s)..."
    exec vng "${trace_args[@]}" --disable-kvm -r "$kernel" --user root \
        -m 2G -p 2 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa 512M --numa 512M \
        --cwd "$REPO" --shell "$REPO/scripts/try-numa-guest.sh" \
        --append numatui.try_guest=1 --append "numatui.python=$py"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    return 0 # sourced (tests/unit/test_try_demo_script.py calls find_python)
elif grep -qw numatui.try_guest=1 /proc/cmdline 2>/dev/null; then
    guest_main
else
    host_main "$@"
fi
