"""In a real multi-node kernel: our topology and per-process bytes agree with numactl's tools."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from quiet import SYS_CLOCK_NANOSLEEP, thp_disabled_for_children, wait_until_blocked_in

from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader

pytestmark = [pytest.mark.guest, pytest.mark.two_nodes, pytest.mark.four_nodes]

CHILD = r"""
import mmap, sys, time
size = 8 << 20
private = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
shared = mmap.mmap(-1, size // 2)
for off in range(0, size, 4096):
    private[off] = 1
for off in range(0, size // 2, 4096):
    shared[off] = 1
print("ready", flush=True)
time.sleep(600)
"""


def numactl_hardware() -> tuple[dict[int, list[int]], dict[int, int], dict[int, list[int]]]:
    text = subprocess.run(["numactl", "-H"], capture_output=True, text=True, check=True).stdout
    cpus = {
        int(n): [int(c) for c in cs.split()] for n, cs in re.findall(r"node (\d+) cpus:(.*)", text)
    }
    sizes = {int(n): int(mb) for n, mb in re.findall(r"node (\d+) size: (\d+) MB", text)}
    rows = re.findall(r"^ *(\d+):((?: +\d+)+) *$", text, re.M)
    distances = {int(n): [int(d) for d in ds.split()] for n, ds in rows}
    return cpus, sizes, distances


def test_topology_matches_numactl_hardware() -> None:
    topology = TopologyReader().read()
    cpus, sizes, distances = numactl_hardware()
    assert topology.numa_available
    online = sorted(topology.online)
    assert online == sorted(cpus)
    for node_id in online:
        node = topology.node(node_id)
        assert node is not None
        assert list(node.cpus) == cpus[node_id]
        assert node.has_cpu == bool(cpus[node_id])
        # numactl -H prints MemTotal in whole MB (truncated).
        assert node.mem_total // 2**20 == sizes[node_id]
        assert [node.distances[o] for o in online] == distances[node_id]


def test_memory_tiers_match_sysfs() -> None:
    topology = TopologyReader().read()
    root = Path("/sys/devices/virtual/memory_tiering")
    if not root.is_dir():
        pytest.skip("this kernel has no memory tiering directory")
    tiers = {}
    for tier_dir in root.glob("memory_tier*"):
        text = (tier_dir / "nodelist").read_text().strip()
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            for n in range(int(lo), int(hi or lo) + 1):
                tiers[n] = int(tier_dir.name.removeprefix("memory_tier"))
    assert {n.id: n.tier for n in topology.nodes if n.tier is not None} == tiers


@pytest.fixture
def interleaved_child() -> Iterator[int]:
    """A child with 12 MiB interleaved over every memory node, asleep (and so still)."""
    with thp_disabled_for_children():  # no khugepaged collapse moving its pages meanwhile
        child = subprocess.Popen(
            ["numactl", "--interleave=all", sys.executable, "-c", CHILD],
            stdout=subprocess.PIPE,
            text=True,
        )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        wait_until_blocked_in(child.pid, SYS_CLOCK_NANOSLEEP)
        yield child.pid
    finally:
        child.kill()
        child.wait()


def numastat_megabytes(pid: int) -> dict[int, str]:
    """What `numastat -p` prints per node for `pid`: MB with two decimals, as text."""
    text = subprocess.run(
        ["numastat", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    header = next(line for line in text.splitlines() if line.strip().startswith("Node"))
    nodes = [int(n) for n in re.findall(r"Node (\d+)", header)]
    total = next(line for line in text.splitlines() if line.startswith("Total"))
    return dict(zip(nodes, total.split()[1:], strict=False))


def test_process_node_bytes_match_numastat(interleaved_child: int) -> None:
    Path("/proc/sys/kernel/numa_balancing").write_text("0")  # hold pages still
    topology = TopologyReader().read()
    scanner = ProcessScanner()
    scanner.use_topology(topology)  # the scanner learns the nodes one way: from the topology
    memory = scanner.read_process(interleaved_child)
    reference = numastat_megabytes(interleaved_child)
    fast = scanner.node_pages(interleaved_child)
    maps = scanner.numa_maps(interleaved_child)
    # The child sleeps and khugepaged leaves it alone: nothing moved between the reads.
    assert dict(scanner.read_process(interleaved_child).node_bytes) == dict(memory.node_bytes)
    # numastat prints MB with two decimals, correctly rounded (ties to even, as Python's
    # format): the same text, not a tolerance (a tie once fell a float's error past one).
    # numastat lists every node, the memory-less one too (node 2 of the four-node guest).
    memory_nodes = topology.with_memory
    assert scanner.memory_nodes == memory_nodes
    for node in memory_nodes:
        got = memory.node_bytes.get(node, 0)
        assert f"{got / 2**20:.2f}" == reference.get(node), (node, got, reference, maps)
    assert fast == dict(maps.node_bytes)
    # Interleaved over every memory node: each holds part of the 8 MiB.
    for node in memory_nodes:
        assert memory.node_bytes.get(node, 0) >= (8 << 20) // len(memory_nodes) // 2
    assert memory.kind_bytes["shmem"]  # the shared anonymous mapping
