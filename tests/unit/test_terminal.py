"""The terminal is always given back: the real app in a real terminal (tmux).

tmux keeps the pane after the app exits (remain-on-exit), so its modes can be
asked afterwards: `#{alternate_on}`, `#{mouse_any_flag}`, `#{cursor_flag}` and
the exit status `#{pane_dead_status}`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

if shutil.which("tmux") is None:
    if os.environ.get("CI"):
        raise RuntimeError("tmux is required in CI for the terminal tests (apt install tmux)")
    pytest.skip(
        "tmux is not installed (apt install tmux): terminal tests skipped", allow_module_level=True
    )

LAUNCHER = """
import signal, subprocess, sys, time
# A Python handler (not SIG_IGN) so the app, after exec, gets the default back: Ctrl-C on
# the terminal reaches the app, and this launcher outlives it to report its status.
signal.signal(signal.SIGINT, lambda *_: None)
status_file = sys.argv[1]
app = subprocess.Popen(sys.argv[2:])
with open(status_file + ".pid", "w") as f:
    f.write(str(app.pid))
status = app.wait()
with open(status_file, "w") as f:
    f.write(str(status))
time.sleep(600)
"""

CRASHING_APP = """
import numatui.app
def boom(self):
    raise RuntimeError("planted crash for the test")
numatui.app.NumatuiApp.on_mount = boom
from numatui.__main__ import run
raise SystemExit(run())
"""

# Holds the import of numatui.app (Textual's load) so a test acts while the splash
# (numatui/splash.py) is the terminal's only screen, or makes that import fail.
HELD_IMPORT = """
import importlib.abc, sys, time
class Held(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "numatui.app":
            {action}
        return None
sys.meta_path.insert(0, Held())
from numatui.__main__ import run
raise SystemExit(run())
"""
SLOW_TEXTUAL = HELD_IMPORT.format(action="time.sleep(600)")
BROKEN_TEXTUAL = HELD_IMPORT.format(
    action='raise ImportError("planted import failure for the test")'
)
SPLASH_STATUS = "reading every process's memory per node"


@dataclass
class Pane:
    socket: str
    status_file: Path

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def ask(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", "t", fmt)

    def wait(self, fmt: str, want: str, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while self.ask(fmt) != want:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: {fmt} is {self.ask(fmt)!r} after {timeout_s} s\n" + self.screen()
                )
            time.sleep(0.1)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t", "-S", "-200")

    @property
    def pid(self) -> int:
        pid_file = self.status_file.with_name(self.status_file.name + ".pid")
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the launcher did not start the app"
            time.sleep(0.05)
        return int(pid_file.read_text())

    def modes(self) -> tuple[str, str, str]:
        alt, mouse, cursor = self.ask("#{alternate_on} #{mouse_any_flag} #{cursor_flag}").split()
        return alt, mouse, cursor

    def exit_status(self, timeout_s: float = 60) -> int:
        """The app's status as its parent saw it (negative: killed by that signal)."""
        deadline = time.monotonic() + timeout_s
        while not self.status_file.exists() or not self.status_file.read_text():
            if time.monotonic() > deadline:
                # Where it hangs: faulthandler (PYTHONFAULTHANDLER) prints every thread's
                # stack on SIGABRT, to the pane.
                with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                    os.kill(self.pid, signal.SIGABRT)
                time.sleep(2)
                raise AssertionError(f"the app did not exit in {timeout_s} s\n{self.screen()}")
            time.sleep(0.1)
        return int(self.status_file.read_text())


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[list[str]], Pane]]:
    sockets: list[str] = []

    def launch(argv: list[str]) -> Pane:
        socket = f"numatui-test-{secrets.token_hex(6)}"
        sockets.append(socket)
        conf = tmp_path / "tmux.conf"
        conf.write_text("set -g history-limit 5000\n")
        status_file = tmp_path / f"status-{len(sockets)}"
        env = {
            "PYTHONPATH": str(ROOT),
            "NUMATUI_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "TERM": "tmux-256color",
            "PYTHONFAULTHANDLER": "1",  # a hung app's stacks (`Pane.exit_status`)
        }
        words = [sys.executable, "-c", LAUNCHER, str(status_file), *argv]
        command = "exec env " + " ".join(
            [*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, words)]
        )
        subprocess.run(
            [
                "tmux",
                "-L",
                socket,
                "-f",
                str(conf),
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "40",
                command,
            ],
            check=True,
            timeout=30,
        )
        return Pane(socket, status_file)

    yield launch
    for socket in sockets:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)


