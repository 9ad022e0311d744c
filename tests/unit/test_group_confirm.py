"""`migrate --cgroup` checks the group before it asks the operator to confirm the move.

A group that cannot be moved (unknown, outside the mount, cgroup v1, the root) is
refused at once, on record in the audit log, instead of after the operator said yes;
a movable one is named in the question with its member count. Nothing here moves
memory: the tree is a recorded two-node /sys with a cgroup v2 tree of its own, and
every answer is "no" or the refusal comes first.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from numatui.cli import EXIT_FAILED, main
from numatui.kernel.cgroups import CgroupError
from numatui.kernel.live import LiveSource
from tests.tooling.terminal_input import TerminalInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# What an operator can type: control characters and bidi overrides are refused as a path
# (tested below); markup and shell syntax are not, and must reach the terminal as plain text.
HOSTILE = "[bold red]evil[/]$(reboot);`id`.service"


@pytest.fixture
def live_tree(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """The options of a live source (the real /proc) over a recorded two-node /sys whose
    cgroup v2 tree holds this test process in a hostile-named service; its audit log."""
    sys_root = tmp_path / "sys"
    shutil.copytree(FIXTURES / "two_nodes" / "sys", sys_root, symlinks=True)
    cgroup_root = sys_root / "fs" / "cgroup"
    group = cgroup_root / "system.slice" / HOSTILE
    group.mkdir(parents=True)
    (cgroup_root / "cgroup.controllers").write_text("cpu memory\n")
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (group / "cgroup.controllers").write_text("cpu memory\n")
    (group / "memory.numa_stat").write_text("anon N0=4096 N1=0\n")
    trail = tmp_path / "trail" / "audit.jsonl"
    trail.parent.mkdir(mode=0o700)
    return ["--sys-root", str(sys_root), "--audit-log", str(trail)], cgroup_root, trail


def _entries(trail: Path) -> list[dict[str, object]]:
    if not trail.exists():
        return []
    return [json.loads(line) for line in trail.read_text().splitlines()]


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/system.slice/none.service", "no such cgroup"),
        ("../../etc", "inside the cgroup mount"),
        ("/", "root cgroup"),
        ("/system.slice/evil\x1b]52;c;aGk=\x07.service", "no control characters"),
        ("/system.slice/evil\u202ecod.exe", "no control characters"),
    ],
)
def test_a_group_that_cannot_move_is_refused_before_the_question(
    live_tree: tuple[list[str], Path, Path],
    path: str,
    said: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv, _, trail = live_tree
    monkeypatch.setattr(sys, "stdin", TerminalInput("y\n"))  # would say yes if asked
    assert main([*argv, "migrate", "--cgroup", path, "0", "1"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert said in err and "nothing was moved" in err
    assert "[y/N]" not in err and "confirmation" not in err
    assert "\x1b" not in err and "\u202e" not in err  # a hostile path is not echoed raw
    (entry,) = _entries(trail)
    assert entry["outcome"] == "failed" and entry["bytes_moved"] == 0
    assert "nothing was moved" in str(entry["error"])


def test_a_movable_group_is_named_with_its_members_in_the_question(
    live_tree: tuple[list[str], Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv, _, trail = live_tree
    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    move = ["migrate", "--cgroup", f"/system.slice/{HOSTILE}", "0", "1"]
    assert main([*argv, *move]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"Move every process of cgroup /system.slice/{HOSTILE} (1 now, and any" in err
    assert "that join during the move)? [y/N]" in err
    assert _entries(trail) == []  # asked, refused by the operator: nothing attempted

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal, no --yes
    assert main([*argv, *move]) == EXIT_FAILED
    assert "refusing to migrate without confirmation" in capsys.readouterr().err
    assert _entries(trail) == []


def test_the_check_moves_nothing_and_writes_nothing(
    live_tree: tuple[list[str], Path, Path],
) -> None:
    _, cgroup_root, trail = live_tree
    source = LiveSource(audit_path=trail, cgroup_root=cgroup_root)
    assert source.group_move_members(f"/system.slice/{HOSTILE}", {0}, {1}) == (os.getpid(),)
    with pytest.raises(CgroupError) as unknown:
        source.group_move_members("/system.slice/none.service", {0}, {1})
    assert unknown.value.code == "cgroup_not_found"
    assert not trail.exists()
    refused = source.refuse_group("/system.slice/none.service", {0}, {1}, unknown.value)
    assert refused.error_code == "cgroup_not_found" and refused.members == ()
    assert len(_entries(trail)) == 1
