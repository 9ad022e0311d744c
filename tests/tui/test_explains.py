"""The app explains itself (issue 12): a key that cannot act says why; the dialog's
boxes read without colour; each modal's footer shows its own keys; help says how to
close it and what the columns and marks mean. Pilot tests over the fake source."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual.widgets import Footer, Markdown, SelectionList, Static
from textual.widgets._footer import FooterKey

from numatui.app import NumatuiApp
from numatui.model.topology import Topology
from numatui.screens.detail import ProcessDetailScreen
from numatui.screens.help import HelpScreen
from numatui.screens.migrate_dialog import MigrateDialog
from numatui.screens.migration import MigrationScreen
from numatui.screens.processes import ProcessesScreen
from numatui.units import format_bytes

from .conftest import open_dialog, quiet_app, settle, wait_until
from .fakes import FakeSource, MiB, MigrationScript, single_node, two_nodes

MISPLACED_PID = 100 + 3 * 37


def messages(app: NumatuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_m_on_a_single_node_machine_says_why() -> None:
    app = quiet_app(FakeSource(topology_factory=single_node))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("m")
        assert await wait_until(lambda: bool(messages(app)))
        assert isinstance(app.screen, ProcessesScreen)
        (message,) = messages(app)
        assert "migration unavailable" in message and "single" in message.lower()


async def test_m_and_enter_with_no_process_selected_say_why() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        await pilot.press("slash", *"no-such-process-here", "enter")
        await settle(pilot)
        assert screen.table.row_count == 0
        await pilot.press("m")
        await pilot.press("enter")
        assert await wait_until(lambda: len(messages(app)) == 2)
        assert all("no process is selected" in m for m in messages(app))
        assert app.screen is screen


async def test_stop_and_back_during_an_unstoppable_migration_say_why() -> None:
    release = threading.Event()
    source = FakeSource(script=MigrationScript(steps=4, step_s=0.25, hold_after_first=release))
    app = quiet_app(source)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        await open_dialog(pilot, MISPLACED_PID)
        await pilot.press("enter")
        await pilot.pause()
        view = app.screen
        assert isinstance(view, MigrationScreen)
        assert await wait_until(lambda: view.latest is not None)
        await pilot.press("x")
        assert await wait_until(lambda: bool(messages(app)))
        assert "cannot be stopped" in messages(app)[-1]
        await pilot.press("b")
        assert await wait_until(lambda: len(messages(app)) == 2)
        assert "still running" in messages(app)[-1]
        assert app.screen is view
        release.set()
        await settle(pilot)
        await pilot.press("x")
        assert await wait_until(lambda: len(messages(app)) == 3)
        assert "the migration is over" in messages(app)[-1]


async def test_dialog_boxes_read_without_colour() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, MISPLACED_PID)
        for list_id in ("#sources", "#targets"):
            options = dialog.query_one(list_id, SelectionList)
            for index in range(options.option_count):
                value = options.get_option_at_index(index).value
                line = options.render_line(index).text
                mark = "[x]" if value in options.selected else "[ ]"
                assert line.startswith(mark + " node"), (list_id, line)
                assert "▐" not in line and "▌" not in line
        stoppable = dialog.query_one("#stoppable")
        assert str(stoppable.render()).startswith("[ ] stoppable")
        await pilot.press("x")
        await pilot.pause()
        assert str(stoppable.render()).startswith("[x] stoppable")


def footer_keys(app: NumatuiApp) -> set[str]:
    """The key descriptions the footer drawn on the active screen shows."""
    screen = app.screen
    footers = list(screen.query(Footer))
    assert footers, f"{type(screen).__name__} has no footer of its own"
    return {str(key.description) for key in footers[0].query(FooterKey)}


async def test_footer_keys_follow_the_footers_width() -> None:
    # Each key is born with the footer's style (numatui/widgets/footer.py) and still
    # follows it when the terminal narrows or widens.
    app = quiet_app(FakeSource())

    def compact() -> set[bool]:
        keys = list(app.screen.query(FooterKey))
        assert keys and all(key.compact == key.has_class("-compact") for key in keys)
        return {key.compact for key in keys}

    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert compact() == {False}
        await pilot.resize_terminal(80, 48)
        await settle(pilot)
        assert compact() == {True}
        await pilot.press("N")  # another screen's footer, composed while narrow
        await settle(pilot)
        assert compact() == {True}
        await pilot.resize_terminal(160, 48)
        await settle(pilot)
        assert compact() == {False}


async def test_each_modal_shows_its_own_keys_in_the_footer() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, MISPLACED_PID)
        keys = footer_keys(app)
        assert {"Migrate", "Cancel", "Stoppable"} <= keys, keys
        assert not keys & {"Sort", "Reverse", "Node", "Filter"}, keys
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = footer_keys(app)
        assert {"Close help", "Quit"} <= keys, keys
        assert not keys & {"Sort", "Reverse", "Node", "Filter", "Migrate"}, keys
        assert dialog not in app.screen_stack


async def test_help_says_how_to_close_and_explains_every_column_and_mark() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        assert "**escape** or **?** to close this help" in text
        assert "**q** quits numatui" in text
        for term in ("**LOCAL**", "**N0**", "`·`", "`?`", "`!`", "**TIER**", "**KIND**",
                     "**HIT/s**", "**HUGE free/total**", "**RSS**"):  # fmt: skip
            assert term in text, term
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, ProcessesScreen)


async def test_q_in_help_quits_as_help_says() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        assert await wait_until(lambda: not app.is_running, timeout_s=10)


async def test_the_dialog_shows_one_free_number_the_one_its_warning_uses() -> None:
    """The target list was drawn from the app's last refresh; the plan (and its warning)
    read the nodes again. After the preview both say the plan's number, written alike."""
    source = FakeSource()
    app = quiet_app(source)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, MISPLACED_PID)
        (target,) = dialog.to_nodes
        fuller = MiB // 2  # less than the process has to move (1.5 MiB): the plan warns

        def full_target(tick: int) -> Topology:
            topology = two_nodes(tick)
            nodes = tuple(
                replace(n, mem_free=fuller) if n.id == target else n for n in topology.nodes
            )
            return replace(topology, nodes=nodes)

        source.topology_factory = full_target
        await pilot.press("x")  # a new choice: a new plan, read from the fuller node
        await settle(pilot)
        assert dialog.plan is not None and dialog.plan.stoppable
        found = [w.message for w in dialog.plan.warnings if "free for" in w.message]
        assert found, (dialog.plan.warnings, dialog.plan.bytes_to_move, dialog.plan.pairs)
        warning = found[0]
        assert f"has {format_bytes(fuller)} free" in warning
        targets = dialog.query_one("#targets", SelectionList)
        prompt = str(targets.get_option(f"target-{target}").prompt)
        assert f"{format_bytes(fuller)} free" in prompt, (prompt, warning)
        assert f"has {format_bytes(fuller)} free" in text_of_preview(dialog)


def text_of_preview(dialog: MigrateDialog) -> str:
    return str(dialog.query_one("#preview", Static).render())


async def test_m_on_the_detail_of_an_exited_process_says_why() -> None:
    app = quiet_app(FakeSource())
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        screen.select_pid(MISPLACED_PID)
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, ProcessDetailScreen)
        detail.gone = True
        await pilot.press("m")
        assert await wait_until(lambda: bool(messages(app)))
        assert "has exited" in messages(app)[-1]
        assert app.screen is detail
