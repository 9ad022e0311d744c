"""Start-up cost: what `numatui` imports before its first paint.

In the multi-node TCG guest every module is a few 9p round trips: the Help screen's
Markdown widget alone (markdown-it, pygments, ~110 modules) was a quarter of the app's
imports and about 5 s of a 19 s start. It must load on the first `?`, not at start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from textual.widgets import Static

from numatui.model import ProcessScan
from numatui.screens.processes import ProcessesScreen

from .conftest import quiet_app, settle
from .fakes import FakeSource, listed

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import numatui.app
print(json.dumps({"count": len(sys.modules), "names": sorted(sys.modules)}))
"""
# Only loaded on demand (the `?` screen); their presence means an eager import crept back.
ON_DEMAND = ("markdown_it", "pygments", "numatui.screens.help", "textual.widgets._markdown")


def test_app_import_leaves_the_help_screen_for_later() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout)
    eager = [
        name for name in loaded["names"] if name.split(".")[0] in ON_DEMAND or name in ON_DEMAND
    ]
    assert not eager, f"imported at start-up: {eager}"
    print(f"\nnumatui.app start-up imports {loaded['count']} modules")


class SlowScanSource(FakeSource):
    """The first scan waits for the test, as a full scan of a big machine takes seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def scan(self, previous: ProcessScan | None = None) -> ProcessScan:
        if not self.release.wait(30):
            raise TimeoutError("the test never released the scan")
        return super().scan(previous)


async def test_nodes_show_while_the_first_scan_runs() -> None:
    source = SlowScanSource()
    app = quiet_app(source)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        for _ in range(200):
            if "2 nodes" in str(screen.query_one("#summary", Static).render()):
                break
            await pilot.pause(0.02)
        assert "2 nodes" in str(screen.query_one("#summary", Static).render())
        assert "reading" in str(screen.query_one("#status", Static).render())
        assert screen.table.row_count == 0 and app.state is None
        source.release.set()
        await settle(pilot)
        assert screen.table.row_count == listed(source)
        assert "reading" not in str(screen.query_one("#status", Static).render())
