"""Moving a whole cgroup (v2) on the real kernel: every member, one joining during the move.

The group is made by the test under /sys/fs/cgroup with the memory controller, and its
processes are started from inside it (this process steps into the group to start them,
then back out), so their memory is charged to the group and its memory.numa_stat counts
it: a process moved into a cgroup after allocating keeps its charges where they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_migration_guest import MIB, PAGE, WorkloadFactory, assert_counts_agree

from numatui.kernel import audit
from numatui.kernel.cgroups import parse_numa_stat
from numatui.kernel.live import LiveSource
from numatui.model.groups import GroupProgress, MemberStatus
from numatui.model.migration import MigrationOutcome
from tests.tooling.workload import Workload

pytestmark = [pytest.mark.guest]

ROOT = Path("/sys/fs/cgroup")


def _own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError("no cgroup v2 line in /proc/self/cgroup")


@pytest.fixture
def group() -> Iterator[Path]:
    """A fresh cgroup v2 with the memory controller; removed (members moved out) after."""
    controllers = ROOT / "cgroup.controllers"
    if not controllers.exists():
        pytest.fail("the guest has no cgroup2 mounted at /sys/fs/cgroup")
    if "memory" not in controllers.read_text().split():
        pytest.fail("the guest's cgroup v2 has no memory controller")
    (ROOT / "cgroup.subtree_control").write_text("+memory\n")
    path = ROOT / f"numatui-group-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        if path.exists():
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (ROOT / "cgroup.procs").write_text(f"{pid}\n")
            with contextlib.suppress(OSError):
                path.rmdir()


@contextlib.contextmanager
def inside(path: Path) -> Iterator[None]:
    """This process in the group for a moment: children forked now are born in it."""
    home = ROOT / _own_cgroup().lstrip("/")
    (path / "cgroup.procs").write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        (home / "cgroup.procs").write_text(f"{os.getpid()}\n")


def start_in(path: Path, workload: WorkloadFactory, size_mib: int) -> Workload:
    with inside(path):
        return workload(kind="private", size_mib=size_mib, node=0, cpu=0)


def group_stat(path: Path) -> dict[str, dict[int, int]]:
    return parse_numa_stat((path / "memory.numa_stat").read_text())


def audit_lines(path: Path) -> list[dict[str, object]]:
    """The outcome entries of the trail; each follows its attempt, written before anything
    moved, with the same id (checked here)."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    attempts = [e["id"] for e in entries if e["phase"] == "attempt"]
    outcomes = [e for e in entries if e["phase"] == "outcome"]
    # A path refused before anything could be attempted has its outcome only.
    assert set(attempts) <= {e["id"] for e in outcomes}, entries
    return outcomes


@pytest.mark.two_nodes
def test_group_moves_every_member_and_one_that_joins_during_the_move(
    group: Path, workload: WorkloadFactory, tmp_path: Path
) -> None:
    sizes = (32, 32, 32)
    works = [start_in(group, workload, mib) for mib in sizes]
    late: list[Workload] = []
    stat_before = group_stat(group)
    # Charged to the group, on node 0: what the group's own accounts must show move.
    assert stat_before["anon"].get(0, 0) >= sum(sizes) * MIB

    def fork_a_member(progress: GroupProgress) -> None:
        if not late and progress.sample is not None:
            late.append(start_in(group, workload, 16))

    source = LiveSource(audit_path=tmp_path / "audit.jsonl")
    result = source.migrate_group("/" + group.name, {0}, {1}, fork_a_member)

    assert late, "no progress was reported during the move"
    assert result.outcome is MigrationOutcome.ALL_MOVED, (result.explanations, result.members)
    moved_pids = {m.pid for m in result.members if m.status is MemberStatus.MOVED}
    everyone = [*works, *late]
    assert moved_pids == {w.pid for w in everyone}, result.members
    assert [m.pid for m in result.members if m.joined_during_move] == [late[0].pid]
    assert result.rounds >= 2
    for member in result.members:
        assert member.result is not None
        assert member.result.outcome is MigrationOutcome.ALL_MOVED, member.result.explanations
        assert_counts_agree(member.result, member.pid)  # = numa_maps = numastat -p
    for work in everyone:
        assert work.checksum() == work.info["checksum"]
    # The group's own accounts agree: its anonymous memory left node 0 for node 1.
    after = group_stat(group)
    total = (sum(sizes) + 16) * MIB
    assert after["anon"].get(1, 0) >= total, after["anon"]
    assert after["anon"].get(0, 0) <= 4 * MIB, after["anon"]  # what this test charged itself
    assert result.stat_after is not None and result.stat_before is not None
    assert abs(result.stat_after["anon"].get(1, 0) - after["anon"].get(1, 0)) <= 64 * PAGE
    assert any("page cache" in why or "shared" in why for why in result.explanations)
    # One audit line for the whole operation, each process's result in it.
    lines = audit_lines(tmp_path / "audit.jsonl")
    assert len(lines) == 1
    entry = lines[0]
    assert entry["cgroup"] == "/" + group.name and entry["outcome"] == "all moved"
    members = entry["members"]
    assert isinstance(members, list)
    assert {m["pid"] for m in members} == {w.pid for w in everyone}
    assert all(m["outcome"] == "all moved" for m in members)
    # The reader shows an operation once: its outcome stands for the attempt with its id.
    assert [e.phase for e in audit.read(tmp_path / "audit.jsonl")] == ["outcome"]


