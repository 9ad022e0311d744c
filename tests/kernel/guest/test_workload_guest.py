"""In a real multi-node kernel: each workload kind bound to a node really lives there.

This is the ground the migration tests stand on: if `--node N` did not place every page on
N, a "moved from N" claim would prove nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tooling.workload import Workload, fill

SIZE_MIB = 16  # small: Python under TCG fills and hashes at tens of MiB/s


def pattern_checksum(size: int) -> str:
    memory = memoryview(bytearray(size))
    fill(memory)
    return hashlib.sha256(memory).hexdigest()


def own_numa_maps_line(pid: int, start: int) -> str:
    prefix = f"{start:x} "
    lines = Path(f"/proc/{pid}/numa_maps").read_text().splitlines()
    return next(line for line in lines if line.startswith(prefix))


@pytest.mark.two_nodes
@pytest.mark.parametrize("node", [0, 1])
@pytest.mark.parametrize("kind", ["private", "shared", "file", "thp"])
def test_bound_kind_lives_on_its_node(
    kind: str,
    node: int,
    tmp_path: Path,
    workload: Callable[..., Workload],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    size = SIZE_MIB * 1024 * 1024
    file_dir = str(tmp_path) if kind == "file" else None
    # CPU 0 belongs to node 0: binding to node 1 must override the local-node default.
    work = workload(kind=kind, size_mib=SIZE_MIB, node=node, cpu=0, file_dir=file_dir)
    placed = vma_bytes_per_node(work.pid, work.info["start"])
    line = own_numa_maps_line(work.pid, work.info["start"])
    assert placed == {node: size}, f"{kind} bound to node {node} is placed {placed}: {line}"
    assert line.split()[1] == f"bind:{node}", line
    assert work.info["checksum"] == pattern_checksum(size)
    assert work.checksum() == work.info["checksum"]
    if kind == "thp":
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        if "[never]" not in mode:
            assert work.info["anon_huge_bytes"] > 0, "MADV_HUGEPAGE got no huge page"


@pytest.mark.four_nodes
@pytest.mark.parametrize("node", [0, 3])
def test_hugetlb_lives_on_its_node(
    node: int,
    workload: Callable[..., Workload],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    # The harness reserved 20 pages spread 5 per node: 2 fit on any node.
    work = workload(kind="hugetlb", size_mib=4, node=node)
    line = own_numa_maps_line(work.pid, work.info["start"])
    placed = vma_bytes_per_node(work.pid, work.info["start"])
    assert placed == {node: 4 * 1024 * 1024}, line
    assert " huge " in line and "kernelpagesize_kB=2048" in line, line
    assert work.checksum() == work.info["checksum"] == pattern_checksum(4 * 1024 * 1024)


@pytest.mark.four_nodes
def test_memory_only_node_holds_private_memory(
    workload: Callable[..., Workload],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
    cpu_nodes: list[int],
) -> None:
    # Node 3 has no CPUs (as CXL memory appears); binding there must still place every page.
    assert 3 not in cpu_nodes
    work = workload(kind="private", size_mib=SIZE_MIB, node=3)
    assert vma_bytes_per_node(work.pid, work.info["start"]) == {3: SIZE_MIB * 1024 * 1024}
    assert work.checksum() == work.info["checksum"]


@pytest.mark.two_nodes
def test_unprivileged_workload_is_placed_and_owned(
    workload: Callable[..., Workload],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    work = workload(kind="private", size_mib=SIZE_MIB, node=1, user=65534)
    status = Path(f"/proc/{work.pid}/status").read_text()
    assert "Uid:\t65534\t65534\t65534\t65534" in status
    assert vma_bytes_per_node(work.pid, work.info["start"]) == {1: SIZE_MIB * 1024 * 1024}
    assert work.checksum() == work.info["checksum"]
