"""The seam between the faces (app, CLI) and the machine.

The app receives a `DataSource` instead of reading the machine itself, so
tests hand it recorded trees and the real-kernel tier hands it the live one.
Every method may block (it reads /proc or calls a syscall): the app calls
them from thread workers only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from numatui.model.memory import NumaMaps, ProcessScan
from numatui.model.migration import MigrationPlan, MigrationResult, Pacing, ProgressCallback
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology

if TYPE_CHECKING:
    # Loaded by the groups view and the drain dialog when first opened, not at start.
    from numatui.model.drain import DrainPlan, DrainProgress, DrainReport
    from numatui.model.groups import GroupMigrationResult, GroupProgressCallback, GroupScan

__all__ = ["DataSource", "Privileges", "ProgressCallback"]  # the last two live in the model


class DataSource(Protocol):
    def topology(self) -> Topology:
        """Nodes, sizes, distances, tiers and counters right now."""
        ...

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        """Every process's memory per node; reuses `previous` for unchanged ones.

        `nodes_only`: bytes per node and command lines only, several times
        cheaper to read; kinds and shared bytes are left out (`kinds_read` False).
        """
        ...

    def numa_maps(self, pid: int) -> NumaMaps:
        """One process's mappings. Raises `ProcessGone` if it exited."""
        ...

    def privileges(self) -> Privileges: ...

    def groups(self, scan: ProcessScan | None = None) -> GroupScan:
        """The cgroups of `scan`'s processes, with memory per node (`Group`)."""
        ...

    def plan(
        self,
        pid: int,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        *,
        stoppable: bool = False,
        pacing: Pacing | None = None,
    ) -> MigrationPlan:
        """Validate and preview; raises `MigrationRefused` with the reason (and its code).

        `stoppable`: the plan moves with move_pages a chunk at a time so it can be
        stopped part way; the mode is chosen here, never edited into a plan after.
        `pacing`: the stoppable mode's stall budget per chunk and rate cap.
        """
        ...

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        """Run the migration (blocking); never raises for kernel errors, the result says.

        A `plan.stoppable` migration stops soon after `cancel` is set, and the
        result says how much had moved by then; otherwise `cancel` only stops
        one that has not started.
        """
        ...

    def migrate_group(
        self,
        path: str,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        on_progress: GroupProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        stoppable: bool = False,
    ) -> GroupMigrationResult:
        """Move every process of the cgroup (blocking); the result says what moved, never
        raises for a bad path or a kernel error. `cancel` stops before the next process."""
        ...

    def plan_drain(self, node: int, pacing: Pacing | None = None) -> DrainPlan:
        """Every process with memory on `node` and where it would go; nothing is moved.
        A drain refused as a whole comes back with `refusal` set (and is audited)."""
        ...

    def drain(
        self,
        plan: DrainPlan,
        on_progress: Callable[[DrainProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DrainReport:
        """Move each planned process off the node (paced); `cancel` stops between chunks."""
        ...
