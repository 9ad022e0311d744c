"""The groups view (`g`): cgroups with memory per node, filter, sort, node limit, and a
hostile cgroup name drawn as text. Over the hand-made source (tests/tui/fakes.py); the
real cgroup readers are tested in tests/unit/test_cgroups.py and the guest tier."""

from __future__ import annotations

from textual.widgets import Static

from numatui.model.migration import MigrationOutcome
from numatui.safe_text import visible
from numatui.screens.group_move import GroupMigrationScreen, GroupMoveDialog
from numatui.screens.groups import GroupsScreen
from numatui.screens.processes import ProcessesScreen
from numatui.units import human_bytes

from .conftest import quiet_app, settle, wait_until
from .fakes import FakeSource, MigrationScript
from .test_hostile import assert_drawn_safely

HOSTILE = "/system.slice/[bold red]x[/]\x1b[31m\u202e[@click=app.quit]evil.service"
SIZE = (200, 50)


async def open_groups(app: object, pilot: object) -> GroupsScreen:
    await settle(pilot)  # type: ignore[arg-type]
    await pilot.press("g")  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, GroupsScreen)
    assert await wait_until(lambda: screen.groups is not None and screen.table.row_count > 0)
    return screen


async def test_groups_view_sums_members_per_node_and_toggles_back() -> None:
    source = FakeSource()
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(app, pilot)
        expected = source.groups()
        assert screen.table.row_count == len(expected.groups) == 3
        labels = screen.table.get_column("name")
        assert "nginx.service" in labels and "docker 3f2a9c1b4e5d" in labels
        nginx = next(g for g in expected.groups if g.name.label == "nginx.service")
        row = labels.index("nginx.service")
        for node, value in nginx.node_bytes.items():
            assert screen.table.get_column(f"node{node}")[row] == (
                human_bytes(value) if value else "·"
            )
        stat = nginx.stat_node_bytes
        assert stat is not None
        assert screen.table.get_column("cg0")[row] == human_bytes(stat[0])
        # Sorted by mapped bytes, largest first; `s` moves to the next column, `r` reverses.
        mapped = [next(g for g in expected.groups if g.name.label == n).numa_bytes for n in labels]
        assert mapped == sorted(mapped, reverse=True)
        await pilot.press("s")
        assert screen.sort_key == "cgroup"
        await pilot.press("r")
        assert not screen.sort_reverse
        # Filter by text.
        await pilot.press("slash")
        await pilot.press(*"docker")
        await settle(pilot)
        assert screen.table.get_column("name") == ["docker 3f2a9c1b4e5d"]
        await pilot.press("escape")
        await settle(pilot)
        assert screen.table.row_count == 3
        # Enter shows the group's own accounts by kind.
        screen.table.focus()
        await pilot.press("enter")
        detail = str(screen.query_one("#group-detail", Static).render())
        assert "anon" in detail and "file" in detail
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, ProcessesScreen)


async def test_node_limit_and_missing_accounts_say_why() -> None:
    source = FakeSource(
        group_stat_missing={"/system.slice/nginx.service": "the memory controller is off"}
    )
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(app, pilot)
        row = screen.table.get_column("name").index("nginx.service")
        assert screen.table.get_column("cgroup")[row] == "?"  # unknown, never a zero
        screen.table.move_cursor(row)
        await pilot.press("enter")
        detail = str(screen.query_one("#group-detail", Static).render())
        assert "not available: the memory controller is off" in detail
        await pilot.press("n")
        await settle(pilot)
        assert screen.node_limit == 0
        shown = screen.table.get_column("name")
        groups = {g.name.label: g for g in source.groups().groups}
        assert all(groups[label].node_bytes.get(0, 0) > 0 for label in shown)


async def test_a_hostile_cgroup_name_is_drawn_as_text() -> None:
    source = FakeSource(group_paths=(HOSTILE, "/system.slice/nginx.service"))
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(app, pilot)
        labels = screen.table.get_column("name")
        label = HOSTILE.rsplit("/", 1)[1]
        assert visible(label) in labels
        row = labels.index(visible(label))
        screen.table.move_cursor(row)
        await pilot.press("enter")
        await settle(pilot)
        assert_drawn_safely(app, label)
        # Typing the shown (escaped) text finds it; the app is still up.
        await pilot.press("slash")
        await pilot.press(*"[bold")
        await settle(pilot)
        assert screen.table.get_column("name") == [visible(label)]
        assert app.is_running and app.return_code is None


async def test_moving_a_group_from_the_view_one_progress_one_verdict() -> None:
    source = FakeSource(
        group_paths=(HOSTILE, "/system.slice/nginx.service"),
        script=MigrationScript(steps=3, step_s=0.05),
    )
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(app, pilot)
        label = visible(HOSTILE.rsplit("/", 1)[1])
        screen.table.move_cursor(screen.table.get_column("name").index(label))
        await pilot.press("m")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, GroupMoveDialog)
        assert_drawn_safely(app, HOSTILE.rsplit("/", 1)[1])
        await pilot.click("#group-move-go")
        await settle(pilot)
        moving = app.screen
        assert isinstance(moving, GroupMigrationScreen)
        assert await wait_until(lambda: moving.result is not None, timeout_s=20)
        await settle(pilot)
        result = moving.result
        assert result is not None
        group = next(g for g in source.groups().groups if g.path == HOSTILE)
        assert [m.pid for m in result.members] == list(group.pids)
        assert moving.latest is not None  # progress was shown while it ran
        summary = str(moving.query_one("#group-move-summary").render())
        assert str(result.outcome) in summary
        for member in result.members:
            assert f"pid {member.pid}" in summary
        assert result.outcome in (MigrationOutcome.ALL_MOVED, MigrationOutcome.PARTLY_MOVED)
        assert_drawn_safely(app, HOSTILE.rsplit("/", 1)[1])
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, GroupsScreen)
        assert app.is_running
