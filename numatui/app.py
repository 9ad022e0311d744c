"""The numatui Textual app: owns the data source, the refresh cycle and the screens.

The app never reads the machine itself: it is handed a `DataSource` and calls
it only from thread workers. A refresh re-arms its timer only after the
previous one finished, so refreshes never overlap; results arrive as messages
(`numatui.messages`) and land in the reactive `state` that screens watch.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from functools import partial

from textual import events, on, work
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.first_read import FirstRead
from numatui.history import NodeHistory
from numatui.messages import Refreshed, SourceFailed, TopologyRead
from numatui.model.memory import ProcessScan
from numatui.model.topology import Topology
from numatui.quiet_gc import QuietCollector
from numatui.safe_text import visible
from numatui.screens.base import AppState
from numatui.screens.processes import ProcessesScreen
from numatui.source import DataSource, Privileges
from numatui.terminal_watch import terminal_gone

NARROW_WIDTH = 81
"""Terminals narrower than this get the `narrow` class (fewer columns, shorter labels)."""
SHORT_HEIGHT = 30
"""Terminals lower than this get the `short` class (dialogs drop margins, 1-line buttons)."""


def _kinds_read(scan: ProcessScan) -> bool:
    """False for the app's first, list scan (bytes per node only; the full scan follows)."""
    return all(p.kinds_read for p in scan.processes)


def _nodes_screen() -> Screen[None]:
    """The nodes view, imported when first opened (~4 ms, with Textual's DataTable, that
    the first frame need not wait for)."""
    from numatui.screens.nodes import NodesScreen

    return NodesScreen()


def _groups_screen() -> Screen[None]:
    """The groups view, imported when first opened: its module and the group models cost
    ~10 ms that the first frame need not wait for."""
    from numatui.screens.groups import GroupsScreen

    return GroupsScreen()


