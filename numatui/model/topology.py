"""The machine's NUMA layout at one moment: its nodes, their memory and counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from numatui.model.node_bytes import frozen_map


@dataclass(frozen=True)
class HugePagePool:
    """One huge page size on one node (counts are pages of `size_bytes`)."""

    size_bytes: int
    total: int
    free: int
    surplus: int = 0


@dataclass(frozen=True)
class NodeCounters:
    """`nodeN/numastat`: cumulative page counts since boot."""

    numa_hit: int = 0
    numa_miss: int = 0
    numa_foreign: int = 0
    interleave_hit: int = 0
    local_node: int = 0
    other_node: int = 0


@dataclass(frozen=True)
class Node:
    id: int
    online: bool
    has_cpu: bool
    has_memory: bool
    cpus: tuple[int, ...] = ()
    mem_total: int = 0
    mem_free: int = 0
    mem_used: int = 0
    file_bytes: int = 0
    anon_bytes: int = 0
    shmem_bytes: int = 0
    hugepages: tuple[HugePagePool, ...] = ()
    distances: Mapping[int, int] = field(default_factory=frozen_map)
    tier: int | None = None
    counters: NodeCounters | None = None

    @property
    def memory_only(self) -> bool:
        """CPU-less node with memory: how CXL expanders and PMEM appear."""
        return self.has_memory and not self.has_cpu


@dataclass(frozen=True)
class VmCounters:
    """The `/proc/vmstat` counters numatui charts and the scanner watches (cumulative).

    `pgmigrate_counted` is False when vmstat has no pgmigrate_success (no
    CONFIG_MIGRATION, or no vmstat at all): its 0 then means "not counted",
    not "nothing moved".
    """

    pgmigrate_success: int = 0
    pgmigrate_fail: int = 0
    numa_hit: int = 0
    numa_miss: int = 0
    numa_pages_migrated: int = 0
    thp_collapse_alloc: int = 0
    pgmigrate_counted: bool = False


@dataclass(frozen=True)
class Topology:
    """What the machine's NUMA layout is, read at one moment.

    `numa_available` is False on a kernel without NUMA or in a container with
    no /sys/devices/system/node; `unavailable_reason` then says why, and the
    faces still work with the single pseudo-node they are given.
    """

    nodes: tuple[Node, ...]
    possible: frozenset[int] = frozenset()
    numa_available: bool = True
    unavailable_reason: str = ""
    numa_balancing: bool | None = None
    vm: VmCounters = field(default_factory=VmCounters)
    page_size: int = 4096
    taken_at: float = 0.0

    def node(self, node_id: int) -> Node | None:
        for n in self.nodes:
            if n.id == node_id:
                return n
        return None

    @property
    def online(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.online)

    @property
    def with_memory(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.has_memory and n.online)

    @property
    def with_cpu(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.has_cpu and n.online)

    @property
    def can_migrate(self) -> bool:
        """Migration needs NUMA and at least two nodes with memory (`rules.machine_refusal`)."""
        from numatui.rules import machine_refusal  # the rules build on this module

        return machine_refusal(self) is None
