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

from textual.widgets import DataTable, Static

from numatui.app import NumatuiApp
from numatui.first_read import FirstRead
from numatui.model.memory import MemoryKind, ProcessScan
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.screens.detail import PENDING, ProcessDetailScreen
from numatui.screens.processes import ProcessesScreen

from .conftest import quiet_app, settle
from .fakes import FakeSource, listed

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import numatui.app
print(json.dumps({"count": len(sys.modules), "names": sorted(sys.modules)}))
"""
# Only loaded on demand (the `?` screen, the nodes and groups views, the DataTable only
# the nodes view uses); their presence means an eager import crept back.
ON_DEMAND = (
    "markdown_it",
    "pygments",
    "numatui.screens.help",
    "textual.widgets._markdown",
    "numatui.screens.nodes",
    "numatui.screens.groups",
    "textual.widgets._data_table",
)


def test_app_import_leaves_the_other_screens_for_later() -> None:
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

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        if not self.release.wait(30):
            raise TimeoutError("the test never released the scan")
        return super().scan(previous, nodes_only=nodes_only)


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


class HeldFullScanSource(FakeSource):
    """Its list scans answer at once; a full scan (kinds split) waits for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.full_asked = threading.Event()

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        if not nodes_only:
            self.full_asked.set()
        if not nodes_only and not self.release.wait(30):
            raise TimeoutError("the test never released the full scan")
        return super().scan(previous, nodes_only=nodes_only)


async def test_the_table_comes_from_a_list_scan_and_the_kinds_follow() -> None:
    """The first scan reads bytes per node (what the table shows) and command lines (the
    filter searches them); the split by kind is read next, at once, not a refresh later."""
    source = HeldFullScanSource()
    app = quiet_app(source)  # refreshes only when asked: the full scan is not a timed one
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        for _ in range(250):
            if screen.table.row_count == listed(source):
                break
            await pilot.pause(0.02)
        assert screen.table.row_count == listed(source)
        assert app.state is not None
        assert not any(p.kinds_read for p in app.state.scan.processes if p.numa_bytes)
        assert source.calls.count("scan nodes") == 1
        # The detail view says the kinds are not read yet: never 0 or `·` for them.
        pid = screen.selected_pid
        assert pid is not None
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, ProcessDetailScreen)
        kinds = detail.query_one("#kinds", DataTable)
        for _ in range(100):
            if kinds.row_count:
                break
            await pilot.pause(0.02)
        anon = [cell.plain for cell in kinds.get_row("anon")[1:]]  # after the kind's name
        assert set(anon) == {PENDING}, anon
        everything = [cell.plain for cell in kinds.get_row("all")[1:]]
        assert PENDING not in everything and "?" not in everything
        # The full scan was asked for at once; released, it fills the kinds in.
        assert source.full_asked.wait(10)
        source.release.set()
        for _ in range(250):
            if app.state is not None and all(p.kinds_read for p in app.state.scan.processes):
                break
            await pilot.pause(0.02)
        await settle(pilot)
        cells = [c.plain for kind in MemoryKind for c in kinds.get_row(kind.value)[1:]]
        assert PENDING not in cells and any(c not in ("·", "?") for c in cells), cells
        assert source.calls.count("scan nodes") == 1  # later refreshes are full ones


class LaterReadsHeldSource(FakeSource):
    """Its first topology read answers; every later one waits for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.topology_reads = 0

    def topology(self) -> Topology:
        self.topology_reads += 1
        if self.topology_reads > 1 and not self.release.wait(30):
            raise TimeoutError("the test never released the topology")
        return super().topology()


async def test_the_first_frame_shows_nodes_read_while_textual_loaded() -> None:
    """`numatui` starts reading the nodes before it imports Textual (FirstRead): the first
    screen shows them without waiting for the app's own refresh worker."""
    source = LaterReadsHeldSource()
    first_read = FirstRead(source)
    assert first_read.wait(10) and first_read.ready() is not None
    app = NumatuiApp(source, refresh_interval=3600.0, first_read=first_read)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        await pilot.pause()
        summary = str(screen.query_one("#summary", Static).render())
        # The refresh worker is still held in its own topology read: these came first.
        assert app.state is None and source.topology_reads <= 2
        assert "2 nodes" in summary, summary
        source.release.set()
        await settle(pilot)
        assert screen.table.row_count == listed(source)


class PrivilegesDeniedSource(FakeSource):
    def privileges(self) -> Privileges:
        raise PermissionError("denied")


async def test_a_failed_first_read_leaves_the_nodes_to_the_refresh() -> None:
    source = PrivilegesDeniedSource()
    first_read = FirstRead(source)
    assert first_read.wait(10) and first_read.ready() is None
    app = NumatuiApp(source, refresh_interval=3600.0, first_read=first_read)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.first_topology is None and app.state is None
        assert app.last_error is not None and "denied" in app.last_error  # said, not swallowed


async def test_the_first_table_comes_from_the_scan_made_while_textual_loaded() -> None:
    """`numatui` also reads every process before the app mounts (FirstRead's first scan,
    `scan(beside_ui=True)` in the real source): the first refresh shows that scan, and
    only later refreshes scan again."""
    source = FakeSource()
    early_scans: list[str] = []

    def first_scan() -> ProcessScan:
        early_scans.append("scan nodes")
        return source.scan(None, nodes_only=True)

    first_read = FirstRead(source, first_scan=first_scan)  # type: ignore[arg-type]
    await _first_table(source, first_read)
    assert early_scans == ["scan nodes"]
    # The source was asked once for a list scan (the early one) and then for the
    # split by kind, which follows at once: the first refresh made no scan of its own.
    assert source.calls.count("scan nodes") == 1
    assert first_read.take_scan() is None  # handed over once


async def _first_table(source: FakeSource, first_read: FirstRead) -> None:
    """Run the app until its table lists every process of `source`."""
    app = NumatuiApp(source, refresh_interval=3600.0, first_read=first_read)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        await settle(pilot)
        assert screen.table.row_count == listed(source)


class FailingFirstScanSource(FakeSource):
    def __init__(self) -> None:
        super().__init__()
        self.first = True

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        if self.first:
            self.first = False
            raise PermissionError("the early scan failed")
        return super().scan(previous, nodes_only=nodes_only)


async def test_a_failed_early_scan_leaves_the_table_to_the_first_refresh() -> None:
    source = FailingFirstScanSource()
    first_read = FirstRead(source, first_scan=lambda: source.scan(None, nodes_only=True))  # type: ignore[arg-type]
    await _first_table(source, first_read)
    assert not source.first  # the early scan was made, and failed
    assert source.calls.count("scan nodes") == 1  # then the first refresh's own
