"""80x24 works on every screen: what matters is on screen, not cut off or below the fold.

Assertions are on what is drawn (the compositor's lines, as the terminal gets
them): the footer keeps the important keys, the nodes table keeps HUGE and
TIER, a long command line folds to one line so the memory table stays in view,
dialogs fit with their buttons.
"""

from __future__ import annotations

import io

from rich.console import Console
from textual.pilot import Pilot

from numatui.app import NumatuiApp
from numatui.screens.detail import ProcessDetailScreen
from numatui.screens.group_move import GroupMoveDialog
from numatui.screens.groups import GroupsScreen
from numatui.screens.migrate_dialog import MigrateDialog
from numatui.screens.migration import MigrationScreen
from numatui.screens.nodes import NodesScreen
from numatui.screens.processes import ProcessesScreen
from tests.hostile import CASES

from .conftest import open_dialog, quiet_app, settle, wait_until
from .fakes import FakeSource, MigrationScript, RecordedSource
from .test_hostile import FAKE_CASES, assert_drawn_safely, hostile_source

SIZE = (80, 24)
MISPLACED_PID = 100 + 3 * 37  # the fake machine's process with memory on both nodes
RECORDED_LONG_COMMAND_PID = 266  # a workload whose `python3 -c` script is 1,400 characters


def shown_lines(app: NumatuiApp) -> list[str]:
    """The 24 lines of text the terminal shows."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO())
    with console.capture() as capture:
        console.print(
            app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
        )
    lines = capture.get().split("\n")
    return [line for line in lines if line or len(lines) <= app.size.height][: app.size.height]


def footer(app: NumatuiApp) -> str:
    return shown_lines(app)[-1]


def assert_footer_has(app: NumatuiApp, *keys: str) -> None:
    line = footer(app)
    missing = [key for key in keys if key not in line]
    assert not missing, f"{type(app.screen).__name__}: {missing} not in footer {line!r}"


async def test_processes_footer_keeps_the_important_keys() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ProcessesScreen)
        assert_footer_has(
            app, "q Quit", "? Help", "⏎ Detail", "m Migrate", "/ Filter", "N Nodes", "g Groups"
        )


async def test_nodes_screen_keeps_huge_and_tier_and_its_keys() -> None:
    app = quiet_app(RecordedSource("four_nodes"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        lines = shown_lines(app)
        header = next(line for line in lines if "NODE" in line and "KIND" in line)
        assert "HUGE" in header and "TIER" in header, header
        row = next(
            line for line in lines if line.strip().startswith("2 ") and "memory-only" in line
        )
        assert "of 2.00 MiB" in row and row.rstrip().endswith("4"), row  # huge pages, tier 4
        assert_footer_has(app, "q Quit", "? Help", "p Processes", "g Groups")


async def test_a_wide_nodes_screen_keeps_every_column() -> None:
    app = quiet_app(RecordedSource("four_nodes"))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        header = next(line for line in shown_lines(app) if "NODE" in line and "KIND" in line)
        for title in ("TOTAL", "USED", "FREE", "USED%", "HIT/s", "MISS/s", "HUGE", "TIER"):
            assert title in header, header


async def test_groups_view_fits_with_its_keys() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GroupsScreen)
        assert_footer_has(app, "q Quit", "? Help", "m Move", "/ Filter", "g Processes")
        assert any("GROUP" in line and "MAPPED" in line for line in shown_lines(app))


async def test_group_move_dialog_fits_with_its_own_keys() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, GroupMoveDialog)
        box = dialog.query_one("#group-move-dialog").region
        assert box.bottom <= SIZE[1] - 1, box
        for button in ("#group-move-go", "#group-move-cancel"):
            assert box.contains_region(dialog.query_one(button).region), button
        assert_footer_has(app, "esc Cancel")
        assert "m Move" not in footer(app)  # not the keys of the view underneath


async def _detail_of(pilot: Pilot[None], pid: int) -> ProcessDetailScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ProcessesScreen)
    screen.select_pid(pid)
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    detail = pilot.app.screen
    assert isinstance(detail, ProcessDetailScreen)
    return detail


def assert_memory_table_in_view(app: NumatuiApp) -> None:
    lines = shown_lines(app)
    command = [i for i, line in enumerate(lines) if line.strip().startswith("command")]
    assert len(command) == 1, lines
    # One line: the next line is the section that follows, not more of the command.
    assert "Memory per node by kind" in lines[command[0] + 2], lines
    assert any(line.strip().startswith("all ") for line in lines), lines  # the table's last row


async def test_a_long_command_line_folds_to_one_line_in_the_detail_screen() -> None:
    app = quiet_app(RecordedSource("four_nodes"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _detail_of(pilot, RECORDED_LONG_COMMAND_PID)
        assert_memory_table_in_view(app)
        command = next(line for line in shown_lines(app) if line.strip().startswith("command"))
        assert command.rstrip().endswith("…"), command
        assert_footer_has(app, "esc Back", "q Quit", "? Help", "m Migrate", "c Command")

        await pilot.press("c")  # the whole command line, on request
        await settle(pilot)
        text = " ".join(line.strip() for line in shown_lines(app))
        assert "sched_setaffinity" in text  # far into the script
        assert "Memory per node by kind" not in text  # below the fold now
        await pilot.press("c")
        await settle(pilot)
        assert_memory_table_in_view(app)


async def test_a_hostile_long_command_line_folds_safely() -> None:
    for case in FAKE_CASES:
        if case.id not in ("long-cmdline", "click", "style", "whitespace"):
            continue
        app = quiet_app(hostile_source(case))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await _detail_of(pilot, MISPLACED_PID)
            assert_memory_table_in_view(app)
            assert_drawn_safely(app, case.name)
    assert {c.id for c in CASES} >= {"long-cmdline", "click", "style", "whitespace"}


async def test_migrate_dialog_fits_with_its_buttons() -> None:
    app = quiet_app(RecordedSource("four_nodes"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, 265)
        assert isinstance(dialog, MigrateDialog)
        box = dialog.query_one("#dialog").region
        assert box.bottom <= SIZE[1] - 1, box  # above the footer
        for button in ("#confirm", "#cancel", "#stoppable"):
            region = dialog.query_one(button).region
            assert region.height >= 1 and box.contains_region(region), (button, region, box)
        text = "\n".join(shown_lines(app))
        assert "Migrate" in text and "Cancel" in text and "stoppable" in text
        assert_footer_has(app, "esc Cancel", "⏎ Migrate", "x Stoppable")


async def test_migration_screen_fits_with_its_summary() -> None:
    source = FakeSource(script=MigrationScript(steps=2, step_s=0.05))
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_dialog(pilot, MISPLACED_PID)
        await pilot.press("enter")
        assert await wait_until(lambda: isinstance(app.screen, MigrationScreen))
        screen = app.screen
        assert await wait_until(lambda: screen.query_one("#summary").region.height > 0, 30)
        await settle(pilot)
        summary = screen.query_one("#summary").region
        assert summary.bottom <= SIZE[1] - 1, summary
        assert footer(app).strip(), "the migration screen has no keys shown"


async def test_help_fits_and_says_how_to_close() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = "\n".join(shown_lines(app))
        assert "Press escape or ? to close this help" in text
        assert_footer_has(app, "esc Close help", "q Quit")
