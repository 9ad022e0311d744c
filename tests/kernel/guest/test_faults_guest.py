"""Faults during a migration and a partly readable /proc, against a real multi-node kernel.

Each case must end in a precise message and a result that agrees with the kernel's own
counts. (The target exiting mid-migration is in test_refusals_guest.py.)
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from other_user import NOBODY, run_as
from test_migration_guest import (
    HUGE_2M,
    MIB,
    huge_pages_on,
    job_for,
    kernel_node_bytes,
    node_free,
    plan_for,
)

from numatui import cli
from numatui.kernel.live import LiveSource
from numatui.kernel.pid_files import hides_other_users
from numatui.kernel.scanner import ProcessScanner
from numatui.model.migration import MigrationOutcome, MigrationProgress
from tests.tooling.workload import Workload

pytestmark = [pytest.mark.guest]

WorkloadFactory = Callable[..., Workload]
REPO = Path(__file__).resolve().parents[3]


def vma_start(pid: int, address: int) -> int:
    """Start of the mapping that holds `address` (it may have merged with a neighbour)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if low <= address < high:
            return low
    raise LookupError(f"pid {pid} maps nothing at {address:#x}")


def _agrees_with_kernel(after: dict[int, int], pid: int) -> None:
    kernel, mappings = kernel_node_bytes(pid)
    slack = mappings * 4096 + 4 * MIB  # the interpreter's own pages move by faults
    for node in set(after) | set(kernel):
        assert abs(after.get(node, 0) - kernel.get(node, 0)) <= slack, (after, kernel)


