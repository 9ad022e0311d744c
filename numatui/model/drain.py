"""Draining a node: the plan, its progress and the report of what stayed and why."""

from __future__ import annotations

from dataclasses import dataclass

from numatui.model.findings import Finding
from numatui.model.migration import MigrationPlan, MigrationResult


@dataclass(frozen=True)
class DrainItem:
    """One process with memory on the drained node: where it goes, or why it does not."""

    pid: int
    name: str
    bytes_on_node: int
    target: int | None
    plan: MigrationPlan | None
    refusal: Finding | None = None


@dataclass(frozen=True)
class DrainPlan:
    """Every process with memory on `node`, each with its target (the dry run's answer).

    `refusal` set: the drain as a whole is refused (no such node, the only memory
    node, a node without memory) and nothing is to be done.
    """

    node: int
    items: tuple[DrainItem, ...] = ()
    refusal: Finding | None = None
    unreadable: int = 0  # processes whose memory this user may not read (not planned)

    @property
    def bytes_to_move(self) -> int:
        return sum(item.bytes_on_node for item in self.items if item.plan is not None)

    @property
    def bytes_staying(self) -> int:
        return sum(item.bytes_on_node for item in self.items if item.plan is None)


@dataclass(frozen=True)
class DrainProgress:
    """The whole drain so far: processes done, bytes moved off the node, the one moving now."""

    elapsed_s: float
    processes_done: int
    processes_total: int
    bytes_moved: int
    bytes_total: int
    current_pid: int | None = None


@dataclass(frozen=True)
class DrainLeftover:
    """Memory still on the drained node that numatui did not move, and why."""

    reason: str  # stable: kernel, page_cache, hugetlb, process, not_planned, other
    bytes: int
    detail: str


@dataclass(frozen=True)
class DrainReport:
    plan: DrainPlan
    results: tuple[MigrationResult, ...]
    used_before: int  # the node's MemUsed (its meminfo), bytes
    used_after: int
    leftovers: tuple[DrainLeftover, ...]
    elapsed_s: float
    stopped: bool = False

    @property
    def bytes_moved(self) -> int:
        return sum(
            max(0, r.before.get(self.plan.node, 0) - r.after.get(self.plan.node, 0))
            for r in self.results
        )
