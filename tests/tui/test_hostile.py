"""Every screen and dialog on hostile processes: the text shown is the escaped text.

Over a hand-made source (each hostile name, command line and mapped path of
tests/hostile.py on one process of the fake machine, and a migration of it), and
once over the real live source with the real hostile processes running as another
user. "Shown" is read from what the app would draw: the screen's segments, as
`App.export_screenshot` renders them.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import pytest
from rich.console import Console
from rich.segment import Segment
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from numatui.app import NumatuiApp
from numatui.kernel.live import LiveSource
from numatui.model.memory import MappedRegion, MemoryKind, NumaMaps
from numatui.model.migration import MigrationError
from numatui.safe_text import visible
from numatui.screens.detail import COMMAND_SHOWN, ProcessDetailScreen
from numatui.screens.migration import MigrationScreen
from numatui.screens.processes import ProcessesScreen
from tests.hostile import CASES, HostileProcess, hostile_processes, terminal_hazards
from tests.tooling.privileges import USER

from .conftest import open_dialog, quiet_app, settle, wait_until
from .fakes import PAGE, FakeSource, MigrationScript

FOUR_NODES_SYS = Path(__file__).resolve().parents[1] / "fixtures" / "four_nodes" / "sys"
SIZE = (220, 60)


@dataclass(frozen=True)
class Hostile:
    id: str
    name: str
    cmdline: str
    path: str


FAKE_CASES = [
    Hostile(
        c.id,
        c.name.decode("utf-8", "replace"),
        " ".join(a.decode("utf-8", "replace") for a in (c.argv0, c.extra_arg.encode()) if a),
        f"/tmp/{(c.file_dir + b'/' if c.file_dir else b'').decode('utf-8', 'replace')}"
        + c.file_name.decode("utf-8", "replace"),
    )
    for c in CASES
]


class HostileSource(FakeSource):
    """The fake machine, with one process carrying the hostile strings and mapping the path."""

    hostile_pid = 100 + 3 * 37  # misplaced: has memory on both nodes, so the dialog can plan
    hostile_path = ""

    def numa_maps(self, pid: int) -> NumaMaps:
        maps = super().numa_maps(pid)
        if pid != self.hostile_pid:
            return maps
        region = MappedRegion(
            start=0x7F00_0000_0000,
            policy="default",
            kind=MemoryKind.FILE,
            path=self.hostile_path,
            node_pages=MappingProxyType({0: 4096}),
            page_size=PAGE,
        )
        return NumaMaps((region, *maps.mappings))


def hostile_source(case: Hostile, **kwargs: object) -> HostileSource:
    source = HostileSource(**kwargs)  # type: ignore[arg-type]
    source.hostile_path = case.path
    pid = source.hostile_pid
    source.processes[pid] = replace(
        source.processes[pid], name=case.name, user=case.name, cmdline=case.cmdline
    )
    return source


def drawn(app: NumatuiApp) -> list[Segment]:
    """The segments of the current screen (and the screens under it), as drawn."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True)
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    # Control segments are Textual's own cursor moves; the rest is the text drawn.
    return [segment for segment in console._record_buffer if not segment.control]


def screen_text(app: NumatuiApp) -> str:
    return "".join(segment.text for segment in drawn(app))


def assert_drawn_safely(app: NumatuiApp, *expected: str) -> None:
    """Nothing a terminal would act on is drawn; each expected text is shown as `visible`
    shows it (markup would have eaten its brackets); nothing hostile became an action."""
    segments = drawn(app)
    text = "".join(segment.text for segment in segments)
    assert terminal_hazards(text.encode()) == [], type(app.screen).__name__
    flat = text.replace("\n", "")
    for value in expected:
        assert visible(value) in flat, (type(app.screen).__name__, visible(value))
    for segment in segments:
        meta = segment.style.meta if segment.style is not None else {}
        click = str(meta.get("@click", ""))
        assert "screenshot" not in click and "app.q" not in click, (segment.text, click)


def rendered(widget: Static) -> str:
    return str(widget.render())


