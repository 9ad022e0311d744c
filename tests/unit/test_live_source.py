"""The live source hands the job what it was given, and guards each plan's process.

Run on this host's real /proc with the recorded 4-node /sys (a plan is possible; the
kernel then has nothing to move on a one-node host). That pages land where the plan
says is proven in the guest (tests/kernel/guest).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from numatui.kernel import migration, syscalls
from numatui.kernel.live import LiveSource
from numatui.kernel.migration import MigrationJob
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.migration import MigrationOutcome, MigrationPlan, MigrationResult
from numatui.model.privileges import Privileges
from tests.tooling.privileges import ROOT

FOUR_NODES_SYS = Path(__file__).parents[1] / "fixtures" / "four_nodes" / "sys"
USER = Privileges(uid=os.geteuid(), is_root=False, cap_sys_nice=False, cap_sys_ptrace=False)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


def _source(tmp_path: Path, privileges: Privileges | None = None) -> LiveSource:
    return LiveSource(
        sys_root=FOUR_NODES_SYS, audit_path=tmp_path / "audit.jsonl", privileges=privileges
    )


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("stoppable", [False, True], ids=["migrate_pages", "stoppable"])
def test_the_guard_catches_another_process_at_the_planned_pid_in_both_modes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleepers: list[subprocess.Popen[bytes]],
    stoppable: bool,
) -> None:
    """A plan names its process by (pid, start time): a stranger at that pid is refused,
    whatever the mode, and even if a face edited the plan after validation."""
    first = _sleeper()
    sleepers.append(first)
    source = _source(tmp_path)
    plan = source.plan(first.pid, {1}, {0}, stoppable=stoppable)
    assert plan.stoppable is stoppable and plan.process_start_time is not None
    assert source.guard.held == 1
    time.sleep(0.05)  # a later start tick
    stranger = _sleeper()
    sleepers.append(stranger)
    calls: list[MigrationPlan] = []
    monkeypatch.setattr(migration, "run_migration", lambda plan, *a, **k: calls.append(plan))
    # The stranger at the planned pid: simulated by pointing the plan at it (pid reuse
    # itself, with ns_last_pid as root, is test_safety.py's).
    moved_on = dataclasses.replace(plan, pid=stranger.pid, stoppable=not stoppable)
    result = source.migrate(moved_on)
    assert calls == []
    assert result.outcome is MigrationOutcome.FAILED
    assert result.error is not None and result.error.errno_name == "ESRCH"
    assert "pid now belongs to another process" in result.error.message
    # The planned process itself still runs, found by its pidfd, in either mode.
    monkeypatch.setattr(
        migration, "run_migration", lambda plan, *a, **k: calls.append(plan) or _done(plan)
    )
    edited = dataclasses.replace(plan, stoppable=not stoppable)
    assert source.migrate(edited).outcome is MigrationOutcome.NOTHING_TO_MOVE
    assert calls == [edited]
    assert source.guard.held == 0  # checked once, released


def _done(plan: MigrationPlan) -> MigrationResult:
    return MigrationResult(plan, MigrationOutcome.NOTHING_TO_MOVE, {}, {}, 0, 0.0)


def test_every_pidfd_is_released(tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    sleepers.extend(_sleeper() for _ in range(3))
    fds = _open_fds()
    with _source(tmp_path) as source:
        for child in sleepers:
            for _ in range(5):  # a dialog re-plans on every change: one pidfd per process
                source.plan(child.pid, {1}, {0})
                source.plan(child.pid, {1}, {0}, stoppable=True)
        assert source.guard.held == 3
        assert _open_fds() == fds + 3
    assert source.guard.held == 0
    assert _open_fds() == fds


def test_the_privileges_given_to_the_source_reach_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    child = _sleeper()
    sleepers.append(child)
    given = dataclasses.replace(USER, processes_hidden=True)  # one object, recognisable
    source = _source(tmp_path, privileges=given)
    seen: dict[str, Any] = {}

    def run_migration(plan: MigrationPlan, *args: Any, **kwargs: Any) -> MigrationResult:
        seen.update(kwargs)
        return _done(plan)

    monkeypatch.setattr(migration, "run_migration", run_migration)
    source.migrate(source.plan(child.pid, {1}, {0}))
    assert seen["privileges"] is given
    assert isinstance(seen["scanner"], ProcessScanner)
    assert isinstance(seen["topology_reader"], TopologyReader)
    assert seen["topology_reader"].sys_root == FOUR_NODES_SYS


@pytest.mark.parametrize(
    ("privileges", "flags"),
    [(ROOT, syscalls.MPOL_MF_MOVE_ALL), (USER, syscalls.MPOL_MF_MOVE)],
    ids=["cap_sys_nice", "without"],
)
def test_the_job_moves_shared_pages_only_with_the_privileges_it_was_handed(
    privileges: Privileges, flags: int, job_on_sleeper: Callable[..., MigrationJob]
) -> None:
    """The stoppable path's move_pages flags come from the privileges handed in."""
    calls: list[int] = []

    def move_pages(pid: int, pages: Any, nodes: Any, flags: int) -> list[int]:
        if nodes is not None:
            calls.append(flags)
        return [0] * len(pages)

    job = job_on_sleeper(
        stoppable=True, privileges=privileges, move_pages=move_pages, sample_interval_s=0.01
    )
    assert job.move_flags == flags
    job.run()
    assert calls and set(calls) == {flags}
