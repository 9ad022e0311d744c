"""The nodes screen's drain key: the dry run's plan, Enter drains, the report; refusals.

Over the fake machine (the real rules and `validate`); that a drain really empties a
node is proven in the guest (tests/kernel/guest/test_drain_guest.py).
"""

from __future__ import annotations

from textual.widgets import DataTable, Static

from numatui.screens.drain import DrainDialog
from numatui.screens.nodes import NodesScreen

from .conftest import quiet_app, settle, wait_until
from .fakes import FakeSource, four_nodes, single_node


def _text(dialog: DrainDialog, selector: str) -> str:
    return str(dialog.query_one(selector, Static).render())


async def _open_drain(pilot: object, row: int) -> DrainDialog:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await settle(pilot)
    await pilot.press("N")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, NodesScreen)
    screen.query_one("#nodes", DataTable).move_cursor(row=row)
    await pilot.press("d")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, DrainDialog)
    return dialog


async def test_drain_key_shows_the_plan_then_drains_and_reports() -> None:
    source = FakeSource(topology_factory=four_nodes)
    app = quiet_app(source)
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await _open_drain(pilot, row=1)
        assert dialog.node == 1
        plan = dialog.plan
        assert plan is not None and plan.refusal is None and plan.items
        text = _text(dialog, "#drain-text")
        assert "process(es) with memory on node 1" in text and "total" in text
        assert source.calls.count("drain") == 0  # nothing moves before Enter
        await pilot.press("enter")
        assert await wait_until(lambda: dialog.finished, timeout_s=10)
        await settle(pilot)
        assert source.calls.count("drain") == 1
        assert {p.pid for p in source.migrations} == {
            i.pid for i in plan.items if i.plan is not None
        }
        assert all(p.from_nodes == {1} and p.stoppable for p in source.migrations)
        assert "moved off node 1" in _text(dialog, "#drain-text")
        await pilot.press("escape")
        assert isinstance(app.screen, NodesScreen)


async def test_drain_of_the_only_memory_node_is_refused_and_nothing_runs() -> None:
    source = FakeSource(topology_factory=single_node)
    app = quiet_app(source)
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await _open_drain(pilot, row=0)
        assert "refused" in _text(dialog, "#drain-text")
        await pilot.press("enter")
        await settle(pilot)
        assert "drain" not in source.calls and not source.migrations
