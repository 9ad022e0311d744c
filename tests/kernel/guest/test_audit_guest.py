"""The audit trail of a real migration as root, with the environment `sudo -E` leaves.

Another user (uid 65534) owns the directory that HOME and XDG_STATE_HOME point
to, and has planted `numatui/audit.jsonl` there as a symlink to a root-only
file. numatui, run as root, must move the pages, leave that file untouched,
create nothing in the other user's directory, and write the attempt and the
outcome to /var/log/numatui/audit.jsonl, where README's Security section says.
Pointed explicitly at the planted symlink, it must refuse and move nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tooling.workload import Workload

pytestmark = [pytest.mark.guest, pytest.mark.two_nodes]

REPO = Path(__file__).resolve().parents[3]
NOBODY = 65534
SIZE_MIB = 16
ROOT_LOG = Path("/var/log/numatui/audit.jsonl")


@pytest.fixture
def planted() -> Iterator[tuple[Path, Path]]:
    """(the other user's state home, the root-only victim file its symlink points to)."""
    # /home and /etc are the guest's writable overlays (the rwdir /tmp may not chown).
    victim = Path(tempfile.mkstemp(prefix="numatui-victim-", dir="/etc")[1])
    victim.write_text("root only: must never change\n")
    victim.chmod(0o600)
    home = Path(tempfile.mkdtemp(prefix="numatui-other-", dir="/home"))
    state = home / ".local" / "state"
    (state / "numatui").mkdir(parents=True)
    (state / "numatui" / "audit.jsonl").symlink_to(victim)
    for d in (home, home / ".local", state, state / "numatui"):
        os.chown(d, NOBODY, NOBODY)
    os.lchown(state / "numatui" / "audit.jsonl", NOBODY, NOBODY)
    yield home, victim
    shutil.rmtree(home)
    victim.unlink()


def tree(home: Path) -> list[tuple[str, int, bool]]:
    return sorted(
        (str(p.relative_to(home)), p.lstat().st_uid, p.is_symlink()) for p in home.rglob("*")
    )


def numatui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "numatui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )


def test_root_under_sudo_e_writes_its_own_trail_never_through_a_planted_symlink(
    planted: tuple[Path, Path],
    workload: Callable[..., Workload],
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    assert os.geteuid() == 0, "the guest runs as root"
    home, victim = planted
    before_tree = tree(home)
    work = workload(kind="private", size_mib=SIZE_MIB, node=0, cpu=0)
    start, size = work.info["start"], SIZE_MIB << 20
    assert vma_bytes_per_node(work.pid, start) == {0: size}

    env = {k: v for k, v in os.environ.items() if k != "NUMATUI_AUDIT_LOG"}
    env.update(
        PYTHONPATH=str(REPO),
        HOME=str(home),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        SUDO_USER="nobody",
    )
    done = numatui("migrate", str(work.pid), "0", "1", "--yes", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "all moved", report
    assert report["audit"] == {"path": str(ROOT_LOG), "written": True, "reason": None}
    assert vma_bytes_per_node(work.pid, start) == {1: size}
    assert work.checksum() == work.info["checksum"]

    # The victim is untouched; the other user's directory holds exactly what it held.
    assert victim.read_text() == "root only: must never change\n"
    assert tree(home) == before_tree
    # The entry is where the README says, private to root, attempt then outcome.
    assert ROOT_LOG.parent.stat().st_mode & 0o777 == 0o700
    assert ROOT_LOG.stat().st_mode & 0o777 == 0o600 and ROOT_LOG.stat().st_uid == 0
    mine = [e for e in map(json.loads, ROOT_LOG.read_text().splitlines()) if e["pid"] == work.pid]
    assert [e["phase"] for e in mine] == ["attempt", "outcome"], mine
    assert mine[0]["id"] == mine[1]["id"] and mine[1]["outcome"] == "all moved"
    log_read = numatui("log", "--json", "--limit", "5", env=env)
    assert log_read.returncode == 0, log_read.stderr
    assert any(e["pid"] == work.pid for e in json.loads(log_read.stdout)["entries"])

    # Told to write through the planted symlink, root refuses to migrate at all.
    env["NUMATUI_AUDIT_LOG"] = str(home / ".local" / "state" / "numatui" / "audit.jsonl")
    done = numatui("migrate", str(work.pid), "1", "0", "--yes", "--json", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["audit"]["written"] is False, report
    assert "another user" in report["audit"]["reason"], report
    assert "could not be recorded" in report["error"]["message"], report
    assert vma_bytes_per_node(work.pid, start) == {1: size}, "pages moved without a record"
    assert victim.read_text() == "root only: must never change\n"
    assert tree(home) == before_tree
