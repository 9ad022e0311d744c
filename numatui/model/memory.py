"""Processes and where their memory lives: numa_maps lines, one process, one scan."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from numatui.model.node_bytes import NodeBytes, frozen_map, total_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from functools import cached_property as computed_once
    from typing import Any
else:

    class computed_once:  # named as the functools decorator it stands in for
        """`functools.cached_property` without its lock.

        On Python 3.11 its first access on each object takes a lock shared by every
        object of the class (3.12 dropped it): ~3,100 instructions, 4 % of formatting a
        table of 2,069 new rows (callgrind). A figure computed from frozen fields is the
        same whichever thread computes it, so two threads racing to it need no lock.
        Stored in the object's `__dict__` under the same name, it is found there from
        then on (a non-data descriptor), and `dataclasses.replace` makes a new object
        without it."""

        def __init__(self, compute: Callable[[Any], object]) -> None:
            self._compute = compute
            self._name = compute.__name__
            self.__doc__ = compute.__doc__

        def __set_name__(self, owner: type, name: str) -> None:
            self._name = name

        def __get__(self, instance: object | None, owner: type | None = None) -> object:
            if instance is None:
                return self
            value = self._compute(instance)
            instance.__dict__[self._name] = value
            return value


class MemoryKind(enum.StrEnum):
    """What a mapping holds, as numa_maps tells it apart."""

    ANON = "anon"
    FILE = "file"
    HEAP = "heap"
    STACK = "stack"
    SHMEM = "shmem"
    HUGE = "huge"  # hugetlbfs pages (not THP: a THP counts as its base pages)


@dataclass(frozen=True)
class MappedRegion:
    """One line of /proc/PID/numa_maps: one VMA."""

    start: int
    policy: str
    kind: MemoryKind
    path: str | None
    node_pages: Mapping[int, int]
    page_size: int
    anon: int = 0
    dirty: int = 0
    mapped: int = 0
    mapmax: int = 0
    swapcache: int = 0

    @property
    def node_bytes(self) -> NodeBytes:
        return frozen_map({n: p * self.page_size for n, p in self.node_pages.items()})

    @property
    def shared(self) -> bool:
        """Mapped by other processes too: migrate_pages leaves these without CAP_SYS_NICE."""
        return self.mapmax > 1


@dataclass(frozen=True, slots=True)
class RegionPages:
    """Where one mapping's pages are, and no more: what a move through the address space
    needs of a numa_maps line (`MappedRegion` has every field of it)."""

    start: int
    page_size: int
    node_pages: Mapping[int, int]


@dataclass(frozen=True)
class NumaMaps:
    """A process's whole numa_maps, summed per node and per kind."""

    mappings: tuple[MappedRegion, ...]

    @property
    def node_bytes(self) -> NodeBytes:
        out: dict[int, int] = {}
        for m in self.mappings:
            for n, p in m.node_pages.items():
                out[n] = out.get(n, 0) + p * m.page_size
        return frozen_map(out)

    @property
    def kind_bytes(self) -> Mapping[MemoryKind, NodeBytes]:
        out: dict[MemoryKind, dict[int, int]] = {}
        for m in self.mappings:
            d = out.setdefault(m.kind, {})
            for n, p in m.node_pages.items():
                d[n] = d.get(n, 0) + p * m.page_size
        return MappingProxyType({k: frozen_map(v) for k, v in out.items()})

    @property
    def shared_bytes(self) -> NodeBytes:
        out: dict[int, int] = {}
        for m in self.mappings:
            if m.shared:
                for n, p in m.node_pages.items():
                    out[n] = out.get(n, 0) + p * m.page_size
        return frozen_map(out)


@dataclass(frozen=True)
class ProcessMemory:
    """One process's identity and where its memory lives, at one scan.

    `node_bytes` counts pages present in RAM per node (numa_maps), which is
    what migration moves; `rss_bytes` is psutil's resident size for context.
    `kind_bytes` splits `node_bytes` by `MemoryKind`.
    """

    pid: int
    name: str
    user: str
    cmdline: str
    rss_bytes: int
    threads: int
    node_bytes: NodeBytes
    kind_bytes: Mapping[MemoryKind, NodeBytes] = field(default_factory=lambda: MappingProxyType({}))
    shared_bytes: NodeBytes = field(default_factory=frozen_map)
    mems_allowed: frozenset[int] = frozenset()
    cpu_nodes: frozenset[int] = frozenset()
    mapping_count: int = 0
    start_time: float = 0.0
    is_kernel_thread: bool = False
    memory_readable: bool = True  # False: numa_maps denied (other user, hidepid); bytes unknown
    kinds_read: bool = True
    """False: read for a list, bytes per node only; `kind_bytes` and `shared_bytes`
    were not read (empty, not zero)."""

    # Cached: a table row asks for these several times (cells, sort values, misplaced);
    # frozen fields never change, and computed_once writes past the frozen __setattr__.
    @computed_once
    def numa_bytes(self) -> int:
        return total_bytes(self.node_bytes)

    @computed_once
    def locality(self) -> float | None:
        """Share of the memory on nodes where the threads run; None when unknown."""
        total = self.numa_bytes
        if total == 0 or not self.cpu_nodes:
            return None
        local = sum(b for n, b in self.node_bytes.items() if n in self.cpu_nodes)
        return local / total


@dataclass(frozen=True)
class ProcessScan:
    """The result of one scan of all processes."""

    processes: tuple[ProcessMemory, ...]
    taken_at: float
    duration_s: float = 0.0
    skipped_unchanged: int = 0
    unreadable: int = 0  # processes whose numa_maps we may not read (other users, hidepid)
    vanished: int = 0  # processes that exited while we read them