def running_app(start: Callable[[list[str]], Pane]) -> Pane:
    pane = start([sys.executable, "-m", "numatui"])
    # The app has taken the terminal: alternate screen, mouse tracking, no cursor.
    pane.wait(
        "#{alternate_on} #{mouse_any_flag} #{cursor_flag}", "1 1 0", 120, "the app did not start"
    )
    pane.wait("#{pane_dead}", "0", 1, "the app died")
    return pane


def assert_given_back(pane: Pane) -> None:
    assert pane.modes() == ("0", "0", "1"), pane.screen()  # main screen, no mouse, cursor


def splash_up(start: Callable[[list[str]], Pane]) -> Pane:
    """numatui on its splash, Textual held at its import: the nodes and the status line
    on the alternate screen, no cursor, and no mouse tracking (Textual's driver's)."""
    pane = start([sys.executable, "-c", SLOW_TEXTUAL])
    pane.wait("#{alternate_on} #{mouse_any_flag} #{cursor_flag}", "1 0 0", 60, "no splash")
    deadline = time.monotonic() + 30
    while SPLASH_STATUS not in pane.screen():
        assert time.monotonic() < deadline, pane.screen()
        time.sleep(0.05)
    return pane


STAGES = {"app": running_app, "splash": splash_up}
"""Where a way out is taken: the running app, or its splash while Textual loads."""


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_gives_the_terminal_back_and_exits(
    start: Callable[[list[str]], Pane], signum: int, stage: str
) -> None:
    pane = STAGES[stage](start)
    os.kill(pane.pid, signum)
    assert pane.exit_status() == 128 + signum, pane.screen()
    assert_given_back(pane)
    screen = pane.screen()
    assert "Traceback" not in screen and SPLASH_STATUS not in screen, screen


@pytest.mark.parametrize("stage", STAGES)
def test_ctrl_c_exits_130_without_a_traceback(
    start: Callable[[list[str]], Pane], stage: str
) -> None:
    pane = STAGES[stage](start)
    pane.tmux("send-keys", "-t", "t", "C-c")
    assert pane.exit_status() == 130, pane.screen()
    assert_given_back(pane)
    screen = pane.screen()
    assert "Traceback" not in screen and SPLASH_STATUS not in screen, screen


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(
    start: Callable[[list[str]], Pane],
) -> None:
    # -X importtime says when numatui's CLI is loaded: Ctrl-C then lands while Textual
    # loads and the app starts (earlier, Python itself is starting: not numatui's to catch).
    pane = start([sys.executable, "-X", "importtime", "-m", "numatui"])
    deadline = time.monotonic() + 60
    while "| numatui.cli" not in pane.screen():
        assert time.monotonic() < deadline, pane.screen()
        time.sleep(0.02)
    # Textual's driver turns mouse tracking on: until then the splash alone may be up.
    assert pane.ask("#{mouse_any_flag}") == "0", "too late: the app already started"
    pane.tmux("send-keys", "-t", "t", "C-c")
    assert pane.exit_status() == 130, pane.screen()
    assert_given_back(pane)
    assert "Traceback" not in pane.screen()


CRASHES = {
    # After Textual's driver started: Textual leaves the alternate screen, then prints.
    "in the app": (CRASHING_APP, "planted crash for the test"),
    # Under the splash, before Textual loaded: the splash leaves it, then Python prints.
    "loading Textual": (BROKEN_TEXTUAL, "planted import failure for the test"),
}


@pytest.mark.parametrize("crash", CRASHES)
def test_a_crash_exits_non_zero_with_the_traceback_after_the_terminal(
    start: Callable[[list[str]], Pane], crash: str
) -> None:
    code, message = CRASHES[crash]
    pane = start([sys.executable, "-c", code])
    assert pane.exit_status(120) == 1
    assert_given_back(pane)
    screen = pane.screen()
    assert message in screen and SPLASH_STATUS not in screen, screen
    # The alternate screen is left once: a second leave would put the cursor back on
    # top of the traceback (xterm and tmux restore the cursor saved on entering).
    assert int(pane.ask("#{cursor_y}")) >= len(screen.splitlines()) - 1, screen


def test_the_splash_shows_the_nodes_before_textual_loads(
    start: Callable[[list[str]], Pane],
) -> None:
    pane = splash_up(start)
    rows = pane.tmux("capture-pane", "-p", "-t", "t").splitlines()
    assert rows[0].strip() == "numatui", rows
    assert " free of " in rows[1] and rows[1].startswith(" "), rows  # the nodes summary
    assert any(row == " " + SPLASH_STATUS + "…" for row in rows), rows
    pane.tmux("send-keys", "-t", "t", "C-c")
    assert pane.exit_status() == 130
