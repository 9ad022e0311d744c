"""The app leaves when its terminal goes away, with or without a SIGHUP.

Without one (numatui in a session of its own, or under nohup) stdin stays at EOF,
and Textual's input thread reads that EOF in a loop: before the app watched for
it, such a process ran on at 60-90 % of a core until killed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from numatui.terminal_watch import terminal_gone
from tests.tooling.pty_app import app_terminal

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "four_nodes"


def test_a_live_terminal_is_not_gone_and_a_hung_up_one_is() -> None:
    master, slave = os.openpty()
    try:
        assert not terminal_gone(slave)
        os.close(master)
        assert terminal_gone(slave)
    finally:
        os.close(slave)


def test_what_never_was_a_terminal_is_not_gone() -> None:
    read_end, write_end = os.pipe()
    try:
        assert not terminal_gone(read_end)
        with open(os.devnull, "rb") as null:
            assert not terminal_gone(null.fileno())
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.timeout(180)
def test_the_app_leaves_when_its_terminal_hangs_up_without_a_signal(tmp_path: Path) -> None:
    with app_terminal(FIXTURE, tmp_path / "audit.jsonl") as terminal:
        terminal.hang_up()
        try:
            code = terminal.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cpu = os.popen(f"ps -o pcpu= -p {terminal.process.pid}").read().strip()
            raise AssertionError(
                f"still running 20 s after its terminal went, at {cpu} % CPU"
            ) from None
        assert code == 129, "it leaves as on SIGHUP (128 + 1)"
