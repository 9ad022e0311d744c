"""The real app on the far side of a real pseudo-terminal, for tests of what it writes
and how it behaves when its terminal changes or goes away."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")


def text_of(output: bytes) -> str:
    """What the bytes say without their escape sequences."""
    return _ESCAPES.sub(b"", output).decode(errors="replace")


@dataclass
class Terminal:
    """The app on the far side of a pseudo-terminal of 80x24."""

    process: subprocess.Popen[bytes]
    master: int
    open: bool = True  # False once the test hung the terminal up (`hang_up`)

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

    def hang_up(self) -> None:
        """Close the terminal's master side: the app's terminal is gone. The app runs in a
        session of its own with no controlling terminal, so no SIGHUP is sent."""
        os.close(self.master)
        self.open = False

    def idle_bytes_per_s(self, settle_s: float, measure_s: float) -> float:
        self.read(settle_s)
        return len(self.read(measure_s)) / measure_s


@contextmanager
def app_terminal(tree: Path, audit_log: Path) -> Iterator[Terminal]:
    """numatui over the recorded `tree`, in an 80x24 pseudo-terminal, its process list drawn."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "NUMATUI_AUDIT_LOG": str(audit_log),
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
        if terminal.open:
            os.close(master)
