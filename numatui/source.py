"""The seam between the faces (app, CLI) and the machine.

The app receives a `DataSource` instead of reading the machine itself, so
tests hand it recorded trees and the real-kernel tier hands it the live one.
Every method may block (it reads /proc or calls a syscall): the app calls
them from thread workers only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from numatui.model import (
    MigrationPlan,
    MigrationProgress,
    MigrationResult,
    NumaMaps,
    ProcessScan,
    Topology,
)


@dataclass(frozen=True)
class Privileges:
    """What the running user may do, so faces can explain refusals up front."""

    uid: int
    is_root: bool
    cap_sys_nice: bool  # move shared pages and other users' processes' pages
    cap_sys_ptrace: bool  # read/migrate other users' processes
    processes_hidden: bool = False
    """/proc is mounted with hidepid and we may not see past it: others' processes are missing."""


ProgressCallback = Callable[[MigrationProgress], None]


class DataSource(Protocol):
    def topology(self) -> Topology:
        """Nodes, sizes, distances, tiers and counters right now."""
        ...

    def scan(self, previous: ProcessScan | None = None) -> ProcessScan:
        """Every process's memory per node; reuses `previous` for unchanged ones."""
        ...

    def numa_maps(self, pid: int) -> NumaMaps:
        """One process's mappings. Raises `ProcessGone` if it exited."""
        ...

    def privileges(self) -> Privileges: ...

    def plan(self, pid: int, from_nodes: Iterable[int], to_nodes: Iterable[int]) -> MigrationPlan:
        """Validate and preview; raises `MigrationRefused` with the reason."""
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
