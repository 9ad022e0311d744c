"""TopologyReader on recorded trees, hand-made trees, and arbitrary text for every parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numatui.kernel.topology import (
    TopologyReader,
    cpu_node_map,
    parse_cpulist,
    parse_distance,
    parse_meminfo,
    parse_nodelist,
    parse_numastat,
)
from numatui.kernel.vmstat import parse_key_values, parse_vmstat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def reader(name: str) -> TopologyReader:
    return TopologyReader(sys_root=FIXTURES / name / "sys", proc_root=FIXTURES / name / "proc")


def kb_field(path: Path, key: str) -> int:
    """Independent reading of one `... Key: N kB` line, in bytes."""
    match = re.search(rf"{key}:\s+(\d+) kB", path.read_text())
    assert match is not None
    return int(match.group(1)) * 1024


def numactl_h(name: str) -> dict[str, object]:
    text = (FIXTURES / name / "reference" / "numactl-H.txt").read_text()
    cpus = {
        int(n): [int(c) for c in cs.split()] for n, cs in re.findall(r"node (\d+) cpus:(.*)", text)
    }
    sizes = {int(n): int(mb) for n, mb in re.findall(r"node (\d+) size: (\d+) MB", text)}
    rows = re.findall(r"^ *(\d+):((?: +\d+)+) *$", text, re.M)
    distances = {int(n): [int(d) for d in ds.split()] for n, ds in rows}
    return {"cpus": cpus, "sizes": sizes, "distances": distances}


@pytest.mark.parametrize("name", ["two_nodes", "four_nodes"])
def test_recorded_topology_matches_numactl(name: str) -> None:
    topology = reader(name).read()
    reference = numactl_h(name)
    node_dir = FIXTURES / name / "sys" / "devices" / "system" / "node"
    assert topology.numa_available and topology.unavailable_reason == ""
    assert [n.id for n in topology.nodes] == sorted(reference["cpus"])  # type: ignore[call-overload]
    for node in topology.nodes:
        assert node.online
        assert list(node.cpus) == reference["cpus"][node.id]  # type: ignore[index]
        assert node.mem_total // 2**20 == reference["sizes"][node.id]  # type: ignore[index]
        meminfo = node_dir / f"node{node.id}" / "meminfo"
        assert node.mem_total == kb_field(meminfo, "MemTotal")
        assert node.mem_free == kb_field(meminfo, "MemFree")
        assert node.mem_used == kb_field(meminfo, "MemUsed")
        assert node.file_bytes == kb_field(meminfo, "FilePages")
        assert node.anon_bytes == kb_field(meminfo, "AnonPages")
        assert node.shmem_bytes == kb_field(meminfo, "Shmem")
        online = sorted(n.id for n in topology.nodes)
        assert [node.distances[o] for o in online] == reference["distances"][node.id]  # type: ignore[index]
        assert node.tier == 4  # DRAM tier: emulated nodes are all plain memory
        numastat = (node_dir / f"node{node.id}" / "numastat").read_text()
        assert node.counters is not None
        assert node.counters.numa_hit == int(re.search(r"numa_hit (\d+)", numastat).group(1))  # type: ignore[union-attr]
        assert {p.size_bytes for p in node.hugepages} == {2 << 20, 1 << 30}
    assert topology.numa_balancing is False  # turned off while recording
    vmstat = (FIXTURES / name / "proc" / "vmstat").read_text()
    assert topology.vm.numa_hit == int(re.search(r"^numa_hit (\d+)", vmstat, re.M).group(1))  # type: ignore[union-attr]
    assert topology.vm.pgmigrate_success == int(
        re.search(r"^pgmigrate_success (\d+)", vmstat, re.M).group(1)
    )  # type: ignore[union-attr]
    assert topology.can_migrate
    assert cpu_node_map(topology) == {0: 0, 1: 1}


def test_four_nodes_memory_only_and_huge_pages() -> None:
    topology = reader("four_nodes").read()
    assert {n.id for n in topology.nodes if n.memory_only} == {2, 3}
    assert topology.with_cpu == {0, 1} and topology.with_memory == {0, 1, 2, 3}
    two_mb = [p for n in topology.nodes for p in n.hugepages if p.size_bytes == 2 << 20]
    assert sum(p.total for p in two_mb) == 20  # echo 20 > /proc/sys/vm/nr_hugepages
    node1 = topology.node(1)
    assert node1 is not None
    pool = next(p for p in node1.hugepages if p.size_bytes == 2 << 20)
    assert pool.total - pool.free >= 2  # the workload bound to node 1 holds two


def test_no_numa_gives_one_pseudo_node() -> None:
    topology = reader("no_numa").read()
    assert not topology.numa_available and "NUMA" in topology.unavailable_reason
    assert not topology.can_migrate
    (node,) = topology.nodes
    assert node.id == 0 and node.online and node.has_cpu and node.has_memory
    assert node.cpus == (0, 1, 2, 3)
    assert node.mem_total == 4030464 * 1024 and node.mem_free == 2015232 * 1024
    assert node.mem_used == node.mem_total - node.mem_free
    assert node.file_bytes == (512000 + 10240) * 1024
    assert node.hugepages[0].size_bytes == 2 << 20


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_sparse_nodes_and_possible_offline(tmp_path: Path) -> None:
    node = "sys/devices/system/node"
    _write(
        tmp_path,
        {
            f"{node}/online": "0,2,5\n",
            f"{node}/possible": "0-7\n",
            f"{node}/has_cpu": "0,5\n",
            f"{node}/has_memory": "0,2,5\n",
            f"{node}/node0/cpulist": "0-1\n",
            f"{node}/node0/distance": "10 20 30\n",
            f"{node}/node0/meminfo": "Node 0 MemTotal: 1000 kB\nNode 0 MemFree: 400 kB\n",
            f"{node}/node2/cpulist": "\n",
            f"{node}/node2/distance": "20 10 25\n",
            f"{node}/node5/cpulist": "2-3\n",
            f"{node}/node5/distance": "30 25 10\n",
            "sys/devices/virtual/memory_tiering/memory_tier4/nodelist": "0,5\n",
            "sys/devices/virtual/memory_tiering/memory_tier22/nodelist": "2\n",
            "proc/sys/kernel/numa_balancing": "2\n",
        },
    )
    topology = TopologyReader(tmp_path / "sys", tmp_path / "proc").read()
    assert [n.id for n in topology.nodes] == list(range(8))
    assert topology.online == {0, 2, 5} and topology.possible == frozenset(range(8))
    n0, n2, n5 = topology.node(0), topology.node(2), topology.node(5)
    assert n0 is not None and n2 is not None and n5 is not None
    assert n0.distances == {0: 10, 2: 20, 5: 30} and n5.distances[2] == 25
    assert n2.memory_only and n2.tier == 22 and n0.tier == 4
    assert n0.mem_total == 1000 * 1024 and n0.mem_used == 600 * 1024
    offline = topology.node(3)
    assert offline is not None and not offline.online and not offline.has_memory
    assert topology.numa_balancing is True  # mode 2 (memory tiering) is on too
    assert topology.vm.pgmigrate_success == 0  # no /proc/vmstat: defaults
    assert not topology.vm.pgmigrate_counted  # ... that say nothing was counted


def test_missing_and_unreadable_files_degrade(tmp_path: Path) -> None:
    node = "sys/devices/system/node"
    _write(tmp_path, {f"{node}/node1/cpulist": "garbage\n", f"{node}/node1/distance": "10 x\n"})
    (tmp_path / node / "online").mkdir()  # reading a directory fails like an unreadable file
    (tmp_path / node / "node1" / "meminfo").mkdir()
    topology = TopologyReader(tmp_path / "sys", tmp_path / "proc").read()
    assert topology.numa_available
    (n1,) = topology.nodes
    assert n1.id == 1 and n1.online and n1.cpus == () and n1.mem_total == 0
    assert dict(n1.distances) == {} and n1.counters is None
    assert topology.numa_balancing is None


def test_empty_node_directory_is_no_numa(tmp_path: Path) -> None:
    (tmp_path / "sys/devices/system/node").mkdir(parents=True)
    topology = TopologyReader(tmp_path / "sys", tmp_path / "proc").read()
    assert not topology.numa_available and len(topology.nodes) == 1


def test_parsers_on_known_text() -> None:
    assert parse_meminfo("Node 12 MemTotal:  10 kB\nNode 12 HugePages_Total:   3\n") == {
        "MemTotal": 10240,
        "HugePages_Total": 3,
    }
    assert parse_meminfo("Active(anon):   4 kB\n") == {"Active(anon)": 4096}
    assert parse_numastat("numa_hit 5\nother_node 7\n").other_node == 7
    assert parse_vmstat("pgmigrate_success 9\nnuma_pages_migrated 2\n").numa_pages_migrated == 2
    assert parse_vmstat("pgmigrate_success 0\n").pgmigrate_counted
    assert not parse_vmstat("numa_hit 3\n").pgmigrate_counted
    assert parse_distance("10 20\n", [0, 3]) == {0: 10, 3: 20}
    assert parse_distance("10 20 30\n", [0, 3]) == {}
    assert parse_cpulist("0-2,8\n") == (0, 1, 2, 8) and parse_cpulist("3-1") == ()
    assert parse_nodelist("") == frozenset()


@settings(max_examples=400, deadline=None)
@given(st.text(), st.lists(st.integers(0, 1023), max_size=8))
def test_parsers_take_any_text(text: str, online: list[int]) -> None:
    assert all(isinstance(v, int) for v in parse_meminfo(text).values())
    parse_key_values(text)
    parse_numastat(text)
    parse_vmstat(text)
    parse_distance(text, online)
    parse_cpulist(text)
    parse_nodelist(text)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True), st.integers(0, 2**40)))
def test_meminfo_round_trip(values: dict[str, int]) -> None:
    text = "".join(f"Node 3 {k}: {v:>10} kB\n" for k, v in values.items())
    assert parse_meminfo(text) == {k: v * 1024 for k, v in values.items()}


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 300), max_size=40))
def test_cpulist_round_trip(cpus: set[int]) -> None:
    ordered = sorted(cpus)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    assert parse_cpulist(",".join(parts) + "\n") == tuple(ordered)
