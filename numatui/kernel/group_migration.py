"""Moving a whole cgroup: every member process, each with its own job and verdict.

The group is read from `cgroup.procs` (thread-group leaders: threads share their
leader's memory space, so each is moved once), and read again after each round until
no new member appears, so processes forked during the move are moved too. Each member
is planned by the same rules (`migration.validate`) and moved by the same job
(`MigrationJob`) as a single process; the group's verdict over them is
`rules.group_verdict`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from numatui import rules
from numatui.errors import MigrationRefused, ProcessGone
from numatui.kernel import cgroups
from numatui.kernel.cgroups import CgroupError
from numatui.kernel.migration import MigrationJob, validate
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.groups import (
    CgroupSupport,
    GroupMember,
    GroupMigrationResult,
    GroupProgress,
    GroupProgressCallback,
    MemberStatus,
)
from numatui.model.migration import (
    MigrationError,
    MigrationOutcome,
    MigrationProgress,
    MigrationResult,
)
from numatui.model.privileges import Privileges

MAX_ROUNDS = 64
"""Reads of cgroup.procs before numatui stops looking for new members (a group that forks
faster than it can be moved would never settle)."""


class GroupMigrationJob:
    """One move of every process in the cgroup at `path` from `from_nodes` to `to_nodes`."""

    def __init__(
        self,
        path: str,
        from_nodes: frozenset[int],
        to_nodes: frozenset[int],
        *,
        scanner: ProcessScanner,
        privileges: Privileges,
        topology_reader: TopologyReader,
        cgroup_root: Path = cgroups.CGROUP_ROOT,
        stoppable: bool = False,
        sample_interval_s: float = 0.25,
    ) -> None:
        self.path = path
        self.from_nodes = from_nodes
        self.to_nodes = to_nodes
        self.scanner = scanner
        self.privileges = privileges
        self.topology_reader = topology_reader
        self.cgroup_root = cgroup_root
        self.stoppable = stoppable
        self.sample_interval_s = sample_interval_s

    def _support(self) -> CgroupSupport:
        return cgroups.read_support(self.cgroup_root, self.scanner.proc_root)

    def check(self) -> tuple[int, ...]:
        """The group's processes now, if it may be moved; else CgroupError, as `run` would
        refuse it before moving anything (a face asks for confirmation only after this)."""
        return self._movable()[1]

    def _movable(self) -> tuple[CgroupSupport, tuple[int, ...]]:
        if cgroups.safe_relative(self.path) == "":
            raise CgroupError(
                "the root cgroup holds every process not in another group: move a group "
                "below it, or processes one by one",
                "cgroup_root",
            )
        support = self._support()
        if not support.unified:
            raise CgroupError(
                f"{support.missing}; numatui moves groups on cgroup v2 only (move the "
                "processes one by one)",
                "cgroup_v2_missing",
            )
        return support, cgroups.group_procs(self.path, self.cgroup_root)

    def _still_member(self, pid: int) -> bool:
        parsed = cgroups.read_proc_cgroup(pid, self.scanner.proc_root)
        return parsed is not None and parsed.unified == self.path

    def run(
        self,
        on_progress: GroupProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GroupMigrationResult:
        """Raises CgroupError when the path is unsafe or unknown before anything moved;
        once members have been moved every problem is in the result."""
        name = cgroups.describe(self.path)
        support, first = self._movable()
        stat_before, missing = cgroups.group_numa_stat(self.path, support, self.cgroup_root)
        started = time.monotonic()
        members: list[GroupMember] = []
        seen: set[int] = set()
        error: MigrationError | None = None
        error_code = ""
        rounds = 1
        moved_so_far = 0
        pending = list(first)
        joined = False
        while True:
            for index, pid in enumerate(pending):
                seen.add(pid)
                if cancel is not None and cancel.is_set():
                    members.append(
                        GroupMember(
                            pid,
                            "",
                            MemberStatus.SKIPPED,
                            message="stopped by the user before its turn",
                            joined_during_move=joined,
                        )
                    )
                    continue
                member = self._move_one(
                    pid,
                    joined,
                    on_progress,
                    cancel,
                    started,
                    done=len(members),
                    known=len(seen) + len(pending) - index - 1,
                    moved=moved_so_far,
                )
                members.append(member)
                if member.result is not None:
                    moved_so_far += member.result.bytes_moved
            if cancel is not None and cancel.is_set():
                break
            if rounds >= MAX_ROUNDS:
                error = MigrationError(
                    "",
                    f"new processes kept joining the group after {rounds} reads of "
                    "cgroup.procs: numatui stopped looking (move the group again)",
                )
                break
            try:
                now = cgroups.group_procs(self.path, self.cgroup_root)
            except CgroupError as exc:
                # It was there at the first read: gone now means removed (rmdir).
                gone = exc.code in ("cgroup_not_found", "cgroup_removed")
                error_code = "cgroup_removed" if gone else exc.code
                what = "the cgroup was removed" if gone else str(exc)
                error = MigrationError(
                    "ENOENT" if gone else "",
                    f"{what} during the move: the processes moved before that keep "
                    "their results, the others were not touched",
                )
                break
            rounds += 1
            pending = [pid for pid in now if pid not in seen]
            joined = True
            if not pending:
                break
        stat_after, missing_after = cgroups.group_numa_stat(self.path, support, self.cgroup_root)
        members_t = tuple(members)
        outcome, explanations = rules.group_verdict(
            members_t,
            self.from_nodes,
            error,
            stat_before,
            stat_after,
            missing or missing_after,
            self.privileges,
        )
        return GroupMigrationResult(
            path=self.path,
            name=name,
            from_nodes=self.from_nodes,
            to_nodes=self.to_nodes,
            outcome=outcome,
            members=members_t,
            elapsed_s=time.monotonic() - started,
            stat_before=stat_before,
            stat_after=stat_after,
            numa_stat_missing=missing or missing_after,
            error=error,
            explanations=explanations,
            rounds=rounds,
            error_code=error_code,
        )

    def _move_one(
        self,
        pid: int,
        joined: bool,
        on_progress: GroupProgressCallback | None,
        cancel: threading.Event | None,
        started: float,
        *,
        done: int,
        known: int,
        moved: int,
    ) -> GroupMember:
        topology = self.topology_reader.read()
        self.scanner.use_topology(topology)
        try:
            process = self.scanner.read_process(pid, topology=topology)
        except ProcessGone:
            return GroupMember(
                pid,
                "",
                MemberStatus.EXITED,
                message="exited before its turn",
                joined_during_move=joined,
            )
        except PermissionError:
            return GroupMember(
                pid,
                "",
                MemberStatus.REFUSED,
                message=f"cannot read /proc/{pid}/numa_maps: run numatui as root",
                code="unreadable",
                joined_during_move=joined,
            )
        if not self._still_member(pid):
            return GroupMember(
                pid,
                process.name,
                MemberStatus.SKIPPED,
                message="left the group before its turn",
                joined_during_move=joined,
            )
        try:
            plan = validate(
                pid,
                self.from_nodes,
                self.to_nodes,
                topology,
                process,
                self.privileges,
                stoppable=self.stoppable,
                proc_root=self.scanner.proc_root,
            )
        except MigrationRefused as exc:
            status = MemberStatus.EXITED if exc.errno_name == "ESRCH" else MemberStatus.REFUSED
            return GroupMember(
                pid,
                process.name,
                status,
                message=str(exc),
                code=exc.code,
                joined_during_move=joined,
            )

        def forward(sample: MigrationProgress) -> None:
            if on_progress is not None:
                on_progress(
                    GroupProgress(
                        elapsed_s=time.monotonic() - started,
                        pid=pid,
                        done=done,
                        known=known,
                        bytes_moved=moved,
                        sample=sample,
                        stoppable=sample.stoppable or self.stoppable,
                    )
                )

        job = MigrationJob(
            plan,
            scanner=self.scanner,
            privileges=self.privileges,
            topology_reader=self.topology_reader,
            sample_interval_s=self.sample_interval_s,
        )
        result = job.run(forward, cancel)
        self.scanner.invalidate(pid)
        return _member_for(pid, process.name, result, joined)


def _member_for(pid: int, name: str, result: MigrationResult, joined: bool) -> GroupMember:
    exited = result.error is not None and result.error.errno_name == "ESRCH"
    if exited and result.outcome is MigrationOutcome.FAILED:
        return GroupMember(
            pid,
            name,
            MemberStatus.EXITED,
            result,
            message=result.error.message if result.error else "",
            joined_during_move=joined,
        )
    return GroupMember(pid, name, MemberStatus.MOVED, result, joined_during_move=joined)
