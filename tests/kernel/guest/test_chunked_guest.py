"""The stoppable migration (move_pages a chunk at a time) against the real kernel.

That it lands where migrate_pages(2) would is checked beside migrate_pages itself
(test_migration_guest.py, `chunked`); here: stopped part way it leaves every byte
intact and reports exactly what had moved, from the job, the source and the CLI.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_migration_guest import (
    HUGE_2M,
    MIB,
    PAGE,
    WorkloadFactory,
    assert_counts_agree,
    job_for,
    kernel_node_bytes,
    page_nodes,
    plan_for,
    run_migration,
)

from numatui.kernel import syscalls
from numatui.kernel.live import LiveSource
from numatui.model.migration import MigrationOutcome, MigrationProgress

pytestmark = [pytest.mark.guest]


@pytest.mark.two_nodes
def test_stopped_part_way_reports_what_moved_and_keeps_every_byte(
    workload: WorkloadFactory,
) -> None:
    size = 256 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    start = work.info["start"]
    plan = plan_for(work.pid, {0}, {1}, stoppable=True)
    cancel = threading.Event()
    # The interpreter may already hold pages on node 1: count what the move added.
    already_on_1 = kernel_node_bytes(work.pid)[0].get(1, 0)

    def stop_when_some_moved(progress: MigrationProgress) -> None:
        if progress.node_bytes.get(1, 0) - already_on_1 >= 16 * MIB:
            cancel.set()

    job = job_for(plan, sample_interval_s=0.02, sample_cost_ratio=1.0)
    result = job.run(stop_when_some_moved, cancel)

    assert cancel.is_set(), "no sample saw the move start: the workload moved too fast"
    assert result.outcome is MigrationOutcome.PARTLY_MOVED, result.explanations
    assert result.error is not None and "stopped by the user" in result.error.message
    assert "stopped by the user after" in result.explanations[0]
    assert_counts_agree(result, work.pid)
    # The progress that stopped it saw 16 MiB moved; some of that can be the
    # interpreter's own pages, walked before the region: the whole process is judged.
    assert result.bytes_moved >= 16 * MIB, result.bytes_moved
    pages = page_nodes(work.pid, start, size)
    on_1 = pages.count(1)
    assert 0 < on_1 < size // PAGE, on_1
    assert pages.count(0) + on_1 == size // PAGE  # every page is on one of the two
    assert work.checksum() == work.info["checksum"]
    # What the result says moved is what the kernel shows moved (within a page per
    # mapping: the interpreter's own pages may fault in meanwhile).
    kernel, mappings = kernel_node_bytes(work.pid)
    assert abs(result.bytes_moved - (kernel.get(1, 0) - result.before.get(1, 0))) <= (
        mappings * PAGE + 32 * PAGE
    )


@pytest.mark.two_nodes
def test_the_source_moves_a_stoppable_plan_in_chunks(
    workload: WorkloadFactory, tmp_path: Path
) -> None:
    work = workload(kind="private", size_mib=16, node=0, cpu=0)
    source = LiveSource(audit_path=tmp_path / "audit.jsonl")
    plan = source.plan(work.pid, {0}, {1}, stoppable=True)
    stopped_before = threading.Event()
    stopped_before.set()
    before, _ = kernel_node_bytes(work.pid)
    result = source.migrate(plan, None, stopped_before)
    assert result.outcome is MigrationOutcome.FAILED and result.bytes_moved == 0
    assert kernel_node_bytes(work.pid)[0].get(0, 0) >= before.get(0, 0) - 32 * PAGE

    result = source.migrate(plan, None, threading.Event())
    assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    assert_counts_agree(result, work.pid)
    assert work.checksum() == work.info["checksum"]
    # Two migrations, each an attempt (before the syscall) and an outcome (after).
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 4


SPARSE_CHILD = r"""
import mmap, sys, time
# 80 GiB of address space reserved, 8 MiB of it touched: a sanitizer's shadow or a
# huge reserved heap looks like this.
reserve = mmap.mmap(-1, 80 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
for off in range(0, 8 << 20, 4096):
    reserve[off] = 1
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.two_nodes
def test_a_too_sparse_address_space_is_moved_in_one_call_and_says_so() -> None:
    import subprocess
    import sys

    child = subprocess.Popen(
        ["numactl", "--membind=0", sys.executable, "-c", SPARSE_CHILD],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        plan = plan_for(child.pid, {0}, {1}, stoppable=True)
        result = run_migration(plan)
        assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
        assert any("cannot be stopped" in e for e in result.explanations), result.explanations
        assert result.after.get(1, 0) >= 8 * MIB and result.after.get(0, 0) <= 64 * PAGE
        assert_counts_agree(result, child.pid)
        # One call, not a walk of 20 million addresses: seconds, not minutes.
        assert result.elapsed_s < 60, result.elapsed_s
    finally:
        child.kill()
        child.wait()


@pytest.mark.two_nodes
def test_ctrl_c_stops_the_cli_between_chunks_and_it_still_reports_and_audits(
    workload: WorkloadFactory, tmp_path: Path
) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    size = 512 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    repo = Path(__file__).resolve().parents[3]
    log = tmp_path / "numatui" / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(repo), "NUMATUI_AUDIT_LOG": str(log)}
    command = ["migrate", str(work.pid), "0", "1", "--yes", "--json", "--stoppable"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "numatui", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    # The interpreter may already hold pages on node 1: wait for 16 MiB more than that.
    already_on_1 = kernel_node_bytes(work.pid)[0].get(1, 0)
    while kernel_node_bytes(work.pid)[0].get(1, 0) < already_on_1 + 16 * MIB:
        assert cli.poll() is None, cli.communicate()
        assert time.monotonic() < deadline, "the migration never started"
        time.sleep(0.01)
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=120)

    assert cli.returncode == 3, (cli.returncode, out, err)  # partly moved
    assert "stopping after the current chunk" in err and "Traceback" not in err, err
    report = json.loads(out)
    assert report["outcome"] == "partly moved"
    assert any("stopped by the user" in e for e in report["explanations"]), report
    kernel, mappings = kernel_node_bytes(work.pid)
    for node, after in report["after"].items():
        assert abs(after - kernel.get(int(node), 0)) <= mappings * PAGE + 32 * PAGE
    assert already_on_1 + 16 * MIB <= kernel.get(1, 0) < size + already_on_1
    assert work.checksum() == work.info["checksum"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["pid"], e["outcome"]) for e in entries] == [
        (work.pid, "attempted"),
        (work.pid, "partly moved"),
    ]


