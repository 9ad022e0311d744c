"""Pilot tests: every screen and interaction, driven by keys over the fake source."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest
from textual.command import CommandPalette
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Markdown, SelectionList, Static

from numatui.messages import PlanPreviewed, PlanRefused
from numatui.model.migration import MigrationError
from numatui.model.node_bytes import frozen_map
from numatui.screens.detail import ProcessDetailScreen
from numatui.screens.help import HelpScreen
from numatui.screens.migrate_dialog import MigrateDialog
from numatui.screens.migration import MigrationScreen
from numatui.screens.nodes import NodesScreen
from numatui.screens.processes import ProcessesScreen
from numatui.source import Privileges
from numatui.units import human_count_rate
from tests.tooling.privileges import ROOT, USER

from .conftest import open_dialog, settle, settled_app, wait_until
from .fakes import (
    FakeSource,
    MigrationScript,
    four_nodes,
    listed,
    make_topology,
    no_numa,
    single_node,
    sixteen_nodes,
)


def text_of(screen: object, selector: str) -> str:
    assert hasattr(screen, "query_one")
    return str(screen.query_one(selector, Static).render())


def table_column(table: DataTable[object], key: str) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_column(key)]


def pids(screen: ProcessesScreen) -> list[int]:
    return [int(p) for p in table_column(screen.table, "pid")]


async def filtered(pilot: Pilot[object], screen: ProcessesScreen, text: str) -> list[int]:
    """Type `/` and `text`: the pids the filtered table shows."""
    await pilot.press("slash", *text)
    await pilot.pause()
    return pids(screen)


def processes_screen(app: object) -> ProcessesScreen:
    screen = getattr(app, "screen", None)
    assert isinstance(screen, ProcessesScreen)
    return screen


def sparse_source(**kwargs: object) -> FakeSource:
    return FakeSource(topology_factory=lambda t: four_nodes(t, sparse=True), **kwargs)  # type: ignore[arg-type]


async def test_processes_table_has_a_column_per_memory_node_and_marks_misplaced() -> None:
    source = sparse_source()
    async with settled_app(source) as (app, _pilot):
        screen = processes_screen(app)
        labels = [str(c.label) for c in screen.table.columns.values()]
        assert labels == ["PID", "NAME", "USER", "RSS", "LOCAL", "N0", "N1", "N4", "N5"]
        assert screen.table.row_count == listed(source)
        locality = dict(zip(pids(screen), table_column(screen.table, "locality"), strict=True))
        misplaced = [pid for pid, cell in locality.items() if cell.startswith("!")]
        assert misplaced and all(int(locality[p].split()[1].rstrip("%")) < 50 for p in misplaced)
        summary = text_of(screen, "#summary")
        assert "4 nodes (2 memory-only)" in summary
        # Default sort: RSS, largest first.
        sizes = [source.processes[p].rss_bytes for p in pids(screen)]
        assert sizes == sorted(sizes, reverse=True)


async def test_sort_cycles_reverses_and_header_click() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        await pilot.press("s")  # from RSS to locality: least local first
        assert screen.sort_key == "locality"
        local = [source.processes[p].locality for p in pids(screen)]
        known = [v for v in local if v is not None]
        assert known == sorted(known)
        assert "sort LOCAL" in text_of(screen, "#status")
        await pilot.press("s")
        assert screen.sort_key == "node0"
        values = [source.processes[p].node_bytes.get(0, 0) for p in pids(screen)]
        assert values == sorted(values, reverse=True)
        await pilot.press("r")
        values = [source.processes[p].node_bytes.get(0, 0) for p in pids(screen)]
        assert values == sorted(values)
        await pilot.click("#processes", offset=(2, 0))  # the PID header
        await pilot.pause()
        assert screen.sort_key == "pid"
        assert pids(screen) == sorted(pids(screen))
        for _ in range(2):  # pid -> name -> user
            await pilot.press("s")
        assert screen.sort_key == "user"
        users = [source.processes[p].user for p in pids(screen)]
        assert users == sorted(users)
        assert "sort USER" in text_of(screen, "#status")


async def test_kept_orders_are_exact_and_follow_new_values() -> None:
    """A reverse, or a column sorted by before, reuses the order sorted for the rows shown
    (no sort on the key press): it must be exactly the order a fresh sort gives, ties by
    pid, and a refresh with new values must be sorted anew."""
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)

        def expected(key: str, descending: bool) -> list[int]:
            values = {p: source.processes[p].node_bytes.get(0, 0) for p in pids(screen)}
            if key == "pid":
                return sorted(values, reverse=descending)
            return sorted(values, key=lambda p: (values[p], p), reverse=descending)

        await pilot.press("s", "s")
        assert screen.sort_key == "node0" and screen.sort_reverse
        # Ties by pid: give half the processes the same bytes on node 0.
        for pid in list(source.processes)[::2]:
            process = source.processes[pid]
            source.processes[pid] = replace(
                process, node_bytes=frozen_map({**process.node_bytes, 0: 4096})
            )
        await pilot.press("u")
        await settle(pilot)
        first = pids(screen)
        assert first == expected("node0", True)
        for descending in (False, True, False):
            await pilot.press("r")
            assert pids(screen) == expected("node0", descending)
        await pilot.click("#processes", offset=(2, 0))  # PID, then node 0 again
        await pilot.pause()
        assert pids(screen) == expected("pid", False)
        await pilot.press("s", "s", "s", "s")  # pid -> name -> user -> ... -> back around
        while screen.sort_key != "node0":
            await pilot.press("s")
        assert pids(screen) == expected("node0", screen.sort_reverse)
        # New values: the kept order must not outlive the rows it was sorted from.
        for pid in first[:5]:
            process = source.processes[pid]
            source.processes[pid] = replace(process, node_bytes=frozen_map({0: 1}))
        await pilot.press("u")
        await settle(pilot)
        assert pids(screen) == expected("node0", screen.sort_reverse)
        await pilot.press("r")
        assert pids(screen) == expected("node0", screen.sort_reverse)


async def test_filter_by_name_user_pid_and_escape_clears() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        shown = await filtered(pilot, screen, "postgres")
        assert shown and len(shown) < len(source.processes)
        for pid in shown:
            p = source.processes[pid]
            assert "postgres" in p.name or p.user == "postgres"
        await pilot.press("enter")  # back to the table, filter kept
        assert screen.table.has_focus
        await pilot.press("escape")
        assert screen.table.row_count == listed(source)
        assert await filtered(pilot, screen, "211") == [211]


async def test_a_key_typed_right_behind_enter_in_the_filter_acts_on_the_table() -> None:
    """Enter and `m` read together (fast typing, a paste, a slow link): both reach the
    filter input before the screen moves focus; `m` must open the dialog, not be typed."""
    from textual import events

    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        assert await filtered(pilot, screen, "211") == [211]
        app.post_message(events.Key("enter", "\r"))
        app.post_message(events.Key("m", "m"))
        assert await wait_until(lambda: isinstance(app.screen, MigrateDialog)), app.screen
        assert screen.filter_text == "211"


async def test_node_limit_cycles_through_memory_nodes() -> None:
    source = sparse_source()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        seen = []
        for _ in range(5):
            await pilot.press("n")
            seen.append(screen.node_limit)
            if screen.node_limit is not None:
                assert pids(screen)
                for pid in pids(screen):
                    assert source.processes[pid].node_bytes.get(screen.node_limit, 0) > 0
                assert f"node {screen.node_limit} only" in text_of(screen, "#status")
        assert seen == [0, 1, 4, 5, None]
        assert screen.table.row_count == listed(source)


async def test_refresh_keeps_selected_pid_and_drops_exited_processes() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        await pilot.press("down", "down", "down", "down", "down")
        selected = screen.selected_pid
        assert selected is not None
        above = pids(screen)[0]
        source.exit_process(above)
        # The selected process grows on node 1: its row moves up the RSS order.
        p = source.processes[selected]
        source.processes[selected] = replace(
            p, rss_bytes=p.rss_bytes * 10, node_bytes=frozen_map({1: p.rss_bytes * 10})
        )
        # Let the timer drive two refreshes (each re-arms after the last ended).
        count = len(app.history)
        app.refresh_interval = 0.05
        app.action_refresh_now()
        while len(app.history) < count + 2:
            await asyncio.sleep(0.02)
        app.refresh_interval = 3600.0  # stop the cycle so the test can settle
        await settle(pilot)
        assert above not in pids(screen)
        assert screen.selected_pid == selected
        assert pids(screen)[0] == selected


async def test_detail_shows_kinds_and_largest_mappings_first() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        pid = screen.selected_pid
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, ProcessDetailScreen)
        identity = text_of(detail, "#identity")
        assert f"pid {pid}" in identity and "allowed nodes 0-1" in identity
        kinds = detail.query_one("#kinds", DataTable)
        assert [str(k.value) for k in kinds.rows] == [
            "anon",
            "file",
            "heap",
            "stack",
            "shmem",
            "huge",
            "all",
        ]
        mappings = detail.query_one("#mappings", DataTable)
        assert mappings.row_count == 6
        totals = [c.plain for c in mappings.get_column("total")]
        maps = source.numa_maps(pid)  # type: ignore[arg-type]
        largest = max(sum(m.node_bytes.values()) for m in maps.mappings)
        from numatui.units import human_bytes

        assert totals[0] == human_bytes(largest)
        await pilot.press("escape")
        assert isinstance(app.screen, ProcessesScreen)


@pytest.mark.parametrize(
    ("privileges", "reason"),
    [(USER, "not readable by this user (needs root)"), (ROOT, "cannot be read, even as root")],
)
async def test_detail_unreadable_mappings_say_why_not_the_raw_error(
    privileges: Privileges, reason: str
) -> None:
    source = FakeSource(
        fail_numa_maps="Permission denied: /proc/211/numa_maps", privileges_value=privileges
    )
    async with settled_app(source) as (app, pilot):
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ProcessDetailScreen)
        title = text_of(app.screen, "#mappings-title")
        assert reason in title
        assert "PermissionError" not in title and "Permission denied" not in title


async def test_migrate_from_detail_opens_the_dialog_for_that_process() -> None:
    # The detail screen hands the request back through dismiss; the list opens the dialog.
    async with settled_app(FakeSource()) as (app, pilot):
        screen = processes_screen(app)
        pid = screen.selected_pid
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ProcessDetailScreen)
        await pilot.press("m")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, MigrateDialog)
        assert dialog.process.pid == pid
        assert app.screen_stack[-2] is screen


@pytest.mark.parametrize("as_root", [True, False], ids=["root", "user"])
async def test_dialog_offers_nodes_disables_refused_targets_and_previews_pairs(
    as_root: bool,
) -> None:
    def topology(tick: int) -> object:
        return make_topology([0, 1, 2, 3], memory_only=[2], offline=[3], tick=tick)

    source = FakeSource(topology_factory=topology, privileges_value=ROOT if as_root else USER)
    pid = 100 + 3 * 37  # a misplaced process: home node 1, most memory on another node
    source.processes[pid] = replace(source.processes[pid], mems_allowed=frozenset({0, 1, 3}))
    async with settled_app(source) as (_app, pilot):
        dialog = await open_dialog(pilot, pid)
        targets = dialog.query_one("#targets", SelectionList)
        prompts = {
            targets.get_option_at_index(i).value: (
                str(targets.get_option_at_index(i).prompt),
                targets.get_option_at_index(i).disabled,
            )
            for i in range(targets.option_count)
        }
        if as_root:
            # CAP_SYS_NICE: the kernel accepts a node outside the cpuset, and so do the
            # rules, the dialog and the CLI (with the same warning).
            assert not prompts[2][1] and "outside its cpuset" in prompts[2][0]
        else:
            assert prompts[2][1] and "outside allowed nodes 0-1,3" in prompts[2][0]
        assert prompts[3][1] and "offline" in prompts[3][0]
        assert not prompts[0][1] and "free" in prompts[0][0]
        sources = dialog.query_one("#sources", SelectionList)
        process = source.processes[pid]
        away = {n for n in process.node_bytes} - process.cpu_nodes
        assert set(sources.selected) == away  # preselected: memory away from its CPUs
        assert set(targets.selected) == set(process.cpu_nodes)
        preview = text_of(dialog, "#preview")
        (src,) = away
        (dst,) = process.cpu_nodes
        assert f"node {src} → node {dst}" in preview
        # Add node 0 as a second target: the preview follows.
        targets.select(0)
        await settle(pilot)
        assert dialog.to_nodes == frozenset({0, dst})
        assert "The kernel will move" in text_of(dialog, "#preview")


async def test_dialog_cancel_does_nothing() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        await open_dialog(pilot, 211)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ProcessesScreen)
        assert "migrate" not in source.calls
        assert source.migrations == []


async def test_an_answer_reaching_a_closing_dialog_is_dropped() -> None:
    # The app tears a dialog down children first; a plan (or a refusal) answered
    # meanwhile must not look its node lists up (seen once: NoMatches for '#sources').
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        dialog = await open_dialog(pilot, 211)
        plan = dialog.plan
        assert plan is not None
        await dialog.query("#sources").remove()
        dialog.post_message(PlanPreviewed(plan))
        dialog.post_message(PlanRefused(plan.from_nodes, plan.to_nodes, "late"))
        await settle(pilot)
        assert app.screen is dialog and "late" not in text_of(dialog, "#preview")


async def test_a_dialog_mounted_while_it_closes_does_nothing() -> None:
    # `m` and the app's exit in one breath: the mount event can come after the app tore
    # the dialog's children down (seen once under a CPU hog: NoMatches for '#sources').
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        dialog = await open_dialog(pilot, 211)
        await dialog.query("#sources").remove()
        dialog.on_mount()  # no NoMatches
        await settle(pilot)
        assert app.screen is dialog


@pytest.mark.parametrize(
    "gone", ["#sources", "#targets", "#preview", "#stoppable", "#stall-ms", "#confirm"]
)
async def test_a_change_heard_while_the_dialog_closes_does_nothing(gone: str) -> None:
    # The app tears children down one at a time: a SelectedChanged queued before then
    # once found '#confirm' but not '#sources' (run beside a CPU hog). Any child gone means
    # the dialog is closing, and neither its mount nor a change may query the rest.
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        dialog = await open_dialog(pilot, 211)
        await dialog.query(gone).remove()
        dialog._selection_changed()  # no NoMatches
        dialog.on_mount()
        await settle(pilot)
        assert app.screen is dialog


async def test_dialog_refusal_is_shown_and_confirm_is_refused() -> None:
    source = FakeSource(privileges_value=USER)
    async with settled_app(source) as (app, pilot):
        dialog = await open_dialog(pilot, 211)
        sources = dialog.query_one("#sources", SelectionList)
        targets = dialog.query_one("#targets", SelectionList)
        sources.deselect_all()
        targets.deselect_all()
        await settle(pilot)
        assert "choose at least one source" in text_of(dialog, "#preview")
        await pilot.press("enter")
        assert app.screen is dialog  # nothing to confirm
        sources.select(0)
        targets.select(1)
        await settle(pilot)
        preview = text_of(dialog, "#preview")
        assert "node 0 → node 1" in preview
        assert "shared pages will stay" in preview and "CAP_SYS_NICE" in preview


async def test_confirm_runs_migration_shows_progress_then_summary_and_back() -> None:
    release = threading.Event()
    script = MigrationScript(
        steps=4,
        step_s=0.25,
        fraction_moved=0.75,
        explanations=("12 pages are pinned by the driver",),
        hold_after_first=release,
    )
    source = FakeSource(script=script)
    pid = 100 + 3 * 37
    async with settled_app(source) as (app, pilot):
        await open_dialog(pilot, pid)
        await pilot.press("enter")
        await pilot.pause()
        view = app.screen
        assert isinstance(view, MigrationScreen)
        # Progress arrives while the worker still runs.
        assert await wait_until(lambda: "moved so far" in text_of(view, "#stats"))
        assert view.check_action("back", ()) is None  # cannot leave mid-migration
        # Not asked to be stoppable: one migrate_pages call, so no Stop key either.
        assert not source.migrations[0].stoppable
        assert view.check_action("stop", ()) is False
        release.set()
        await settle(pilot)
        summary = text_of(view, "#summary")
        assert "Outcome: partly moved" in summary
        assert "pages the kernel could not move" in summary
        assert "12 pages are pinned by the driver" in summary
        before_after = view.query_one("#before-after", DataTable)
        assert before_after.row_count == 2
        plan = source.migrations[0]
        assert plan.pid == pid
        await pilot.press("b")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        assert screen.selected_pid == pid


async def test_stop_key_stops_a_running_migration_and_then_goes_away() -> None:
    script = MigrationScript(steps=40, step_s=0.1, sleep_s=0.1)
    source = FakeSource(script=script)
    pid = 100 + 3 * 37
    async with settled_app(source) as (app, pilot):
        dialog = await open_dialog(pilot, pid)
        await pilot.press("x")  # the dialog's "stoppable" box
        assert dialog.query_one("#stoppable", Checkbox).value
        await pilot.press("enter")
        # The migration starts in a worker thread: under load, after the key is handled.
        assert await wait_until(lambda: bool(source.migrations))
        assert source.migrations[-1].stoppable
        await pilot.pause()
        view = app.screen
        assert isinstance(view, MigrationScreen)
        await wait_until(lambda: "moved so far" in text_of(view, "#stats"))
        assert view.check_action("stop", ()) is True  # offered while it runs
        await pilot.press("x")
        assert view.cancel_event.is_set()
        assert view.check_action("stop", ()) is not True  # once: disabled, or over already
        await settle(pilot)
        assert view.result is not None
        assert len(view.result.samples) < script.steps  # it did stop early
        assert "Outcome: partly moved" in text_of(view, "#summary")
        assert view.check_action("stop", ()) is False  # hidden after the end


async def test_stop_is_disabled_when_the_job_says_it_cannot_stop() -> None:
    script = MigrationScript(steps=20, step_s=0.1, sleep_s=0.05, stoppable=False)
    async with settled_app(FakeSource(script=script)) as (app, pilot):
        await open_dialog(pilot, 100 + 3 * 37)
        await pilot.press("x", "enter")  # asked for stoppable; the job says it cannot
        await pilot.pause()
        view = app.screen
        assert isinstance(view, MigrationScreen)
        await wait_until(lambda: not view.stoppable or not view.running)
        assert not view.stoppable
        assert view.check_action("stop", ()) is not True
        await settle(pilot)


async def test_migration_failure_shows_a_message_not_a_traceback() -> None:
    script = MigrationScript(raise_message="the data source exploded")
    source = FakeSource(script=script)
    async with settled_app(source) as (app, pilot):
        await open_dialog(pilot, 100 + 3 * 37)
        await pilot.press("enter")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MigrationScreen)
        summary = text_of(view, "#summary")
        assert "Migration failed" in summary and "the data source exploded" in summary
        assert "Traceback" not in summary


async def test_kernel_refusal_outcome_shows_errno_and_reason() -> None:
    error = MigrationError("EPERM", "numatui may not move another user's process: run as root")
    source = FakeSource(script=MigrationScript(error=error))
    async with settled_app(source) as (app, pilot):
        await open_dialog(pilot, 100 + 3 * 37)
        await pilot.press("enter")
        await settle(pilot)
        summary = text_of(app.screen, "#summary")
        assert "Outcome: failed" in summary
        assert "EPERM: numatui may not move another user's process" in summary


async def check_blocked(source: FakeSource, expected: str) -> None:
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        assert screen.table.row_count == listed(source)
        assert expected in text_of(screen, "#summary")
        assert screen.check_action("migrate", ()) is None
        await pilot.press("m")
        await pilot.pause()
        assert app.screen is screen


async def test_single_node_says_why_migration_is_unavailable() -> None:
    await check_blocked(FakeSource(topology_factory=single_node), "single NUMA node")


async def test_container_without_numa_says_why() -> None:
    await check_blocked(FakeSource(topology_factory=no_numa), "container without node information")


async def test_non_root_says_what_it_cannot_do() -> None:
    source = FakeSource(privileges_value=USER)
    async with settled_app(source) as (app, _pilot):
        summary = text_of(app.screen, "#summary")
        assert "other users' processes need root or CAP_SYS_NICE" in summary
        assert app.screen.check_action("migrate", ()) is True


async def test_kernel_thread_cannot_be_migrated() -> None:
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        # Hidden by default, and said so; `k` shows them.
        assert 2 not in screen.table.row_keys
        assert "1 kernel thread hidden (k)" in text_of(screen, "#status")
        await pilot.press("k")
        assert 2 in screen.table.row_keys and "hidden" not in text_of(screen, "#status")
        screen.select_pid(2)
        await pilot.press("m")
        await pilot.pause()
        assert app.screen is screen
        assert any("kernel threads" in n.message for n in app._notifications)
        await pilot.press("k")
        assert 2 not in screen.table.row_keys


async def test_scan_failure_is_notified_and_app_keeps_running() -> None:
    source = FakeSource(fail_scan="Permission denied: /proc")
    async with settled_app(source) as (app, pilot):
        assert any("Permission denied" in n.message for n in app._notifications)
        assert app.is_running
        assert app.last_error is not None
        source.fail_scan = None
        await pilot.press("u")
        await settle(pilot)
        assert app.screen.table.row_count == listed(source)  # type: ignore[attr-defined]


async def test_nodes_screen_scales_to_sixteen_nodes_with_charts() -> None:
    source = FakeSource(topology_factory=sixteen_nodes)
    async with settled_app(source) as (app, pilot):
        for _ in range(3):
            await pilot.press("u")
            await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        assert screen.query_one("#nodes", DataTable).row_count == 16
        distances = screen.query_one("#distances", DataTable)
        assert len(distances.columns) == 17 and distances.row_count == 16
        charts = screen.query("#used-charts SparkChart")
        assert len(charts) == 16
        assert len(charts.first().values) == 4  # type: ignore[attr-defined]
        migrated = screen.query_one("#rate-pgmigrate_success")
        assert len(migrated.values) == 3  # type: ignore[attr-defined]
        # Each node's own hit and miss rates, from its numastat, the latest interval.
        nodes = screen.query_one("#nodes", DataTable)
        for row, node_id in enumerate(sorted(n.id for n in source.topology().nodes)):
            hits = app.history.node_rate_series(node_id, "numa_hit")
            misses = app.history.node_rate_series(node_id, "numa_miss")
            assert len(hits) == 3 and hits[-1] > 0
            assert str(nodes.get_cell_at(Coordinate(row, 7))) == human_count_rate(hits[-1])
            assert str(nodes.get_cell_at(Coordinate(row, 8))) == human_count_rate(misses[-1])
        await pilot.press("p")
        assert isinstance(app.screen, ProcessesScreen)


async def test_help_opens_and_lists_keys() -> None:
    async with settled_app(FakeSource()) as (app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        assert "Migrate" in text and "Filter" in text and "`/`" in text
        await pilot.press("escape")
        assert isinstance(app.screen, ProcessesScreen)


async def test_palette_lists_the_apps_actions() -> None:
    async with settled_app(FakeSource()) as (app, pilot):
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"migrate")
        for _ in range(50):
            await pilot.pause(0.05)
            options = app.screen.query_one("CommandList")
            found = [
                str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
            ]  # type: ignore[attr-defined]
            if any("Migrate selected process" in f for f in found):
                break
        assert any("Migrate selected process" in f for f in found)


async def test_narrow_class_below_81_columns() -> None:
    async with settled_app(FakeSource(), size=(80, 24)) as (app, pilot):
        assert app.has_class("narrow")
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        assert not app.has_class("narrow")


async def test_blocked_migration_does_not_stop_other_screens() -> None:
    gate = threading.Event()
    source = FakeSource(script=MigrationScript(block=gate))
    async with settled_app(source) as (app, pilot):
        await open_dialog(pilot, 100 + 3 * 37)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MigrationScreen)
        assert "starting" in text_of(app.screen, "#stats")
        await pilot.press("question_mark")  # the UI still answers
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        gate.set()


async def test_a_filter_that_hides_the_cursors_row_puts_the_cursor_on_the_first_match() -> None:
    """The cursor on a process the filter hides: it goes to the first row shown (the best
    match), not to whichever row now sits at its old height. Seen in the guest's e2e test:
    `m` then opened the dialog for a short-lived tmux client the filter also matched."""
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        screen = processes_screen(app)
        matches = await filtered(pilot, screen, "postgres")
        assert len(matches) >= 2
        await pilot.press("enter", "escape")  # the whole list again, the cursor kept
        others = [pid for pid in pids(screen) if pid not in matches]
        screen.table.move_cursor(screen.table.get_row_index(others[3]))  # not a match, row > 0
        shown = await filtered(pilot, screen, "postgres")
        assert screen.table.cursor_key == shown[0] == matches[0]
        # A filter that keeps the cursor's row keeps the cursor on it.
        await pilot.press("enter", "down")
        kept = screen.table.cursor_key
        await pilot.press("slash", "backspace")
        await pilot.pause()
        assert screen.table.cursor_key == kept