class NumatuiApp(App[None]):
    """See where every process's memory lives per NUMA node, and move it.

    `NumatuiApp(source).run()`; `refresh_interval` is seconds between the end of
    one scan and the start of the next.
    """

    TITLE = "numatui"
    CSS_PATH = [
        "app.tcss",
        "screens/processes.tcss",
        "screens/nodes.tcss",
        "screens/detail.tcss",
        "screens/migrate_dialog.tcss",
        "screens/migration.tcss",
        "screens/help.tcss",
        "screens/groups.tcss",
    ]
    MODES = {"processes": ProcessesScreen, "nodes": _nodes_screen, "groups": _groups_screen}
    DEFAULT_MODE = "processes"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Leave numatui (nothing is left running)"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Keys and what they do"),
        Binding("p", "show_processes", "Processes", tooltip="Processes and their memory per node"),
        Binding("N", "show_nodes", "Nodes", tooltip="Nodes, distances and usage over time"),
        Binding("g", "show_groups", "Groups", tooltip="cgroups: services, containers, pods"),
        Binding("u", "refresh_now", "Update", tooltip="Read the machine again now"),
        Binding(
            "colon", "command_palette", "Commands", key_display=":", tooltip="Search every action"
        ),
        # Ctrl-C leaves at once, with the status a shell expects of an interrupted command.
        Binding("ctrl+c", "interrupt", show=False, priority=True),
    ]

    # Not repainting: screens watch these and redraw only what changed; a repaint here
    # would redraw the whole terminal on every refresh (kilobytes a second, idle).
    state: reactive[AppState | None] = reactive(None, always_update=True, repaint=False)
    first_topology: reactive[Topology | None] = reactive(None, repaint=False)
    """The nodes, as soon as the first refresh has read them (before its process scan)."""

    def __init__(
        self,
        source: DataSource,
        *,
        refresh_interval: float = 2.0,
        history_capacity: int = 120,
        first_read: FirstRead | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self._first_read = first_read
        self.refresh_interval = refresh_interval
        self.history = NodeHistory(history_capacity)
        self.last_error: str | None = None
        self._refreshing = False
        self._refresh_count = 0
        self._timer: Timer | None = None
        self._full_scan_due = False  # the last scan was a list scan: the full one next
        self._privileges: Privileges | None = None
        self.collector = QuietCollector()
        self._is_ready = False
        self._exit_signal: int | None = None
        self.took_terminal = False
        """Set on load: Textual's driver starts next and gives the terminal back on every
        way out (until then a splash, numatui/splash.py, is the launcher's to withdraw)."""

    GC_CHECK_S = 10.0
    """How often the quiet full garbage collection is considered (numatui/quiet_gc.py)."""

    TERMINAL_CHECK_S = 3.0
    """How often the app asks whether its terminal hung up without a SIGHUP
    (numatui/terminal_watch.py); it then leaves as on SIGHUP."""

    # ------------------------------------------------------------ leaving

    EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def on_load(self) -> None:
        self.took_terminal = True
        # Before the first screen mounts: read already (numatui/first_read.py), the nodes
        # are in its first frame.
        early = self._first_read.ready() if self._first_read is not None else None
        if early is not None:
            self._privileges, self.first_topology = early
        # Through the event loop, so the exit takes Textual's normal way out, which gives
        # the terminal back (alternate screen left, mouse tracking off, cursor shown).
        if threading.current_thread() is threading.main_thread() and not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in self.EXIT_SIGNALS:
                loop.add_signal_handler(signum, self._exit_on_signal, signum)

    def _exit_on_signal(self, signum: int) -> None:
        # Exiting while the first screen is still being composed fails inside Textual:
        # a signal that early waits for the app to be ready (on_ready), then exits.
        self._exit_signal = signum
        if self._is_ready:
            self.exit(return_code=128 + signum)

    def on_ready(self) -> None:
        self._is_ready = True
        if self._exit_signal is not None:
            self.exit(return_code=128 + self._exit_signal)

    def _leave_if_terminal_gone(self, fd: int) -> None:
        if terminal_gone(fd):
            self._exit_on_signal(signal.SIGHUP)

    def action_interrupt(self) -> None:
        self.exit(return_code=130)

    # ------------------------------------------------------------ refresh cycle

    def on_mount(self) -> None:
        self.refresh_data()
        self.collector.start()
        self.set_interval(self.GC_CHECK_S, self.collector.tick)
        stdin = sys.__stdin__  # what Textual's driver reads keys from
        if not self.is_headless and stdin is not None and stdin.isatty():
            self.set_interval(
                self.TERMINAL_CHECK_S, partial(self._leave_if_terminal_gone, stdin.fileno())
            )

    def on_unmount(self) -> None:
        self.collector.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(
            event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)
        ):
            self.collector.saw_input()
        await super().on_event(event)

    def refresh_data(self) -> None:
        """Start one refresh unless one is running (the timer re-arms when it ends)."""
        if self._refreshing:
            return
        self._refreshing = True
        self._refresh_worker(self.state.scan if self.state else None)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="refresh",
        description="read topology and processes",
    )
    def _refresh_worker(self, previous: ProcessScan | None) -> None:
        try:
            privileges = self._privileges or call_abandonable(self.source.privileges)
            topology = call_abandonable(self.source.topology)
            if previous is None:
                # The first scan reads every process (seconds on a loaded machine): show
                # the nodes meanwhile.
                self.post_message(TopologyRead(topology, privileges))
            # The first scan reads what the table shows, bytes per node (several times
            # cheaper than the split by kind); the full read follows at once.
            first = previous is None
            early = self._first_read if first else None
            scan = call_abandonable(
                lambda: (
                    (early.take_scan() if early is not None else None)
                    or self.source.scan(previous, nodes_only=first)
                ),
                background=True,
            )
        except WorkAbandoned:
            return
        except Exception as exc:
            self.post_message(SourceFailed("refresh", describe_error(exc)))
            return
        self.post_message(Refreshed(topology, scan, privileges))

    @on(Refreshed)
    def _on_refreshed(self, message: Refreshed) -> None:
        self._privileges = message.privileges
        self._refresh_count += 1
        # The full scan completing a list scan is the same refresh, for the charts' time axis.
        if self.state is None or _kinds_read(self.state.scan):
            self.history.add(message.topology)
        self.last_error = None
        self.state = AppState(
            message.topology, message.scan, message.privileges, self._refresh_count
        )
        self._rearm(at_once=not _kinds_read(message.scan))

    @on(TopologyRead)
    def _on_topology_read(self, message: TopologyRead) -> None:
        self._privileges = message.privileges
        if self.state is None:
            self.first_topology = message.topology

    @on(SourceFailed)
    def _on_source_failed(self, message: SourceFailed) -> None:
        if message.what == "refresh":
            self.last_error = message.message
            self._rearm()
        self.notify(message.message, title=f"numatui could not {message.what}", severity="error")

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        # Safety net: the worker catches source errors itself; anything else lands here.
        if event.worker.group != "refresh":
            return
        if event.state.name in ("ERROR", "CANCELLED"):
            self._refreshing = False
            if event.worker.error is not None:
                self.notify(describe_error(event.worker.error), severity="error")
        elif event.state.name == "SUCCESS" and self._full_scan_due:
            # Started only once the list scan's worker has ended: a new worker in the
            # exclusive group would cancel it.
            self._full_scan_due = False
            self.refresh_data()

    def _rearm(self, at_once: bool = False) -> None:
        self._refreshing = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if at_once:
            self._full_scan_due = True
        else:
            self._timer = self.set_timer(self.refresh_interval, self.refresh_data)

    # ------------------------------------------------------------ actions

    def action_refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.refresh_data()

    def action_show_nodes(self) -> None:
        self.switch_mode("nodes")

    def action_show_groups(self) -> None:
        self.switch_mode("groups")

    def action_show_processes(self) -> None:
        self.switch_mode("processes")

    def action_help(self) -> None:
        # Imported on first use: its Markdown widget pulls in ~110 modules (markdown-it,
        # pygments), a quarter of start-up imports, seconds in a TCG guest reading over 9p.
        from numatui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def select_process(self, pid: int) -> None:
        """Back to the processes table with `pid` selected (after a migration)."""
        self.switch_mode("processes")
        screen = self.screen
        while len(self.screen_stack) > 1:
            self.pop_screen()
            screen = self.screen
        if isinstance(screen, ProcessesScreen):
            screen.select_pid(pid)
        self.action_refresh_now()

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Run `action`; when its screen disables it, say why instead of doing nothing.

        Textual skips a key whose action `check_action` disables or hides; a numatui
        screen's `why_not(action)` gives the reason, shown as a notification.
        """
        if await super().run_action(action, default_namespace, namespaces):
            return True
        if isinstance(action, str) and "." not in action.split("(", 1)[0]:
            why_not = getattr(default_namespace, "why_not", None)
            reason = why_not(action.split("(", 1)[0]) if callable(why_not) else None
            if isinstance(reason, str) and reason:
                self.notify(reason, title="nothing done", severity="warning")
                return True
        return False

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is plain text, whoever asks (screens call this too): messages
        carry process names and paths, which must never be read as markup."""
        super().notify(
            visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False
        )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Processes", "Processes and their memory per node", self.action_show_processes
        )
        yield SystemCommand("Nodes", "Nodes, distances and usage over time", self.action_show_nodes)
        yield SystemCommand("Groups", "cgroups with memory per node", self.action_show_groups)
        yield SystemCommand(
            "Refresh now", "Read topology and processes again", self.action_refresh_now
        )
        yield SystemCommand("Help", "Keys and what they do", self.action_help)
        if isinstance(screen, ProcessesScreen):
            yield from screen.palette_commands()
        yield from super().get_system_commands(screen)

    # ------------------------------------------------------------ layout

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "narrow")
        self.set_class(event.size.height < SHORT_HEIGHT, "short")
