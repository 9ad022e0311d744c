"""The screens over the real readers and validation, fed recorded /sys + /proc trees.

Only `migrate` is scripted (see `fakes.RecordedSource`).
"""

from __future__ import annotations

from textual.widgets import DataTable, SelectionList, Static

from numatui.screens.migration import MigrationScreen
from numatui.screens.nodes import NodesScreen
from numatui.screens.processes import ProcessesScreen
from tests.tooling.privileges import USER

from .conftest import open_dialog, quiet_app, settle
from .fakes import RecordedSource


def text_of(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


def column(table: DataTable[object], key: str) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_column(key)]


async def test_two_nodes_recorded_processes() -> None:
    app = quiet_app(RecordedSource("two_nodes"))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        labels = [str(c.label) for c in screen.table.columns.values()]
        assert labels[5:7] == ["N0", "N1"]
        assert {257, 258, 259} <= {int(p) for p in column(screen.table, "pid")}
        assert text_of(screen, "#summary").startswith("2 nodes")
        assert screen.check_action("migrate", ()) is True


async def test_four_nodes_recorded_misplaced_dialog_previews_real_plan() -> None:
    source = RecordedSource("four_nodes")
    app = quiet_app(source)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        assert "2 memory-only" in text_of(screen, "#summary")
        locality = dict(
            zip(column(screen.table, "pid"), column(screen.table, "locality"), strict=True)
        )
        assert locality["265"].startswith("!")  # bound to memory-only node 2, runs on node 0
        assert not locality["264"].startswith("!")
        dialog = await open_dialog(pilot, 265)
        assert dialog.from_nodes == frozenset({1, 2}) and dialog.to_nodes == frozenset({0})
        preview = text_of(dialog, "#preview")
        assert "node 1 → node 0" in preview and "node 2 → node 0" in preview
        await pilot.press("enter")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MigrationScreen)
        assert "Outcome: all moved" in text_of(view, "#summary")
        assert source.migrations[0].pid == 265


async def test_four_nodes_recorded_non_root_refusal_comes_from_validation() -> None:
    app = quiet_app(RecordedSource("four_nodes", privileges=USER))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "other users' processes need root or CAP_SYS_NICE" in text_of(app.screen, "#summary")
        dialog = await open_dialog(pilot, 264)
        dialog.query_one("#sources", SelectionList).select(0)
        dialog.query_one("#targets", SelectionList).select(1)
        await settle(pilot)
        preview = text_of(dialog, "#preview")
        assert preview.startswith("refused:") and "belongs to another user" in preview
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog  # a refused plan cannot be confirmed
        await pilot.press("escape")


async def test_four_nodes_recorded_nodes_screen() -> None:
    app = quiet_app(RecordedSource("four_nodes"))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        nodes = screen.query_one("#nodes", DataTable)
        kinds = column(nodes, list(nodes.columns)[1])  # type: ignore[arg-type]
        assert kinds == ["CPU+memory", "CPU+memory", "memory-only", "memory-only"]
        assert screen.query_one("#distances", DataTable).row_count == 4


async def test_no_numa_recorded_says_why() -> None:
    app = quiet_app(RecordedSource("no_numa"))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        assert "migration unavailable" in text_of(screen, "#summary")
        assert screen.check_action("migrate", ()) is None
