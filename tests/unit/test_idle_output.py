"""An idle screen writes (almost) nothing to the terminal; a change still shows.

The real app runs in a real pseudo-terminal against a copy of a recorded
/sys,/proc tree (`--sys-root`, `--proc-root`), so nothing changes between
refreshes. Every byte the app writes is counted: over SSH, a screen that
redraws unchanged data every refresh is felt (issue 12 measured 24.6 KB/s on
an idle process screen before).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from numatui.units import human_bytes

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "four_nodes"

IDLE_LIMIT_BYTES_PER_S = 1024
MEASURE_S = 10.0
"""Five refreshes at the app's 2 s interval."""
SETTLE_S = 3.0
"""After a screen first shows: its late parts (mappings, groups) are read by workers."""

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")


def text_of(output: bytes) -> str:
    """What the bytes say without their escape sequences."""
    return _ESCAPES.sub(b"", output).decode(errors="replace")


@dataclass
class Terminal:
    """The app on the far side of a pseudo-terminal of 80x24."""

    process: subprocess.Popen[bytes]
    master: int

    def read(self, seconds: float) -> bytes:
        """Everything written in the next `seconds`."""
        chunks: list[bytes] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunks.append(os.read(self.master, 65536))
                except OSError:  # the app closed the terminal
                    break
        return b"".join(chunks)

    def read_until(self, text: str, timeout_s: float) -> bytes:
        """Output up to the first time `text` shows (escape sequences removed)."""
        seen = b""
        deadline = time.monotonic() + timeout_s
        while text not in text_of(seen):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} not shown in {timeout_s} s:\n{text_of(seen)}")
            seen += self.read(0.2)
        return seen

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def idle_bytes_per_s(self) -> float:
        self.read(SETTLE_S)
        return len(self.read(MEASURE_S)) / MEASURE_S


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the recorded tree this test may change."""
    copy = tmp_path / "tree"
    shutil.copytree(FIXTURE, copy)
    return copy


@pytest.fixture
def terminal(tree: Path, tmp_path: Path) -> Iterator[Terminal]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "NUMATUI_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    argv = [sys.executable, "-m", "numatui", "--sys-root", str(tree / "sys")]
    argv += ["--proc-root", str(tree / "proc")]
    process = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    terminal = Terminal(process, master)
    try:
        # The process list has been drawn: the first scan is done.
        terminal.read_until("processes", 120)
        yield terminal
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        os.close(master)


# In this order, one app: (keys from the screen before, text shown once this one is up).
SCREENS = {
    "processes": ("", ""),  # shown already (the fixture waits for it)
    "nodes": ("N", "Distances"),
    "groups": ("g", "CGROUP"),
    "process detail": ("p\r", "Memory per node by kind"),
    "migrate dialog": ("\x1bm", "Migrate"),
    "help": ("\x1b?", "close this help"),
}


@pytest.mark.timeout(300)
def test_an_idle_screen_writes_almost_nothing(terminal: Terminal) -> None:
    rates: dict[str, float] = {}
    for screen, (keys, shown) in SCREENS.items():
        for key in keys:
            terminal.press(key)
            time.sleep(0.3)  # an escape alone, not the start of a sequence
        terminal.read_until(shown, 60)
        rates[screen] = terminal.idle_bytes_per_s()
        report = ", ".join(f"{screen} {rate:.0f}" for screen, rate in rates.items())
        assert rates[screen] < IDLE_LIMIT_BYTES_PER_S, f"bytes/s written while idle: {report}"


@pytest.mark.timeout(180)
def test_a_change_still_shows_on_an_idle_screen(terminal: Terminal, tree: Path) -> None:
    assert terminal.idle_bytes_per_s() < IDLE_LIMIT_BYTES_PER_S
    nodes = tree / "sys/devices/system/node"
    free_kib = {
        path: int(re.search(r"MemFree:\s+(\d+) kB", path.read_text()).group(1))  # type: ignore[union-attr]
        for path in nodes.glob("node*/meminfo")
    }
    meminfo = nodes / "node0/meminfo"
    # Node 0 loses 300,000 kB of free memory: the summary's free total drops.
    free_kib[meminfo] -= 300_000
    meminfo.write_text(
        re.sub(r"MemFree:\s+\d+ kB", f"MemFree: {free_kib[meminfo]} kB", meminfo.read_text())
    )
    terminal.read_until(f"{human_bytes(sum(free_kib.values()) * 1024)} free of", 30)