@pytest.mark.parametrize("case", FAKE_CASES, ids=[c.id for c in FAKE_CASES])
async def test_every_screen_shows_hostile_text_escaped(case: Hostile) -> None:
    source = hostile_source(case, script=MigrationScript(steps=2, step_s=0.1))
    app = quiet_app(source)
    pid = source.hostile_pid
    short = case.name if len(case.name) < 60 else None
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table_screen = app.screen
        assert isinstance(table_screen, ProcessesScreen)
        table_screen.select_pid(pid)
        await settle(pilot)
        table = table_screen.table
        row = table.row_keys.index(pid)
        assert table.get_column("name")[row] == visible(case.name)
        assert table.get_column("user")[row] == visible(case.name)
        assert_drawn_safely(app, *([short] if short else []))

        await pilot.press("enter")  # the detail screen
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, ProcessDetailScreen)
        identity = rendered(detail.query_one("#identity", Static))
        command = rendered(detail.query_one("#command", Static))
        assert visible(case.name) in identity
        assert visible(case.cmdline[:COMMAND_SHOWN]) in command
        if len(case.cmdline) > COMMAND_SHOWN:
            assert f"{len(case.cmdline) - COMMAND_SHOWN:,} more characters" in command
        mappings = detail.query_one("#mappings", DataTable)
        paths = [str(c) for c in mappings.get_column_at(len(mappings.columns) - 1)]
        assert visible(case.path) in paths
        assert_drawn_safely(app, case.path, *([short] if short else []))

        await pilot.press("escape")
        await settle(pilot)
        dialog = await open_dialog(pilot, pid)  # the migrate dialog
        assert rendered(dialog.query_one("#title", Static)).startswith(
            f"Migrate {visible(case.name)} ({pid})"
        )
        assert_drawn_safely(app, *([short] if short else []))

        await pilot.press("enter")  # confirm: the migration view
        await settle(pilot)
        migration = app.screen
        assert isinstance(migration, MigrationScreen)
        assert await wait_until(lambda: migration.result is not None)
        await settle(pilot)
        title = rendered(migration.query_one("#migration-title", Static))
        assert title.startswith(f"Migrating {visible(case.name)} ({pid})")
        assert_drawn_safely(app, *([short] if short else []))
        assert app.is_running and app.return_code is None


async def test_a_crash_message_and_a_failure_with_hostile_text_are_plain() -> None:
    case = next(c for c in FAKE_CASES if c.id == "click")
    error = MigrationError("ESRCH", f"process {case.name} exited \x1b[2J[/]")
    source = hostile_source(case, script=MigrationScript(error=error, explanations=("[/]\x9b",)))
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_dialog(pilot, source.hostile_pid)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MigrationScreen)
        assert await wait_until(lambda: screen.result is not None)
        await settle(pilot)
        summary = rendered(screen.query_one("#summary", Static))
        assert visible(error.message) in summary and "\\x9b" in summary
        assert_drawn_safely(app)
    source = hostile_source(case, script=MigrationScript(raise_message="[/] \x1b]0;t\x07"))
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_dialog(pilot, source.hostile_pid)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MigrationScreen)
        assert await wait_until(lambda: screen.crash is not None)
        await settle(pilot)
        assert "[/] \\x1b]0;t\\x07" in rendered(screen.query_one("#summary", Static))
        assert_drawn_safely(app)


async def test_notifications_status_line_and_filter_are_plain() -> None:
    source = FakeSource()
    app = quiet_app(source)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.notify("[@click=app.screenshot()]x[/] \x1b[2J", title="[bold]t\u202e")
        await wait_until(lambda: bool(app._notifications))
        await settle(pilot)
        (notification,) = list(app._notifications)
        assert notification.message == "[@click=app.screenshot()]x[/] \\x1b[2J"
        assert notification.title == "[bold]t\\u202e" and notification.markup is False
        assert_drawn_safely(app, "[@click=app.screenshot()]x[/] \x1b[2J")

        await pilot.press("slash")
        for key in ("[", "slash", "]"):  # typed `[/]`: used to raise MarkupError
            await pilot.press(key)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        assert screen.filter_text == "[/]"
        assert "filter “[/]”" in rendered(screen.query_one("#status", Static))
        filter_input = screen.query_one("#filter", Input)
        filter_input.insert_text_at_cursor("\x1b[2J\u202e")  # a paste: refused whole
        assert filter_input.value == "[/]"
        assert_drawn_safely(app)

        await pilot.press("escape", "escape")
        await pilot.press("colon")  # the command palette, searched for markup
        for key in ("[", "slash", "]", "left_square_bracket", "b"):
            await pilot.press(key)
        await settle(pilot)
        assert type(app.screen).__name__ == "CommandPalette"
        assert_drawn_safely(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ProcessesScreen) and app.is_running


