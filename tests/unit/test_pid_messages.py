"""Truthful small messages about a pid, on real processes of each kind.

A kernel thread, a zombie, a pid hidden by hidepid (a proc instance mounted
for the test, read as uid 65534) and a live process each get their own words.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from numatui.cli import EXIT_FAILED, main
from numatui.kernel.pid_files import PF_KTHREAD, parse_stat
from numatui.kernel.pidstate import describe_pid

ROOT = Path(__file__).resolve().parents[2]


def a_kernel_thread() -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = parse_stat((entry / "stat").read_bytes())
            except OSError:
                continue
            if stat is not None and stat.flags & PF_KTHREAD:
                return int(entry.name)
    pytest.skip("no kernel thread is visible here (a pid namespace without kthreadd)")


@pytest.fixture
def zombie() -> Iterator[int]:
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 30
    while (Path(f"/proc/{child.pid}/stat").read_bytes().split(b") ")[1][:1]) != b"Z":
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    yield child.pid
    child.wait()


def test_a_kernel_thread_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    pid = a_kernel_thread()
    assert describe_pid(pid) == "is a kernel thread: it has no user memory to show or move"
    assert main(["ps", "--pid", str(pid)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"process {pid} is a kernel thread: it has no user memory to show or move" in err
    assert "does not exist" not in err


def test_a_zombie_has_exited(zombie: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert describe_pid(zombie) == "has exited"
    assert main(["ps", "--pid", str(zombie)]) == EXIT_FAILED
    assert f"process {zombie} has exited" in capsys.readouterr().err
    args = ["--audit-log", "/nonexistent/never-written", "migrate", str(zombie), "0", "0", "--yes"]
    assert main(args) == EXIT_FAILED
    assert f"refused: process {zombie} has exited" in capsys.readouterr().err


def test_a_missing_pid_does_not_exist_and_a_live_one_is_fine() -> None:
    assert describe_pid(4194304) == "does not exist"
    assert describe_pid(os.getpid()) is None


PROBE = """
import sys
from pathlib import Path
from numatui.kernel.pidstate import describe_pid
print(describe_pid(int(sys.argv[1]), Path(sys.argv[2]), hidepid=sys.argv[3] == "1"))
"""


@pytest.fixture
def hidepid_proc() -> Iterator[object]:
    if os.geteuid() != 0:
        pytest.skip("mounting a proc instance with hidepid needs root")
    # Not under pytest's tmp_path: uid 65534 must be able to reach the mount point.
    top = Path(tempfile.mkdtemp(prefix="numatui-hidepid-"))
    top.chmod(0o755)
    mounts: list[Path] = []

    def mount(option: str) -> Path:
        where = top / f"proc-{option}"
        where.mkdir()
        where.chmod(0o755)
        done = subprocess.run(
            ["mount", "-t", "proc", "-o", f"hidepid={option}", "proc", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount proc with hidepid here: {done.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", str(where)], timeout=30, check=True)
        where.rmdir()
    top.rmdir()


def as_nobody(pid: int, proc: Path, hidepid: bool) -> str:
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    done = subprocess.run(
        [
            *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"),
            *(sys.executable, "-c", PROBE, str(pid), str(proc), "1" if hidepid else "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_pid_hidden_by_hidepid_says_so(hidepid_proc: object) -> None:
    me = os.getpid()  # root's: other users may not look at it
    noaccess = hidepid_proc("1")  # type: ignore[operator]
    assert "hidden from this user by /proc's hidepid" in as_nobody(me, noaccess, True)
    # On the plain /proc the same pid is visible: only its memory map is closed.
    assert "may not read: run as root" in as_nobody(me, Path("/proc"), False)
    invisible = hidepid_proc("2")  # type: ignore[operator]
    assert "hidepid hides it" in as_nobody(me, invisible, True)


def test_another_users_memory_map_asks_for_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a process of another user: run as root")
    assert "this user may not read: run as root" in as_nobody(os.getpid(), Path("/proc"), False)


def test_plural_of_unreadable_processes_is_right(capsys: pytest.CaptureFixture[str]) -> None:
    from numatui import cli

    assert cli._plural(1, "process is", "processes are") == "1 process is"
    assert cli._plural(2, "process is", "processes are") == "2 processes are"
    assert cli._plural(0, "line", "lines") == "0 lines"
