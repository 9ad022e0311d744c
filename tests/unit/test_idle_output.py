"""An idle screen writes (almost) nothing to the terminal; a change still shows.

The real app runs in a real pseudo-terminal against a copy of a recorded
/sys,/proc tree (`--sys-root`, `--proc-root`), so nothing changes between
refreshes. Every byte the app writes is counted: over SSH, a screen that
redraws unchanged data every refresh is felt (issue 12 measured 24.6 KB/s on
an idle process screen before).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from numatui.units import human_bytes
from tests.tooling.pty_app import Terminal, app_terminal

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "four_nodes"

IDLE_LIMIT_BYTES_PER_S = 1024
MEASURE_S = 10.0
"""Five refreshes at the app's 2 s interval."""
SETTLE_S = 3.0
"""After a screen first shows: its late parts (mappings, groups) are read by workers."""


@pytest.fixture
def terminal(tree: Path, tmp_path: Path) -> Iterator[Terminal]:
    with app_terminal(tree, tmp_path / "audit.jsonl") as terminal:
        yield terminal


def idle_bytes_per_s(terminal: Terminal) -> float:
    return terminal.idle_bytes_per_s(SETTLE_S, MEASURE_S)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the recorded tree this test may change."""
    copy = tmp_path / "tree"
    shutil.copytree(FIXTURE, copy)
    return copy


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
        rates[screen] = idle_bytes_per_s(terminal)
        report = ", ".join(f"{screen} {rate:.0f}" for screen, rate in rates.items())
        assert rates[screen] < IDLE_LIMIT_BYTES_PER_S, f"bytes/s written while idle: {report}"


@pytest.mark.timeout(180)
def test_a_change_still_shows_on_an_idle_screen(terminal: Terminal, tree: Path) -> None:
    assert idle_bytes_per_s(terminal) < IDLE_LIMIT_BYTES_PER_S
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