async def test_a_process_that_exits_after_confirming_does_not_show_everything_moved() -> None:
    source = FakeSource()
    app = quiet_app(source)
    pid = 100 + 3 * 37
    release = threading.Event()
    source.script = MigrationScript(block=release)
    real_migrate = source.migrate

    def exited_first(plan, on_progress=None, cancel=None):  # type: ignore[no-untyped-def]
        from numatui.model.migration import MigrationResult

        release.wait()
        return MigrationResult.unchanged(plan, MigrationError("ESRCH", "process exited"))

    source.migrate = exited_first  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_dialog(pilot, pid)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MigrationScreen)
        before = {n: screen.query_one(f"#bar-{n}").current for n in screen.node_ids}  # type: ignore[attr-defined]
        release.set()
        assert await wait_until(lambda: screen.result is not None)
        await settle(pilot)
        stats = rendered(screen.query_one("#stats", Static))
        assert stats.startswith("moved 0 B of") and "100%" not in stats, stats
        assert "(0%)" in stats
        after = {n: screen.query_one(f"#bar-{n}").current for n in screen.node_ids}  # type: ignore[attr-defined]
        assert after == before  # no count read: the bars keep what was last seen
        assert "pages moved: 0" in rendered(screen.query_one("#summary", Static))
    del real_migrate


async def test_unreadable_memory_is_a_question_mark_with_the_reason() -> None:
    source = FakeSource(privileges_value=USER)
    pid = 100 + 2 * 37
    source.processes[pid] = replace(
        source.processes[pid],
        node_bytes=MappingProxyType({}),
        kind_bytes=MappingProxyType({}),
        memory_readable=False,
    )
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        row = screen.table.row_keys.index(pid)
        cells = [screen.table.get_column(key)[row] for key in ("node0", "node1", "locality")]
        assert cells == ["?", "?", "?"]
        assert "3 unreadable (needs root)" in rendered(screen.query_one("#status", Static))
        screen.select_pid(pid)
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, ProcessDetailScreen)
        kinds = detail.query_one("#kinds", DataTable)
        shown = {
            str(c) for column in range(1, len(kinds.columns)) for c in kinds.get_column_at(column)
        }
        assert shown == {"?"}
        identity = rendered(detail.query_one("#identity", Static))
        assert "in numa_maps ?" in identity
        assert (
            "memory per node unknown (?): its numa_maps is not readable by this user (needs root)"
            in identity
        )


# ---------------------------------------------------------------- the real thing


@pytest.fixture(scope="module")
def real_hostile() -> Iterator[list[HostileProcess]]:
    with hostile_processes() as processes:
        yield processes


async def _show(pilot: Pilot[None], pid: int) -> ProcessesScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ProcessesScreen)
    screen.select_pid(pid)
    await settle(pilot)
    assert screen.selected_pid == pid
    return screen


async def test_live_source_with_real_hostile_processes(
    real_hostile: list[HostileProcess], tmp_path: Path
) -> None:
    """The real readers, /proc of this host, the real attackers (another user); the
    recorded 4-node /sys only so that the migrate dialog can open on a 1-node host."""
    source = LiveSource(sys_root=FOUR_NODES_SYS, audit_path=tmp_path / "audit.jsonl")
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for process in real_hostile:
            screen = await _show(pilot, process.pid)
            row = screen.table.row_keys.index(process.pid)
            assert screen.table.get_column("name")[row] == visible(process.name)
            assert_drawn_safely(app, process.name)

            await pilot.press("enter")
            await settle(pilot)
            detail = app.screen
            assert isinstance(detail, ProcessDetailScreen), process.case.id
            identity = rendered(detail.query_one("#identity", Static))
            command = rendered(detail.query_one("#command", Static))
            assert visible(process.name) in identity
            assert visible(process.cmdline[:COMMAND_SHOWN]) in command
            mappings = detail.query_one("#mappings", DataTable)
            paths = [str(c) for c in mappings.get_column_at(len(mappings.columns) - 1)]
            assert visible(process.path_text) in paths, process.case.id
            assert_drawn_safely(app, process.name, process.path_text)
            await pilot.press("escape")
            await settle(pilot)

            dialog = await open_dialog(pilot, process.pid)
            assert rendered(dialog.query_one("#title", Static)).startswith(
                f"Migrate {visible(process.name)} ({process.pid})"
            )
            assert_drawn_safely(app, process.name)
            await pilot.press("escape")  # nothing is moved on this host
            await settle(pilot)
            assert isinstance(app.screen, ProcessesScreen)
        assert app.is_running
