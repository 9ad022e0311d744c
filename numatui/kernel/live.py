"""The machine as a `DataSource`: /sys, /proc and the syscalls behind one object.

The app and the CLI are handed this (or, in tests, the same class pointed at
a recorded tree), so no face ever reads a file or calls a syscall itself.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from pathlib import Path

from numatui.errors import MigrationRefused, ProcessGone
from numatui.kernel import audit, migration
from numatui.kernel.privileges import read_privileges
from numatui.kernel.procfs import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model import MigrationPlan, MigrationResult, NumaMaps, ProcessScan, Topology
from numatui.source import Privileges, ProgressCallback


class LiveSource:
    """Reads the running kernel (or a recorded tree under other roots)."""

    def __init__(
        self,
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        privileges: Privileges | None = None,
        audit_path: Path | None = None,
    ) -> None:
        self.audit_path = audit_path
        self.audit_warning: str | None = None  # set when the last audit append failed
        self.sys_root = sys_root
        self.proc_root = proc_root
        self._topology_reader = TopologyReader(sys_root=sys_root, proc_root=proc_root)
        self._scanner = ProcessScanner(proc_root=proc_root)
        self._privileges = privileges
        self._topology: Topology | None = None

    @property
    def is_live(self) -> bool:
        """Only the real /proc can be migrated; a recorded tree is read-only."""
        return self.proc_root == Path("/proc")

    def topology(self) -> Topology:
        self._topology = self._topology_reader.read()
        return self._topology

    def _current_topology(self) -> Topology:
        return self._topology if self._topology is not None else self.topology()

    def scan(
        self, previous: ProcessScan | None = None, pids: Iterable[int] | None = None
    ) -> ProcessScan:
        return self._scanner.scan(previous, pids=pids, topology=self._current_topology())

    def numa_maps(self, pid: int) -> NumaMaps:
        return self._scanner.numa_maps(pid)

    def privileges(self) -> Privileges:
        if self._privileges is None:
            self._privileges = read_privileges()
        return self._privileges

    def plan(self, pid: int, from_nodes: Iterable[int], to_nodes: Iterable[int]) -> MigrationPlan:
        topology = self.topology()
        try:
            process = self._scanner.read_process(pid, topology=topology)
        except ProcessGone as exc:
            raise MigrationRefused(str(exc)) from exc
        plan = migration.validate(
            pid,
            frozenset(from_nodes),
            frozenset(to_nodes),
            topology,
            process,
            self.privileges(),
            proc_root=self.proc_root,
        )
        return dataclasses.replace(plan, process_name=process.name)

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        if not self.is_live:
            raise MigrationRefused("this is a recorded snapshot of a machine: nothing can be moved")
        result = migration.run_migration(plan, on_progress=on_progress, scanner=self._scanner)
        # Pages moved from outside leave the process's fault counters alone, so the
        # scanner's change signal cannot see it: forget what we knew of this pid.
        self._scanner.invalidate(plan.pid)
        self.audit_warning = audit.append(
            audit.entry_for(result, plan.process_name), self.audit_path
        )
        return result