@pytest.mark.two_nodes
def test_target_fills_up_mid_migration(workload: WorkloadFactory) -> None:
    size = 256 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    plan = plan_for(work.pid, {0}, {1})
    free = node_free(1)
    # Room for half the workload when the kernel starts; at its first progress sample
    # another consumer takes nearly all of what is left (huge pages: an instant hog).
    early = max(0, free - size // 2) // HUGE_2M
    late = max(0, free - 16 * MIB) // HUGE_2M
    grown: list[int] = []
    with huge_pages_on({1: early}) as reserved:
        assert reserved[1] > 0

        def fill_target(progress: MigrationProgress) -> None:
            if not grown:
                Path(
                    "/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"
                ).write_text(f"{late}\n")
                grown.append(late)

        result = job_for(plan, sample_interval_s=0.05).run(on_progress=fill_target)
        assert grown, "the migration ended before its first progress sample"
        assert result.outcome is MigrationOutcome.PARTLY_MOVED, result
        text = " ".join(result.explanations)
        assert "node 1 is full" in text or "could not move" in text, result.explanations
        assert 0 < result.bytes_moved < size
        _agrees_with_kernel(dict(result.after), work.pid)
    assert work.checksum() == work.info["checksum"]


POLICY_CHILD = r"""
import ctypes, mmap, signal, sys, time
from tests.tooling import mempolicy
from numatui.kernel.nodemask import NodeMask
size_a, size_b = int(sys.argv[1]), int(sys.argv[2])
def guard():  # an inaccessible page: keeps the kernel from merging a and b with neighbours
    return mmap.mmap(-1, mmap.PAGESIZE, prot=0)  # PROT_NONE
guards = [guard()]
a = mmap.mmap(-1, size_a, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
guards.append(guard())
a.write(b"x" * size_a)
# Mapped now (mmap would wait for the migration's mmap lock), touched only on the signal.
# PROT_EXEC: other flags than a, so the kernel never merges the two into one mapping.
prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
b = mmap.mmap(-1, size_b, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=prot)
guards.append(guard())
def address(m):
    return ctypes.addressof(ctypes.c_char.from_buffer(m))
def change_of_mind(signum, frame):
    # The process's own policy change mid-migration: bind to node 0, then allocate.
    mempolicy.set_mempolicy(mempolicy.MPOL_BIND, NodeMask([0]))
    b.write(b"y" * size_b)
    print("rebound", flush=True)
signal.signal(signal.SIGUSR1, change_of_mind)
print(address(a), address(b), flush=True)
while True:
    time.sleep(0.01)
"""
SIZE_A = 160 * MIB
SIZE_B = 48 * MIB


@pytest.fixture
def policy_child() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    child = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", POLICY_CHILD, str(SIZE_A), str(SIZE_B)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    start_a, start_b = (int(x) for x in child.stdout.readline().split())
    yield child, start_a, start_b
    child.kill()
    child.wait()


@pytest.mark.two_nodes
def test_process_changes_its_own_policy_mid_migration(
    policy_child: tuple[subprocess.Popen[str], int, int],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    child, start_a, start_b = policy_child
    pid = child.pid
    assert vma_bytes_per_node(pid, vma_start(pid, start_a)).get(0, 0) >= SIZE_A * 0.95
    plan = plan_for(pid, {0}, {1})
    signalled: list[float] = []

    def change_policy(progress: MigrationProgress) -> None:
        if not signalled:
            signalled.append(progress.elapsed_s)
            os.kill(pid, signal.SIGUSR1)

    result = job_for(plan, sample_interval_s=0.05).run(on_progress=change_policy)
    assert signalled, "the migration ended before the process could change its policy"
    assert child.stdout is not None and child.stdout.readline().strip() == "rebound"
    # The kernel moved what was there; the new pages follow the process's new policy.
    assert vma_bytes_per_node(pid, vma_start(pid, start_a)).get(1, 0) >= SIZE_A * 0.95
    assert vma_bytes_per_node(pid, vma_start(pid, start_b)).get(0, 0) >= SIZE_B * 0.95
    print(f"outcome {result.outcome.value}: {result.explanations}")
    if result.outcome is MigrationOutcome.PARTLY_MOVED:
        text = " ".join(result.explanations)
        assert "memory policy (bind:0)" in text, result.explanations
        # What numatui saw left on node 0 is at most what is there now (A moved, B came).
        assert result.after.get(0, 0) <= kernel_node_bytes(pid)[0].get(0, 0) + 4 * MIB
    else:  # the new pages came after the job's last look: all it was asked to move moved
        assert result.outcome is MigrationOutcome.ALL_MOVED, result
        assert result.after.get(0, 0) < SIZE_B


@contextlib.contextmanager
def hidepid_proc() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="numatui-proc-"))
    subprocess.run(["mount", "-t", "proc", "-o", "hidepid=2", "proc", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def scan_as_nobody(hidden: str, roots: int, mine: int) -> dict[str, object]:
    """What a user without privileges sees of /proc and of a hidepid=2 mount (run_as)."""
    plain = ProcessScanner().scan()
    by_pid = {p.pid: p for p in plain.processes}
    strict = ProcessScanner(proc_root=Path(hidden)).scan()
    return {
        "me": os.getpid(),
        "plain_unreadable": plain.unreadable,
        "roots_listed": roots in by_pid,
        "roots_bytes": by_pid[roots].numa_bytes if roots in by_pid else -1,
        "roots_readable": by_pid[roots].memory_readable if roots in by_pid else 1,
        "mine_bytes": by_pid[mine].numa_bytes if mine in by_pid else -1,
        "strict_pids": sorted(p.pid for p in strict.processes),
        "strict_unreadable": strict.unreadable,
        "hides": hides_other_users(Path(hidden)),
        "plain_hides": hides_other_users(Path("/proc")),
        # What the app's summary line is told (common.privilege_note says it).
        "source_hidden": LiveSource(proc_root=Path(hidden)).privileges().processes_hidden,
        "plain_source_hidden": LiveSource().privileges().processes_hidden,
    }


def cli_ps_as_nobody(hidden: str) -> dict[str, object]:
    """`numatui --proc-root HIDDEN ps` as a user without privileges (run_as)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["--proc-root", hidden, "ps"])
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


@pytest.mark.two_nodes
def test_partly_readable_proc_as_non_root(workload: WorkloadFactory) -> None:
    mine = workload(kind="private", size_mib=8, node=0, cpu=0, user=NOBODY)
    roots = workload(kind="private", size_mib=8, node=1, cpu=1)
    with hidepid_proc() as hidden:
        seen = run_as(NOBODY, scan_as_nobody, hidden=str(hidden), roots=roots.pid, mine=mine.pid)
        # Plain /proc: root's process is listed, its memory unknown and counted as such.
        assert seen["roots_listed"] and seen["roots_bytes"] == 0 and not seen["roots_readable"]
        assert isinstance(seen["plain_unreadable"], int) and seen["plain_unreadable"] > 0
        assert isinstance(seen["mine_bytes"], int) and seen["mine_bytes"] >= 8 * MIB
        # hidepid=2: only nobody's own processes exist; nothing half-read, and it is known.
        own = sorted(
            int(d.name)
            for d in Path("/proc").iterdir()
            if d.name.isdigit() and d.stat().st_uid == NOBODY
        )
        assert mine.pid in seen["strict_pids"] and roots.pid not in seen["strict_pids"]  # type: ignore[operator]
        assert set(seen["strict_pids"]) <= set(own) | {mine.pid, seen["me"]}  # type: ignore[arg-type]
        assert seen["strict_unreadable"] == 0
        assert seen["hides"] is True and seen["plain_hides"] is False
        assert seen["source_hidden"] is True and seen["plain_source_hidden"] is False
        # Root (CAP_SYS_PTRACE) sees through hidepid: nothing is hidden from it.
        assert LiveSource(proc_root=hidden).privileges().processes_hidden is False

        # The CLI says the list is partial, and why, as that user.
        ran = run_as(NOBODY, cli_ps_as_nobody, hidden=str(hidden))
        assert ran.get("rc") == 0, ran
        err, out = str(ran["err"]), str(ran["out"])
        assert "hidepid" in err and "Traceback" not in err, err
        assert str(mine.pid) in out.split() and str(roots.pid) not in out.split(), out
