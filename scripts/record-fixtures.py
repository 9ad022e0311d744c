#!/usr/bin/env python3
"""Record /sys and /proc trees from a real multi-node kernel into tests/fixtures/<name>/.

On the host (default): boots the QEMU guest with virtme-ng once per topology
and runs this same script inside it (`--inside`), writing through `--rwdir`;
then writes the hand-made `no_numa` tree.

    python3 scripts/record-fixtures.py            # all: two_nodes, four_nodes, no_numa
    python3 scripts/record-fixtures.py two_nodes  # one

Inside the guest it turns NUMA balancing off (so the recorded numbers hold
still), reserves huge pages on the four-node machine, starts a few workload
processes with memory on several nodes (numactl --membind / --interleave),
copies only the files the readers use, and records `numactl -H` and
`numastat -p PID` beside them as references for the tests.
Layout: tests/fixtures/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
KERNEL = "/boot/vmlinuz-6.1.0-56-amd64"

TOPOLOGIES: dict[str, list[str]] = {
    "two_nodes": ["-m", "2G", "-p", "2", "--numa", "1G,cpus=0", "--numa", "1G,cpus=1"],
    "four_nodes": [
        "-m", "2G", "-p", "2",
        "--numa", "512M,cpus=0", "--numa", "512M,cpus=1", "--numa", "512M", "--numa", "512M",
    ],
}  # fmt: skip

# A workload: allocate and touch anonymous memory, optionally shared
# anonymous memory, a /dev/shm file and huge pages; say "ready"; sleep.
WORKLOAD = r"""
import mmap, os, sys, threading, time
mib = int(sys.argv[1]); shared_mib = int(sys.argv[2]); shm_mib = int(sys.argv[3])
huge = int(sys.argv[4]); threads = int(sys.argv[5])
keep = []
anon = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for off in range(0, mib << 20, 4096):
    anon[off] = 1
keep.append(anon)
if shared_mib:
    shared = mmap.mmap(-1, shared_mib << 20)  # MAP_SHARED anonymous: shmem "/dev/zero (deleted)"
    for off in range(0, shared_mib << 20, 4096):
        shared[off] = 2
    keep.append(shared)
if shm_mib:
    fd = os.open(f"/dev/shm/numatui-{os.getpid()}", os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, shm_mib << 20)
    shm = mmap.mmap(fd, shm_mib << 20)
    for off in range(0, shm_mib << 20, 4096):
        shm[off] = 3
    keep.append(shm)