@pytest.mark.two_nodes
def test_huge_pages_move_whole_from_two_addresses_each(workload: WorkloadFactory) -> None:
    """The paced mover sends a huge page's first and last page, not all 512 (chunked.py):
    every page still moves, including huge pages mapped page by page after one of their
    pages was dropped, and the data stays intact."""
    size = 64 * MIB
    work = workload(kind="thp", size_mib=size // MIB, node=0, cpu=0)
    start = work.info["start"]
    assert work.info["anon_huge_bytes"] >= size // 2, "the guest gave too few huge pages"
    split = work.request("split")
    dropped = set(split["dropped"])
    assert len(dropped) == size // (4 * HUGE_2M)
    sent_in_region: list[int] = []

    def counting(
        pid: int, addresses: Sequence[int], nodes: Sequence[int] | None = None, flags: int = 0
    ) -> list[int]:
        sent_in_region.append(sum(start <= a < start + size for a in addresses))
        return syscalls.move_pages(pid, addresses, nodes, flags)

    plan = plan_for(work.pid, {0}, {1}, stoppable=True)
    result = job_for(plan, move_pages=counting).run(None, None)

    assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    pages = page_nodes(work.pid, start, size)
    gone = [start + i * PAGE for i, node in enumerate(pages) if node != 1]
    # A dropped page reads back as the zero page (-EFAULT) or absent, unless khugepaged
    # collapsed its huge page again meanwhile (then it is a page on node 1 like the rest).
    assert set(gone) <= dropped, [(hex(a), pages[(a - start) // PAGE]) for a in gone[:8]]
    assert all(pages[(a - start) // PAGE] in (-errno.EFAULT, -errno.ENOENT) for a in gone)
    assert work.checksum() == split["checksum"]
    assert_counts_agree(result, work.pid)
    # 16,384 pages: each huge page costs 2 addresses and 1 query, not 512 (the pacer's
    # first chunks may go page by page, but they fall in the interpreter's mappings).
    assert sum(sent_in_region) <= size // PAGE // 8, sum(sent_in_region)


MANY_MAPPINGS_CHILD = r"""
import hashlib, sys
sys.path.insert(0, sys.argv[2])
from tests.tooling.mappings import address_of, many_mappings
region = many_mappings(int(sys.argv[1]))
print(address_of(region), len(region), hashlib.sha256(region).hexdigest(), flush=True)
for line in sys.stdin:
    print(hashlib.sha256(region).hexdigest(), flush=True)
"""
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.two_nodes
def test_many_small_mappings_move_in_few_calls() -> None:
    """5,000 mappings of 4 pages: each made a move_pages call of its own (5,000 calls, each
    with its fixed cost); batched, they go a chunk's worth at a time, every page moved."""
    import subprocess
    import sys

    count = 5_000
    child = subprocess.Popen(
        [
            "numactl",
            "--membind=0",
            sys.executable,
            "-c",
            MANY_MAPPINGS_CHILD,
            str(count),
            str(REPO),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        start_s, size_s, checksum = child.stdout.readline().split()
        start, size = int(start_s), int(size_s)
        assert set(page_nodes(child.pid, start, size)) == {0}
        assert kernel_node_bytes(child.pid)[1] >= count
        calls: list[int] = []

        def counting(
            pid: int, addresses: Sequence[int], nodes: Sequence[int] | None = None, flags: int = 0
        ) -> list[int]:
            calls.append(len(addresses))
            return syscalls.move_pages(pid, addresses, nodes, flags)

        plan = plan_for(child.pid, {0}, {1}, stoppable=True)
        result = job_for(plan, move_pages=counting).run(None, None)

        assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
        assert set(page_nodes(child.pid, start, size)) == {1}
        assert_counts_agree(result, child.pid)
        child.stdin.write("checksum\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == checksum
        # 20,000 pages and the interpreter's own: a few hundred calls at most, not 5,000.
        assert len(calls) <= count // 10, (len(calls), sorted(calls)[-5:])
    finally:
        child.kill()
        child.wait()
