"""The workload helper on the host (one NUMA node): kinds start, checksums are right and stable."""

from __future__ import annotations

import hashlib
import os
import signal
import struct
from pathlib import Path

import pytest

from tests.tooling.workload import PAGE_SIZE, Workload, WorkloadError, fill, free_huge_pages


def expected_checksum(size: int) -> str:
    """The documented pattern built the slow, obvious way: bytes 0..250 repeating per page,
    the first 8 bytes of page i replaced by i (little-endian u64)."""
    base = bytes(i % 251 for i in range(PAGE_SIZE))
    digest = hashlib.sha256()
    for index in range(size // PAGE_SIZE):
        digest.update(struct.pack("<Q", index) + base[8:])
    return digest.hexdigest()


def numa_maps_line(pid: int, start: int) -> str:
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        if line.startswith(f"{start:x} "):
            return line
    raise AssertionError(f"no numa_maps line at {start:x}")


def vma_range(pid: int, start: int) -> int:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if low == start:
            return high - low
    raise AssertionError(f"no mapping at {start:x}")


def test_fill_pattern_matches_documented_layout() -> None:
    memory = memoryview(bytearray(3 * 1024 * 1024))
    fill(memory)
    assert hashlib.sha256(memory).hexdigest() == expected_checksum(len(memory))


@pytest.mark.parametrize("kind", ["private", "shared", "file"])
def test_kind_reports_stable_correct_checksum(kind: str, tmp_path: Path) -> None:
    file_dir = str(tmp_path) if kind == "file" else None
    with Workload.start(kind=kind, size_mib=4, file_dir=file_dir, timeout=60) as work:
        assert work.info["pid"] == work.pid
        assert work.info["kind"] == kind
        assert work.info["bytes"] == 4 * 1024 * 1024
        assert work.info["checksum"] == expected_checksum(4 * 1024 * 1024)
        assert work.checksum() == work.info["checksum"]
        assert work.checksum() == work.info["checksum"]
        line = numa_maps_line(work.pid, work.info["start"])
        # Guard pages keep the mapping unmerged: its VMA is exactly the workload's memory.
        assert vma_range(work.pid, work.info["start"]) == 4 * 1024 * 1024
        if kind == "file":
            assert Path(work.info["path"]).parent == tmp_path
            assert f"file={work.info['path']}" in line
            # The file holds the pattern too: it was written through the shared mapping.
            data = Path(work.info["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == work.info["checksum"]
        assert work.stop() == 0
    if kind == "file":
        assert list(tmp_path.iterdir()) == [], "the backing file is removed on exit"


def test_node_binding_shows_in_numa_maps() -> None:
    with Workload.start(kind="private", size_mib=2, node=0, cpu=0, timeout=60) as work:
        line = numa_maps_line(work.pid, work.info["start"])
        assert line.split()[1] == "bind:0"
        assert "N0=512" in line.split(), line
        assert os.sched_getaffinity(work.pid) == {0}


def test_thp_region_is_aligned_and_reports_huge_bytes() -> None:
    with Workload.start(kind="thp", size_mib=4, timeout=60) as work:
        assert work.info["start"] % (2 * 1024 * 1024) == 0
        assert work.info["anon_huge_bytes"] == work.anon_huge_bytes()
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        if "[never]" not in mode:
            assert work.info["anon_huge_bytes"] > 0


def test_sigterm_exits_and_removes_file(tmp_path: Path) -> None:
    work = Workload.start(kind="file", size_mib=1, file_dir=str(tmp_path), timeout=60)
    os.kill(work.pid, signal.SIGTERM)
    assert work.process.wait(timeout=30) == 0
    work.stop()
    assert list(tmp_path.iterdir()) == []


def test_hugetlb_without_reserved_pages_fails_clearly() -> None:
    if free_huge_pages(None) >= 1:
        pytest.skip("this host has huge pages reserved")
    with pytest.raises(WorkloadError, match="nr_hugepages"):
        Workload.start(kind="hugetlb", size_mib=2, timeout=60)


def test_bad_node_fails_clearly() -> None:
    with pytest.raises(WorkloadError, match="cannot bind to node 1000"):
        Workload.start(kind="private", size_mib=1, node=1000, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uid")
def test_runs_as_another_user() -> None:
    with Workload.start(kind="private", size_mib=2, user=65534, timeout=60) as work:
        status = Path(f"/proc/{work.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["65534"] * 4
        assert work.checksum() == expected_checksum(2 * 1024 * 1024)