if huge:
    MAP_HUGETLB = 0x40000
    hp = mmap.mmap(-1, huge * (2 << 20), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
    for off in range(0, huge * (2 << 20), 2 << 20):
        hp[off] = 4
    keep.append(hp)
def pinned(cpu):
    os.sched_setaffinity(0, {cpu})
    end = time.time() + 0.2
    while time.time() < end:
        pass
    time.sleep(3600)
for i in range(threads):
    threading.Thread(target=pinned, args=(i % os.cpu_count(),), daemon=True).start()
time.sleep(0.5)
print("ready", flush=True)
time.sleep(3600)
"""

# (numactl policy, anon MiB, shared anon MiB, /dev/shm MiB, huge pages, pinned threads)
WORKLOADS: dict[str, list[tuple[list[str], int, int, int, int, int]]] = {
    "two_nodes": [
        (["--membind=0"], 16, 0, 0, 0, 0),
        (["--membind=1"], 16, 0, 0, 0, 0),
        (["--interleave=all"], 24, 4, 2, 0, 2),
    ],
    "four_nodes": [
        (["--membind=0"], 8, 0, 0, 0, 0),
        (["--membind=2"], 12, 0, 0, 0, 0),
        (["--interleave=all"], 16, 4, 2, 0, 2),
        (["--membind=1"], 4, 0, 0, 2, 0),
    ],
}

PID_FILES = ("status", "stat", "cmdline", "numa_maps", "comm")
NODE_FILES = ("online", "possible", "has_cpu", "has_memory", "has_normal_memory")
PER_NODE_FILES = ("cpulist", "meminfo", "numastat", "distance")
HUGE_FILES = ("nr_hugepages", "free_hugepages", "surplus_hugepages")


def copy_file(src: Path, root: Path) -> None:
    """Copy one kernel file's bytes to root/<src without leading />."""
    dest = root / str(src).lstrip("/")
    try:
        data = src.read_bytes()
    except OSError:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def copy_pid(pid: int, root: Path) -> None:
    base = Path(f"/proc/{pid}")
    for name in PID_FILES:
        copy_file(base / name, root)
    try:
        tids = os.listdir(base / "task")
    except OSError:
        return
    for tid in tids:
        copy_file(base / "task" / tid / "stat", root)


def record_inside(name: str, out: Path) -> None:
    """Runs in the guest: start workloads, copy the tree, record references."""
    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    if name == "four_nodes":
        Path("/proc/sys/vm/nr_hugepages").write_text("20")
    children: list[subprocess.Popen[str]] = []
    for policy, mib, shared, shm, huge, threads in WORKLOADS[name]:
        args = [str(a) for a in (mib, shared, shm, huge, threads)]
        cmd = ["numactl", *policy, sys.executable, "-c", WORKLOAD, *args]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise SystemExit(f"workload {child.args} did not start")
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        sys_root, proc_root, ref = root / "sys", root / "proc", root / "reference"
        node = Path("/sys/devices/system/node")
        for f in NODE_FILES:
            copy_file(node / f, sys_root.parent)
        for entry in sorted(os.listdir(node)):
            if not (entry.startswith("node") and entry[4:].isdigit()):
                continue
            for f in PER_NODE_FILES:
                copy_file(node / entry / f, sys_root.parent)
            hp = node / entry / "hugepages"
            for size in sorted(os.listdir(hp)) if hp.is_dir() else []:
                for f in HUGE_FILES:
                    copy_file(hp / size / f, sys_root.parent)
        tiers = Path("/sys/devices/virtual/memory_tiering")
        for entry in sorted(os.listdir(tiers)) if tiers.is_dir() else []:
            copy_file(tiers / entry / "nodelist", sys_root.parent)
        copy_file(Path("/sys/devices/system/cpu/online"), sys_root.parent)
        for f in ("meminfo", "vmstat", "stat", "sys/kernel/numa_balancing"):
            copy_file(Path("/proc") / f, proc_root.parent)
        # kthreadd (a kernel thread), init, and the workloads; the workloads
        # run under numactl, which exec()s, so their pids are the children's.
        for pid in [1, 2, *(c.pid for c in children)]:
            copy_pid(pid, proc_root.parent)
        ref.mkdir(parents=True, exist_ok=True)
        numactl = subprocess.run(["numactl", "-H"], capture_output=True, text=True)
        (ref / "numactl-H.txt").write_text(numactl.stdout)
        for child in children:
            stat = subprocess.run(
                ["numastat", "-p", str(child.pid)], capture_output=True, text=True
            )
            (ref / f"numastat-p-{child.pid}.txt").write_text(stat.stdout)
        (ref / "workloads.txt").write_text(
            "".join(f"{c.pid} {' '.join(map(str, c.args[:2]))}\n" for c in children)
        )
    finally:
        for child in children:
            child.kill()
        for f in Path("/dev/shm").glob("numatui-*"):
            f.unlink()


def write_no_numa(out: Path) -> None:
    """A machine without /sys/devices/system/node: a container or a CONFIG_NUMA=n kernel."""
    root = out / "no_numa"
    if root.exists():
        shutil.rmtree(root)
    files = {
        "proc/meminfo": (
            "MemTotal:        4030464 kB\nMemFree:         2015232 kB\n"
            "MemAvailable:    3000000 kB\nBuffers:           10240 kB\n"
            "Cached:           512000 kB\nSwapCached:            0 kB\n"
            "AnonPages:        409600 kB\nShmem:             20480 kB\n"
            "HugePages_Total:       0\nHugePages_Free:        0\n"
            "HugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n"
        ),
        "proc/vmstat": "nr_free_pages 503808\npgmigrate_success 0\npgmigrate_fail 0\n",
        "proc/stat": "cpu  1 0 1 100 0 0 0 0 0 0\nbtime 1700000000\n",
        "sys/devices/system/cpu/online": "0-3\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def record_in_guest(name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="numatui-rec-") as tmp:
        inner = (
            f"cd {REPO} && PYTHONDONTWRITEBYTECODE=1 {sys.executable} "
            f"scripts/record-fixtures.py --inside {name} --out {tmp}"
        )
        cmd = ["timeout", "600", "vng", "--disable-kvm", "-r", KERNEL, *TOPOLOGIES[name],
               "--rwdir", tmp, "--", inner]  # fmt: skip
        started = time.monotonic()
        subprocess.run(cmd, check=True)
        print(f"{name}: guest took {time.monotonic() - started:.0f} s")
        dest = FIXTURES / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(Path(tmp) / name, dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=[*TOPOLOGIES, "no_numa"])
    parser.add_argument("--inside", metavar="NAME", help="run inside the guest (internal)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    args = parser.parse_args()
    if args.inside:
        record_inside(args.inside, args.out)
        return
    for name in args.names:
        if name == "no_numa":
            write_no_numa(FIXTURES)
        else:
            record_in_guest(name)


if __name__ == "__main__":
    main()
