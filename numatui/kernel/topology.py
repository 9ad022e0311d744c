"""The machine's NUMA layout from /sys/devices/system/node, memory tiers and /proc.

Everything is read under injectable roots so tests and the UI can use the
recorded trees in tests/fixtures. Every file may be missing or unreadable
(a container, an old kernel, a node going offline mid-read): each degrades
to a default and `read()` never raises.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from numatui.kernel.nodemask import parse_kernel_list
from numatui.kernel.vmstat import MAX_COUNTER_DIGITS, parse_key_values, read_vmstat
from numatui.model.node_bytes import frozen_map
from numatui.model.topology import HugePagePool, Node, NodeCounters, Topology, VmCounters

_MEMINFO_LINE = re.compile(
    r"^(?:Node[ \t]+[0-9]+[ \t]+)?([A-Za-z0-9_()]+):[ \t]*([0-9]+)(?:[ \t]*(kB))?[ \t]*$",
    re.MULTILINE | re.ASCII,
)
_NODE_DIR = re.compile(r"node([0-9]+)", re.ASCII)
_TIER_DIR = re.compile(r"memory_tier([0-9]+)", re.ASCII)
_HUGEPAGES_DIR = re.compile(r"hugepages-([0-9]+)kB", re.ASCII)
_MAX_DIGITS = MAX_COUNTER_DIGITS


def _int(text: str) -> int | None:
    return int(text) if len(text) <= _MAX_DIGITS else None


def parse_meminfo(text: str) -> dict[str, int]:
    """`Key: value [kB]` lines (also `Node N Key: ...`) to bytes, or plain counts without kB."""
    out: dict[str, int] = {}
    for key, value, unit in _MEMINFO_LINE.findall(text):
        number = _int(value)
        if number is not None:
            out[key] = number * 1024 if unit else number
    return out


def parse_numastat(text: str) -> NodeCounters:
    values = parse_key_values(text)
    return NodeCounters(
        numa_hit=values.get("numa_hit", 0),
        numa_miss=values.get("numa_miss", 0),
        numa_foreign=values.get("numa_foreign", 0),
        interleave_hit=values.get("interleave_hit", 0),
        local_node=values.get("local_node", 0),
        other_node=values.get("other_node", 0),
    )


def parse_distance(text: str, online: list[int]) -> dict[int, int]:
    """nodeN/distance: one distance per ONLINE node, in node order (for_each_online_node).

    Returns {} when the count does not match the online nodes or a value is
    not a number (the line is then not to be trusted).
    """
    values = text.split()
    if len(values) != len(online) or not all(v.isascii() and v.isdigit() for v in values):
        return {}
    if any(len(v) > _MAX_DIGITS for v in values):
        return {}
    return {node: int(v) for node, v in zip(online, values, strict=True)}


def parse_cpulist(text: str) -> tuple[int, ...]:
    """A range list (`0-3,8`) as sorted CPU ids; malformed text gives ()."""
    try:
        return tuple(sorted(parse_kernel_list(text)))
    except ValueError:
        return ()


def parse_nodelist(text: str) -> frozenset[int]:
    try:
        return parse_kernel_list(text)
    except ValueError:
        return frozenset()


def cpu_node_map(topology: Topology) -> dict[int, int]:
    """CPU id -> node id, for telling which nodes a process's threads run on."""
    return {cpu: node.id for node in topology.nodes for cpu in node.cpus}


