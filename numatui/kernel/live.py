"""The machine as a `DataSource`: /sys, /proc and the syscalls behind one object.

The app and the CLI are handed this (or, in tests, the same class pointed at
a recorded tree), so no face ever reads a file or calls a syscall itself.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from numatui.errors import MigrationRefused, ProcessGone
from numatui.kernel import pidstate
from numatui.kernel.pid_files import hides_other_users, parent_pid
from numatui.kernel.privileges import read_privileges
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.memory import NumaMaps, ProcessScan
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology

if TYPE_CHECKING:
    # The audit trail, cgroups, drains and moves load when used: `ps` and `nodes` never
    # need them.
    from numatui.kernel.cgroups import CgroupError, GroupReader
    from numatui.kernel.group_migration import GroupMigrationJob
    from numatui.model.drain import DrainItem, DrainPlan, DrainProgress, DrainReport
    from numatui.model.groups import GroupMigrationResult, GroupProgressCallback, GroupScan
    from numatui.model.migration import (
        MigrationError,
        MigrationPlan,
        MigrationProgress,
        MigrationResult,
        Pacing,
        ProgressCallback,
    )

ProcessIdentity = tuple[int, float]
"""(pid, start time): one process for good, where a pid alone may be reused."""


class PidReuseGuard:
    """Holds a pidfd for each planned process, so a pid reused between the user's
    confirmation and the syscall is caught.

    Keyed by (pid, start time), which every plan carries from the process it was
    made for, so no later choice (stoppable or not) can make a plan miss its guard.
    At most `limit` pidfds are held (a dialog re-plans on every change, but the same
    process keeps one entry); `close` releases them all.
    """

    def __init__(self, scanner: ProcessScanner, limit: int = 64) -> None:
        self._scanner = scanner
        self._limit = limit
        self._pidfds: dict[ProcessIdentity, int | None] = {}
        self._lock = threading.Lock()  # plans come from worker threads

    @property
    def held(self) -> int:
        """How many pidfds are open now."""
        with self._lock:
            return sum(1 for fd in self._pidfds.values() if fd is not None)

    def remember(self, pid: int, start_time: float) -> None:
        key = (pid, start_time)
        with self._lock:
            if key in self._pidfds:
                return
            while len(self._pidfds) >= self._limit:
                self._close(next(iter(self._pidfds)))
            try:
                pidfd: int | None = os.pidfd_open(pid)
            except (OSError, AttributeError):
                pidfd = None  # no pidfds (Linux < 5.3), or gone already: the start time tells
            self._pidfds[key] = pidfd

    def _close(self, key: ProcessIdentity) -> None:
        pidfd = self._pidfds.pop(key, None)
        if pidfd is not None:
            os.close(pidfd)

    def close(self) -> None:
        with self._lock:
            for key in list(self._pidfds):
                self._close(key)

    def reused(self, plan: MigrationPlan) -> str | None:
        """Why the process at `plan.pid` is no longer the one planned (None when it is).

        Releases the plan's pidfd: a plan is checked once, right before it runs.
        """
        if plan.process_start_time is None:
            return None  # a plan not made from a scanned process: nothing to compare with
        key = (plan.pid, plan.process_start_time)
        with self._lock:
            pidfd = self._pidfds.pop(key, None)
        reaped = False
        if pidfd is not None:
            # A pidfd names one process for good: while it lives (zombie included), its
            # pid cannot have been handed to another one.
            try:
                signal.pidfd_send_signal(pidfd, 0)
                return None
            except ProcessLookupError:
                reaped = True  # the pid may now be anyone's
            except OSError:
                pass  # not allowed to signal it: the start time decides
            finally:
                os.close(pidfd)
        try:
            now = self._scanner.read_process(plan.pid)
        except (ProcessGone, PermissionError):
            return None  # gone: the job reports that itself, and moves nothing
        if not reaped and abs(now.start_time - key[1]) < 1e-3:
            return None  # same start tick (10 ms): the same process, as far as can be told
        return (
            f"process {plan.pid} ({plan.process_name}) exited after the migration was "
            f"confirmed, and its pid now belongs to another process ({now.name}): nothing "
            "was moved"
        )


class LiveSource:
    """Reads the running kernel (or a recorded tree under other roots)."""

    def __init__(
        self,
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        privileges: Privileges | None = None,
        audit_path: Path | None = None,
        cgroup_root: Path | None = None,
    ) -> None:
        self.audit_path = audit_path
        # The cgroup mount lives under /sys, so a recorded tree carries its own.
        self.cgroup_root = cgroup_root if cgroup_root is not None else sys_root / "fs/cgroup"
        self._group_reader: GroupReader | None = None  # made on first use (`_groups`)
        self.audit_warning: str | None = None  # set when the last audit append failed
        self.sys_root = sys_root
        self.proc_root = proc_root
        self._topology_reader = TopologyReader(sys_root=sys_root, proc_root=proc_root)
        self._scanner = ProcessScanner(proc_root=proc_root)
        self._privileges = privileges
        self._topology: Topology | None = None
        # A pid reused between the user's confirmation and the syscall must not have its
        # pages moved.
        self.guard = PidReuseGuard(self._scanner)

    def close(self) -> None:
        """Release every pidfd held for plans not run."""
        self.guard.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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
        self,
        previous: ProcessScan | None = None,
        pids: Iterable[int] | None = None,
        *,
        nodes_only: bool = False,
        cmdline: bool = True,
        one_shot: bool = False,
        beside_ui: bool = False,
    ) -> ProcessScan:
        """`nodes_only`: bytes per node only, for a process list; `cmdline`: read command
        lines; `one_shot`: a command's only scan, on more threads; `beside_ui`: read by
        helper processes while the UI loads (see `ProcessScanner.scan`)."""
        return self._scanner.scan(
            previous,
            pids=pids,
            topology=self._current_topology(),
            nodes_only=nodes_only,
            cmdline=cmdline,
            one_shot=one_shot,
            beside_ui=beside_ui,
        )

    def numa_maps(self, pid: int) -> NumaMaps:
        return self._scanner.numa_maps(pid)

    def privileges(self) -> Privileges:
        if self._privileges is None:
            privileges = read_privileges()
            hidden = not privileges.cap_sys_ptrace and hides_other_users(self.proc_root)
            self._privileges = dataclasses.replace(privileges, processes_hidden=hidden)
        return self._privileges

    def plan(
        self,
        pid: int,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        *,
        stoppable: bool = False,
        pacing: Pacing | None = None,
    ) -> MigrationPlan:
        topology = self.topology()
        try:
            process = self._scanner.read_process(pid, topology=topology)
        except (ProcessGone, PermissionError) as exc:
            # Truthful words: a zombie "has exited", a pid hidden by hidepid says so.
            why = self.describe_pid(pid)
            from numatui.model.findings import RuleCode

            raise MigrationRefused(
                f"process {pid} {why}" if why else str(exc),
                code=str(RuleCode.PROCESS_GONE),
                errno_name="ESRCH",
            ) from exc
        from numatui.kernel import migration  # loads only for a plan: not for `ps` or `nodes`

        plan = migration.validate(
            pid,
            frozenset(from_nodes),
            frozenset(to_nodes),
            topology,
            process,
            self.privileges(),
            stoppable=stoppable,
            pacing=pacing,
            proc_root=self.proc_root,
        )
        self.guard.remember(pid, process.start_time)
        return plan

    def own_lineage(self) -> frozenset[int]:
        """This process and its ancestors (the shell, sudo, ...): their command lines hold
        numatui's own arguments, so `ps --match TEXT` would always list them. Empty for a
        recorded tree, whose pids are not this machine's."""
        if not self.is_live:
            return frozenset()
        lineage: list[int] = []
        pid: int | None = os.getpid()
        while pid is not None and pid > 1 and pid not in lineage and len(lineage) < 64:
            lineage.append(pid)
            pid = parent_pid(str(self.proc_root), pid)
        return frozenset(lineage)

    def describe_pid(self, pid: int) -> str | None:
        """Why `pid` cannot be shown or moved, after "process PID " (None: nothing stops it)."""
        return pidstate.describe_pid(pid, self.proc_root, self.privileges().processes_hidden)

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        from numatui.kernel import audit
        from numatui.model.migration import AuditStatus, MigrationError, MigrationResult

        if not self.is_live:
            raise MigrationRefused("this is a recorded snapshot of a machine: nothing can be moved")
        # The attempt is on record before the syscall, or nothing happens (fail closed).
        log_path = self.audit_path or audit.default_log_path()
        entry_id = audit.new_id()
        try:
            audit.record(audit.attempt_entry(plan, entry_id), log_path)
        except audit.AuditError as exc:
            self.audit_warning = f"could not write the audit log: {exc}"
            refused = MigrationResult.unchanged(
                plan,
                MigrationError(
                    "", f"refused: the attempt could not be recorded in the audit log: {exc}"
                ),
            )
            return dataclasses.replace(refused, audit=AuditStatus(str(log_path), False, str(exc)))
        result = self._run_audited(plan, on_progress, cancel, log_path, entry_id)
        status = audit.try_record(audit.entry_for(result, plan.process_name, entry_id), log_path)
        self.audit_warning = (
            None if status.written else f"could not write the audit log: {status.reason}"
        )
        return dataclasses.replace(result, audit=status)

    def _run_audited(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
        log_path: Path,
        entry_id: str,
    ) -> MigrationResult:
        from numatui.kernel import audit, migration
        from numatui.model.migration import MigrationError, MigrationResult

        reused = self.guard.reused(plan)
        if reused is not None:
            return MigrationResult.unchanged(plan, MigrationError("ESRCH", reused))
        try:
            result = migration.run_migration(
                plan,
                on_progress=on_progress,
                scanner=self._scanner,
                privileges=self.privileges(),
                topology_reader=self._topology_reader,
                cancel=cancel,
            )
        except Exception as exc:
            # Still an attempt the operator must be able to find afterwards.
            crashed = MigrationResult.unchanged(
                plan, MigrationError("", f"numatui failed during the migration: {exc!r}")
            )
            status = audit.try_record(
                audit.entry_for(crashed, plan.process_name, entry_id), log_path
            )
            self.audit_warning = None if status.written else status.reason
            raise
        # Pages moved from outside leave the process's fault counters alone, so the
        # scanner's change signal cannot see it: forget what we knew of this pid.
        self._scanner.invalidate(plan.pid)
        return result

    # ------------------------------------------------------------ groups (cgroups)

    def groups(self, scan: ProcessScan | None = None) -> GroupScan:
        """Every cgroup with processes, from `scan` (or a new scan)."""
        return self._groups().read(scan if scan is not None else self.scan())

    def _groups(self) -> GroupReader:
        if self._group_reader is None:
            from numatui.kernel.cgroups import GroupReader

            self._group_reader = GroupReader(proc_root=self.proc_root, cgroup_root=self.cgroup_root)
        return self._group_reader

    def group_path(self, text: str) -> str:
        """An operator's cgroup path as the kernel writes it; CgroupError when unsafe."""
        from numatui.kernel import cgroups

        return cgroups.normalise_user_path(text, self.cgroup_root)

    def group_members(self, path: str) -> tuple[int, ...]:
        """The processes in the cgroup now; CgroupError when unknown, unsafe or gone.

        On cgroup v1 the groups listed are the memory (else systemd) hierarchy's.
        """
        from numatui.kernel import cgroups

        if self._groups().support().unified:
            return cgroups.group_procs(path, self.cgroup_root)
        for hierarchy in ("memory", "systemd"):
            try:
                return cgroups.group_procs(path, self.cgroup_root / hierarchy)
            except cgroups.CgroupError as exc:
                if exc.code not in ("cgroup_not_found", "cgroup_v2_missing"):
                    raise
        raise cgroups.CgroupError(
            "no such cgroup in the cgroup v1 memory or systemd hierarchy", "cgroup_not_found"
        )

    def _group_job(
        self, path: str, sources: frozenset[int], targets: frozenset[int], stoppable: bool
    ) -> GroupMigrationJob:
        from numatui.kernel.group_migration import GroupMigrationJob  # the migration code

        return GroupMigrationJob(
            path,
            sources,
            targets,
            scanner=self._scanner,
            privileges=self.privileges(),
            topology_reader=self._topology_reader,
            cgroup_root=self.cgroup_root,
            stoppable=stoppable,
        )

    def _movable_group_path(self, text: str) -> str:
        """The operator's path as the kernel writes it, if this source may move anything;
        CgroupError otherwise."""
        from numatui.kernel import cgroups

        path = self.group_path(text)
        if not self.is_live:
            raise cgroups.CgroupError(
                "this is a recorded snapshot of a machine: nothing can be moved", "recorded"
            )
        return path

    def group_move_members(
        self, text: str, from_nodes: Iterable[int], to_nodes: Iterable[int]
    ) -> tuple[int, ...]:
        """The processes a group move would start with, asked before an operator is asked
        to confirm it; CgroupError when `migrate_group` would refuse the group (unsafe or
        unknown path, cgroup v1, the root group, a recorded machine). Moves nothing."""
        path = self._movable_group_path(text)
        job = self._group_job(path, frozenset(from_nodes), frozenset(to_nodes), False)
        return job.check()

    def refuse_group(
        self,
        text: str,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        error: CgroupError,
    ) -> GroupMigrationResult:
        """A group move refused before it started (`group_move_members` said why): on record
        in the audit log as `migrate_group`'s own refusals are."""
        from numatui.kernel import audit

        result = _failed_group(text, frozenset(from_nodes), frozenset(to_nodes), error)
        log_path = self.audit_path or audit.default_log_path()
        self.audit_warning = audit.append(audit.group_entry_for(result), log_path)
        return result

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
        """Move every process of the cgroup (blocking); one audit line for the whole move.

        Never raises for a bad path or a kernel error: the result's `error` says.
        """
        from numatui.kernel import audit, cgroups
        from numatui.model.migration import MigrationError

        sources, targets = frozenset(from_nodes), frozenset(to_nodes)
        log_path = self.audit_path or audit.default_log_path()
        entry_id = audit.new_id()
        try:
            path = self._movable_group_path(path)
            # The attempt is on record before anything moves, or nothing moves (fail closed).
            attempt = _failed_group(path, sources, targets, None)
            try:
                audit.record(audit.group_entry_for(attempt, entry_id, "attempt"), log_path)
            except audit.AuditError as exc:
                self.audit_warning = f"could not write the audit log: {exc}"
                refusal = MigrationError(
                    "", f"refused: the attempt could not be recorded in the audit log: {exc}"
                )
                return _failed_group(path, sources, targets, refusal, "audit_unwritable")
            job = self._group_job(path, sources, targets, stoppable)
            result = job.run(on_progress, cancel)
        except cgroups.CgroupError as exc:
            result = _failed_group(path, sources, targets, exc)
        except Exception as exc:
            crashed = MigrationError("", f"numatui failed during the group move: {exc!r}")
            failure = _failed_group(path, sources, targets, crashed)
            self.audit_warning = audit.append(audit.group_entry_for(failure, entry_id), log_path)
            raise
        self.audit_warning = audit.append(audit.group_entry_for(result, entry_id), log_path)
        return result

    # ------------------------------------------------------------ draining a node

    def plan_drain(self, node: int, pacing: Pacing | None = None) -> DrainPlan:
        """Every process with memory on `node` and where it would go (the dry run).

        A refused drain (no such node, the only memory node) is audited here: the
        operator asked for it, and nothing was done.
        """
        from numatui.kernel import audit, drain  # the migration code: not for `ps` or `nodes`

        topology = self.topology()
        plan = drain.plan_drain(
            node,
            topology=topology,
            scanner=self._scanner,
            privileges=self.privileges(),
            pacing=pacing,
            proc_root=self.proc_root,
        )
        for item in plan.items:
            if item.plan is not None and item.plan.process_start_time is not None:
                self.guard.remember(item.pid, item.plan.process_start_time)
        if plan.refusal is not None:
            self.audit_warning = audit.append(
                audit.drain_refusal_entry(node, plan.refusal.message), self.audit_path
            )
        return plan

    def drain(
        self,
        plan: DrainPlan,
        on_progress: Callable[[DrainProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DrainReport:
        """Run a drain plan: each process as `migrate` runs one (guard, job, audit entries).

        The drain as a whole is on record too: an attempt entry before anything moves
        (MigrationRefused, nothing moved, when it cannot be written) and its outcome
        after, with the same id.
        """
        from numatui.kernel import audit, drain  # the migration code: not for `ps` or `nodes`

        if not self.is_live:
            raise MigrationRefused("this is a recorded snapshot of a machine: nothing can be moved")
        if plan.refusal is not None:
            raise MigrationRefused(plan.refusal.message, code=str(plan.refusal.code))
        log_path = self.audit_path or audit.default_log_path()
        entry_id = audit.new_id()
        try:
            audit.record(audit.drain_attempt_entry(plan, entry_id), log_path)
        except audit.AuditError as exc:
            self.audit_warning = f"could not write the audit log: {exc}"
            raise MigrationRefused(
                f"the drain's attempt could not be recorded in the audit log: {exc}; "
                "nothing was moved",
                code="audit_unwritable",
            ) from None

        def run_one(
            item: DrainItem,
            sample: Callable[[MigrationProgress], None],
            stop: threading.Event | None,
        ) -> MigrationResult:
            assert item.plan is not None  # run_drain runs planned items only
            return self.migrate(item.plan, sample, stop)

        def bytes_on_node_now(pid: int) -> int | None:
            try:
                return self._scanner.node_pages(pid).get(plan.node, 0)
            except (ProcessGone, PermissionError):
                return None

        try:
            report = drain.run_drain(
                plan,
                run_one,
                topology_reader=self._topology_reader,
                on_progress=on_progress,
                cancel=cancel,
                bytes_on_node_now=bytes_on_node_now,
            )
        except Exception as exc:
            status = audit.try_record(
                audit.drain_outcome_entry(
                    plan, entry_id, None, f"numatui failed during the drain: {exc!r}"
                ),
                log_path,
            )
            self.audit_warning = None if status.written else status.reason
            raise
        status = audit.try_record(audit.drain_outcome_entry(plan, entry_id, report), log_path)
        # A process's own entry that could not be written keeps its warning.
        if not status.written:
            self.audit_warning = f"could not write the audit log: {status.reason}"
        return report


def _failed_group(
    path: str,
    sources: frozenset[int],
    targets: frozenset[int],
    error: MigrationError | CgroupError | None,
    code: str = "",
) -> GroupMigrationResult:
    """A group move that moved nothing: refused (a CgroupError says why, with its code),
    or its audit record before it starts (`error` None)."""
    from numatui.kernel import cgroups
    from numatui.model.groups import GroupMigrationResult
    from numatui.model.migration import MigrationError, MigrationOutcome

    if isinstance(error, cgroups.CgroupError):
        code = error.code
        error = MigrationError("", f"{error}: nothing was moved")
    return GroupMigrationResult(
        path=path,
        name=cgroups.describe(path),
        from_nodes=sources,
        to_nodes=targets,
        outcome=MigrationOutcome.FAILED,
        members=(),
        elapsed_s=0.0,
        error=error if error is not None else MigrationError("", ""),
        error_code=code,
    )
