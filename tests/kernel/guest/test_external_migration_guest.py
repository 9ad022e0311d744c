"""Pages moved by ANOTHER process show on the scanner's very next refresh (real kernel).

numactl's `migratepages` moves a sleeping workload's memory with migrate_pages(2): the
workload takes no fault, so its /proc/PID/stat change signature stays the same and only
/proc/vmstat's pgmigrate_success tells the scanner to re-read. Without that signal the
move would show only after the scanner's safety max age (300 s by default).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from quiet import blocked_in

from numatui.kernel.pid_files import parse_stat
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.vmstat import MigrationCounters, parse_migration_counters
from numatui.model.memory import ProcessMemory, ProcessScan
from tests.tooling.workload import Workload

pytestmark = [pytest.mark.guest]

MIB = 1024 * 1024
WorkloadFactory = Callable[..., Workload]
_NODE_FIELD = re.compile(r" N(\d+)=(\d+)")
_PAGE_KB = re.compile(r" kernelpagesize_kB=(\d+)")


def kernel_node_bytes(pid: int) -> dict[int, int]:
    """Per-node bytes of a whole process, summed here from its numa_maps text."""
    out: dict[int, int] = {}
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        size = _PAGE_KB.search(line)
        page = int(size[1]) * 1024 if size else 4096
        for node, pages in _NODE_FIELD.findall(line):
            out[int(node)] = out.get(int(node), 0) + int(pages) * page
    return out


def numastat_mib(pid: int) -> dict[int, float]:
    """`numastat -p PID`'s Total row: MiB per node, printed with two decimals."""
    text = subprocess.run(
        ["numastat", "-p", str(pid)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    header = next(line for line in text.splitlines() if "Node " in line)
    nodes = [int(n) for n in re.findall(r"Node (\d+)", header)]
    total = next(line for line in text.splitlines() if line.startswith("Total"))
    return dict(zip(nodes, (float(v) for v in total.split()[1:]), strict=False))


def signature(pid: int) -> tuple[int, ...]:
    stat = parse_stat(Path(f"/proc/{pid}/stat").read_bytes())
    assert stat is not None
    return stat.change_signature


def counters() -> MigrationCounters:
    parsed = parse_migration_counters(Path("/proc/vmstat").read_bytes())
    assert parsed is not None, "this kernel has no pgmigrate_success in /proc/vmstat"
    return parsed


def by_pid(scan: ProcessScan) -> dict[int, ProcessMemory]:
    return {p.pid: p for p in scan.processes}


@pytest.mark.two_nodes
def test_migratepages_by_another_process_shows_on_the_next_scan(
    workload: WorkloadFactory,
) -> None:
    assert shutil.which("migratepages"), "numactl's migratepages is not installed"
    size = 32 * MIB
    # The fixture hands it over asleep on stdin, without THP (no khugepaged collapse).
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    scanner = ProcessScanner()  # every default: max age 300 s, forced at most every 10 s
    assert scanner.max_age_s >= 300

    first = scanner.scan()
    before = by_pid(first)[work.pid]
    assert before.node_bytes.get(0, 0) >= size and before.node_bytes.get(1, 0) < size
    signature_before, counters_before = signature(work.pid), counters()

    subprocess.run(["migratepages", str(work.pid), "0", "1"], check=True, timeout=120)

    # The workload sleeps on stdin: it took no fault, its stat cannot tell the scanner.
    # (start_ticks, minflt, majflt, vsize, rss_pages, num_threads)
    assert signature(work.pid) == signature_before, blocked_in(work.pid)
    assert counters().not_by_balancing >= counters_before.not_by_balancing + size // 4096
    second = scanner.scan(first)  # at once: no waiting for a max age
    after = by_pid(second)[work.pid]
    print(
        f"{len(first.processes)} processes; after migratepages the next scan re-read "
        f"{len(second.processes) - second.skipped_unchanged}, "
        f"{scanner.last_forced_by_counters} of them for the counters; "
        f"workload {dict(before.node_bytes)} -> {dict(after.node_bytes)}"
    )
    assert after is not before
    assert scanner.last_forced_by_counters >= 1
    assert after.node_bytes.get(1, 0) >= size
    assert before.node_bytes.get(0, 0) - after.node_bytes.get(0, 0) >= size
    # The scan and this read sum the same N<node>=<pages> fields of a process that is
    # asleep: equal to the byte. numastat prints MiB rounded to 0.01 (half of it either way).
    kernel = kernel_node_bytes(work.pid)
    assert dict(after.node_bytes) == {n: b for n, b in kernel.items() if b}
    for node, mib in numastat_mib(work.pid).items():
        assert abs(mib * MIB - kernel.get(node, 0)) <= 0.005 * MIB + 1, (node, mib, kernel)
    assert work.checksum() == work.info["checksum"]


@pytest.mark.two_nodes
def test_no_migration_means_only_changed_processes_are_reread(
    workload: WorkloadFactory,
) -> None:
    """With counters quiet, a refresh re-reads only processes whose own stat changed.

    Balancing is off (conftest), but compaction and khugepaged may still move pages in
    the guest; a pair of scans during which the counters moved is retried.
    """
    work = workload(kind="private", size_mib=16, node=0, cpu=0)
    quiet_pairs = 0
    for _ in range(4):
        scanner = ProcessScanner()
        counters_before = counters()
        first = scanner.scan()
        signatures = {pid: known.signature for pid, known in scanner._known.items()}
        second = scanner.scan(first)
        moved = counters() != counters_before
        earlier = by_pid(first)
        reread = {p.pid for p in second.processes if earlier.get(p.pid) is not p}
        changed_stat = {
            pid
            for pid in reread
            if pid not in signatures or scanner._known[pid].signature != signatures[pid]
        }
        print(
            f"{len(second.processes)} processes, skipped {second.skipped_unchanged}, "
            f"re-read {sorted(reread)} (own stat changed: {sorted(changed_stat)}); "
            f"counters moved meanwhile: {moved}"
        )
        if moved:
            continue
        quiet_pairs += 1
        assert scanner.last_forced_by_counters == 0
        assert reread == changed_stat, "re-read without its stat changing or a counter moving"
        assert second.skipped_unchanged == len(second.processes) - len(reread)
        assert work.pid not in reread
    assert quiet_pairs >= 1, "the migration counters moved during every pair of scans"