def _assert_on_node0(work: Workload) -> None:
    line = next(
        line
        for line in Path(f"/proc/{work.pid}/numa_maps").read_text().splitlines()
        if line.startswith(f"{work.info['start']:x} ")
    )
    assert f"N0={work.info['bytes'] // PAGE}" in line, line
    assert work.checksum() == work.info["checksum"]


BAD_PATHS = [
    ("/numatui-no-such-group", "cgroup_not_found"),
    ("../../etc", "cgroup_unsafe_path"),
    ("/../../etc", "cgroup_unsafe_path"),
    ("/sys/fs/cgroup/../../../etc", "cgroup_unsafe_path"),
]


@pytest.mark.two_nodes
def test_bad_group_paths_move_nothing_and_are_audited(
    workload: WorkloadFactory, tmp_path: Path
) -> None:
    bystander = workload(kind="private", size_mib=8, node=0, cpu=0)
    log = tmp_path / "audit.jsonl"
    source = LiveSource(audit_path=log)
    for path, code in BAD_PATHS:
        result = source.migrate_group(path, {0}, {1})
        assert result.outcome is MigrationOutcome.FAILED and result.error_code == code, path
        assert result.error is not None and "nothing was moved" in result.error.message
        assert not result.members
    _assert_on_node0(bystander)
    entries = audit_lines(log)
    assert len(entries) == len(BAD_PATHS)
    assert all(e["outcome"] == "failed" and e["pid"] == 0 and "cgroup" in e for e in entries)
    # The CLI says the same: a clear message, status 1, the code in the JSON, audited.
    trail = tmp_path / "cli-trail"
    trail.mkdir(mode=0o700)
    env = {**os.environ, "NUMATUI_AUDIT_LOG": str(trail / "audit.jsonl")}
    argv = ["migrate", "--cgroup", "../../etc", "0", "1", "--yes", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "numatui", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "cgroup_unsafe_path"
    assert "refused" in done.stderr
    assert audit_lines(trail / "audit.jsonl")


def _move_out_and_remove(path: Path) -> Callable[[GroupProgress], None]:
    removed: list[bool] = []

    def callback(progress: GroupProgress) -> None:
        if removed or progress.sample is None:
            return
        for pid in (path / "cgroup.procs").read_text().split():
            (ROOT / "cgroup.procs").write_text(f"{pid}\n")
        path.rmdir()
        removed.append(True)

    return callback


@pytest.mark.two_nodes
def test_a_group_removed_during_the_move(
    group: Path, workload: WorkloadFactory, tmp_path: Path
) -> None:
    first = start_in(group, workload, 64)
    second = start_in(group, workload, 16)
    log = tmp_path / "audit.jsonl"
    result = LiveSource(audit_path=log).migrate_group(
        "/" + group.name, {0}, {1}, _move_out_and_remove(group)
    )
    assert not group.exists()
    by_pid = {m.pid: m for m in result.members}
    # The member moving when the group went away finishes; the other left the group
    # before its turn and is not touched.
    mover, other = sorted((first, second), key=lambda w: list(by_pid).index(w.pid))
    assert by_pid[mover.pid].status is MemberStatus.MOVED
    assert by_pid[other.pid].status is MemberStatus.SKIPPED
    assert "left the group" in by_pid[other.pid].message
    _assert_on_node0(other)
    assert mover.checksum() == mover.info["checksum"]
    assert result.error_code == "cgroup_removed", result
    assert result.outcome is MigrationOutcome.PARTLY_MOVED
    assert result.error is not None and "removed" in result.error.message
    (entry,) = audit_lines(log)
    assert entry["outcome"] == "partly moved" and "removed" in str(entry["error"])


@pytest.mark.two_nodes
def test_a_member_that_exits_during_the_move(
    group: Path, workload: WorkloadFactory, tmp_path: Path
) -> None:
    first = start_in(group, workload, 64)
    second = start_in(group, workload, 16)
    stopped: list[int] = []

    def stop_the_other(progress: GroupProgress) -> None:
        if stopped or progress.sample is None:
            return
        other = second if progress.pid == first.pid else first
        other.stop()
        stopped.append(other.pid)

    log = tmp_path / "audit.jsonl"
    result = LiveSource(audit_path=log).migrate_group("/" + group.name, {0}, {1}, stop_the_other)
    assert stopped
    by_pid = {m.pid: m for m in result.members}
    gone = by_pid[stopped[0]]
    assert gone.status is MemberStatus.EXITED, gone
    mover = first if stopped[0] == second.pid else second
    assert by_pid[mover.pid].status is MemberStatus.MOVED
    assert mover.checksum() == mover.info["checksum"]
    # Memory that went away with its process is no failure to move it.
    assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    assert any("exited" in why for why in result.explanations)
    (entry,) = audit_lines(log)
    members = entry["members"]
    assert isinstance(members, list)
    assert {m["status"] for m in members} == {"moved", "exited"}