class TopologyReader:
    """Reads a `Topology` from a /sys and a /proc tree (the live ones by default)."""

    def __init__(self, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc")) -> None:
        self.sys_root = sys_root
        self.proc_root = proc_root
        self.node_root = sys_root / "devices" / "system" / "node"

    def _text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return None

    def _nodelist(self, name: str) -> frozenset[int] | None:
        text = self._text(self.node_root / name)
        return None if text is None else parse_nodelist(text)

    def _number(self, path: Path) -> int | None:
        text = self._text(path)
        if text is None:
            return None
        text = text.strip()
        if not (text.isascii() and text.isdigit()):
            return None
        return _int(text)

    # ------------------------------------------------------------ pieces

    def page_size(self) -> int:
        return os.sysconf("SC_PAGE_SIZE")

    def numa_balancing(self) -> bool | None:
        """None when the kernel has no such knob; any mode (1 normal, 2 tiering) counts as on."""
        value = self._number(self.proc_root / "sys" / "kernel" / "numa_balancing")
        return None if value is None else value != 0

    def vm_counters(self) -> VmCounters:
        return read_vmstat(self.proc_root) or VmCounters()

    def memory_tiers(self) -> dict[int, int]:
        """node id -> tier number (smaller is faster)."""
        root = self.sys_root / "devices" / "virtual" / "memory_tiering"
        tiers: dict[int, int] = {}
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            return tiers
        for entry in entries:
            match = _TIER_DIR.fullmatch(entry)
            if match is None:
                continue
            text = self._text(root / entry / "nodelist")
            if text is None:
                continue
            for node in parse_nodelist(text):
                tiers.setdefault(node, int(match.group(1)))
        return tiers

    def _hugepages(self, node_dir: Path) -> tuple[HugePagePool, ...]:
        root = node_dir / "hugepages"
        try:
            entries = os.listdir(root)
        except OSError:
            return ()
        pools: list[HugePagePool] = []
        for entry in entries:
            match = _HUGEPAGES_DIR.fullmatch(entry)
            if match is None:
                continue
            pool = root / entry
            pools.append(
                HugePagePool(
                    size_bytes=int(match.group(1)) * 1024,
                    total=self._number(pool / "nr_hugepages") or 0,
                    free=self._number(pool / "free_hugepages") or 0,
                    surplus=self._number(pool / "surplus_hugepages") or 0,
                )
            )
        return tuple(sorted(pools, key=lambda p: p.size_bytes))

    def _node(
        self,
        node_id: int,
        online: frozenset[int],
        online_order: list[int],
        has_cpu: frozenset[int] | None,
        has_memory: frozenset[int] | None,
        tiers: Mapping[int, int],
    ) -> Node:
        node_dir = self.node_root / f"node{node_id}"
        cpus = parse_cpulist(self._text(node_dir / "cpulist") or "")
        meminfo = parse_meminfo(self._text(node_dir / "meminfo") or "")
        numastat_text = self._text(node_dir / "numastat")
        mem_total = meminfo.get("MemTotal", 0)
        return Node(
            id=node_id,
            online=node_id in online,
            # Without has_cpu/has_memory (old kernels) the node's own files tell.
            has_cpu=node_id in has_cpu if has_cpu is not None else bool(cpus),
            has_memory=node_id in has_memory if has_memory is not None else mem_total > 0,
            cpus=cpus,
            mem_total=mem_total,
            mem_free=meminfo.get("MemFree", 0),
            mem_used=meminfo.get("MemUsed", max(0, mem_total - meminfo.get("MemFree", 0))),
            file_bytes=meminfo.get("FilePages", 0),
            anon_bytes=meminfo.get("AnonPages", 0),
            shmem_bytes=meminfo.get("Shmem", 0),
            hugepages=self._hugepages(node_dir),
            distances=frozen_map(
                parse_distance(self._text(node_dir / "distance") or "", online_order)
            ),
            tier=tiers.get(node_id),
            counters=parse_numastat(numastat_text) if numastat_text is not None else None,
        )

    def _node_dirs(self) -> frozenset[int]:
        try:
            names = os.listdir(self.node_root)
        except OSError:
            return frozenset()
        return frozenset(
            int(m.group(1)) for name in names if (m := _NODE_DIR.fullmatch(name)) is not None
        )

    def _without_numa(self, reason: str) -> Topology:
        """One pseudo node 0 holding the whole machine, so every face still works."""
        meminfo = parse_meminfo(self._text(self.proc_root / "meminfo") or "")
        cpus = parse_cpulist(
            self._text(self.sys_root / "devices" / "system" / "cpu" / "online") or ""
        )
        if not cpus:
            cpuinfo = self._text(self.proc_root / "cpuinfo") or ""
            cpus = tuple(
                sorted(
                    int(m)
                    for m in re.findall(r"^processor[ \t]*:[ \t]*([0-9]+)", cpuinfo, re.M | re.A)
                )
            )
        if not cpus:
            cpus = tuple(range(os.cpu_count() or 1))
        mem_total = meminfo.get("MemTotal", 0)
        mem_free = meminfo.get("MemFree", 0)
        huge_size = meminfo.get("Hugepagesize", 0)
        hugepages = (
            (
                HugePagePool(
                    size_bytes=huge_size,
                    total=meminfo.get("HugePages_Total", 0),
                    free=meminfo.get("HugePages_Free", 0),
                    surplus=meminfo.get("HugePages_Surp", 0),
                ),
            )
            if huge_size
            else ()
        )
        node = Node(
            id=0,
            online=True,
            has_cpu=True,
            has_memory=True,
            cpus=cpus,
            mem_total=mem_total,
            mem_free=mem_free,
            mem_used=max(0, mem_total - mem_free),
            # The node files' FilePages counts buffers, page cache and swap cache.
            file_bytes=meminfo.get("Cached", 0)
            + meminfo.get("Buffers", 0)
            + meminfo.get("SwapCached", 0),
            anon_bytes=meminfo.get("AnonPages", 0),
            shmem_bytes=meminfo.get("Shmem", 0),
            hugepages=hugepages,
            distances=frozen_map({0: 10}),
        )
        return Topology(
            nodes=(node,),
            possible=frozenset({0}),
            numa_available=False,
            unavailable_reason=reason,
            numa_balancing=self.numa_balancing(),
            vm=self.vm_counters(),
            page_size=self.page_size(),
            taken_at=time.time(),
        )

    # ------------------------------------------------------------ public

    def read(self) -> Topology:
        """Nodes, CPUs, memory, huge pages, distances, tiers and counters, now. Never raises."""
        try:
            return self._read()
        except Exception as e:  # a last guard: the faces must always get a topology
            return self._without_numa(f"could not read the NUMA layout ({type(e).__name__}: {e})")

    def _read(self) -> Topology:
        if not self.node_root.is_dir():
            return self._without_numa(
                f"{self.node_root} does not exist: this kernel was built without NUMA "
                "support, or this is a container that hides it"
            )
        dirs = self._node_dirs()
        online = self._nodelist("online")
        if online is None:
            online = dirs
        possible = self._nodelist("possible")
        if possible is None:
            possible = online | dirs
        node_ids = sorted(possible | online | dirs)
        if not node_ids:
            return self._without_numa(f"{self.node_root} lists no nodes")
        has_cpu = self._nodelist("has_cpu")
        has_memory = self._nodelist("has_memory")
        tiers = self.memory_tiers()
        online_order = sorted(online)
        nodes = tuple(
            self._node(n, online, online_order, has_cpu, has_memory, tiers) for n in node_ids
        )
        return Topology(
            nodes=nodes,
            possible=frozenset(possible),
            numa_available=True,
            numa_balancing=self.numa_balancing(),
            vm=self.vm_counters(),
            page_size=self.page_size(),
            taken_at=time.time(),
        )
