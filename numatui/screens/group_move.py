"""Moving a whole group from the groups view: pick the nodes, then one progress view
for the group and one verdict with each process's outcome under it.

The blocking `source.migrate_group` runs in a thread worker; its progress is posted
as messages. Cgroup paths, names and messages are untrusted: through `safe_text` only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Header, Select, Static

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.model.groups import GROUP_STAT_KINDS, Group, GroupMigrationResult, GroupProgress
from numatui.model.migration import MigrationOutcome
from numatui.model.topology import Topology
from numatui.safe_text import plain, plain_lines, visible
from numatui.screens.base import NumatuiModal, NumatuiScreen
from numatui.screens.common import memory_nodes
from numatui.screens.lifecycle import while_attached
from numatui.units import human_bytes
from numatui.widgets.footer import KeysFooter


@dataclass(frozen=True)
class GroupMoveRequest:
    group: Group
    from_node: int
    to_node: int


class GroupMoveDialog(NumatuiModal[GroupMoveRequest | None]):
    """From which node to which: the group's mapped bytes shown next to each source."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, group: Group, topology: Topology) -> None:
        super().__init__()
        self.group = group
        self.node_ids = [n.id for n in memory_nodes(topology)]

    def compose(self) -> ComposeResult:
        with Vertical(id="group-move-dialog"):
            yield Static(
                plain(
                    "Move every process of ",
                    (self.group.name.label, "bold"),
                    f" ({len(self.group.pids)} now; more that join are moved too)",
                ),
                id="group-move-title",
            )
            sources = [
                (f"node {n}: {human_bytes(self.group.node_bytes.get(n, 0))}", n)
                for n in self.node_ids
            ]
            busiest = max(self.node_ids, key=lambda n: self.group.node_bytes.get(n, 0))
            yield Select(sources, value=busiest, allow_blank=False, id="group-from")
            targets = [(f"node {n}", n) for n in self.node_ids]
            other = next((n for n in self.node_ids if n != busiest), busiest)
            yield Select(targets, value=other, allow_blank=False, id="group-to")
            yield Static(
                "page cache no process maps stays, and the group's memory.numa_stat says how much",
                id="group-move-note",
            )
            with Horizontal(id="group-move-buttons"):
                yield Button("Move", variant="primary", id="group-move-go")
                yield Button("Cancel", id="group-move-cancel")
        # Its own keys: the footer of the groups view underneath would list the table's.
        yield KeysFooter()

    @on(Button.Pressed, "#group-move-go")
    def _go(self) -> None:
        frm = self.query_one("#group-from", Select).value
        to = self.query_one("#group-to", Select).value
        if not isinstance(frm, int) or not isinstance(to, int) or frm == to:
            self.notify("pick two different nodes", severity="warning")
            return
        self.dismiss(GroupMoveRequest(self.group, frm, to))

    @on(Button.Pressed, "#group-move-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class GroupMoveSampled(Message):
    def __init__(self, progress: GroupProgress) -> None:
        super().__init__()
        self.progress = progress


class GroupMoveFinished(Message):
    def __init__(self, result: GroupMigrationResult | None, crash: str = "") -> None:
        super().__init__()
        self.result = result
        self.crash = crash


def group_result_lines(result: GroupMigrationResult) -> list[str]:
    """The verdict, each process under it, the group's accounts before → after, and why."""
    lines = [
        f"{result.outcome}: {human_bytes(result.bytes_moved)} moved from "
        f"{len(result.members)} process(es) in {result.elapsed_s:.1f} s"
    ]
    if result.error is not None:
        lines.append(f"error: {result.error.message}")
    for m in result.members:
        joined = " (joined during the move)" if m.joined_during_move else ""
        if m.result is None:
            lines.append(f"  pid {m.pid} {m.name}{joined}: {m.status}: {m.message}")
        else:
            why = f" · {m.result.explanations[0]}" if m.result.explanations else ""
            lines.append(
                f"  pid {m.pid} {m.name}{joined}: {m.result.outcome}, "
                f"{human_bytes(m.result.bytes_moved)}{why}"
            )
    if result.stat_before is not None and result.stat_after is not None:
        nodes = sorted(
            {n for s in (result.stat_before, result.stat_after) for v in s.values() for n in v}
        )
        lines.append("memory.numa_stat, before → after:")
        for kind in GROUP_STAT_KINDS:
            cells = "   ".join(
                f"N{n} {human_bytes(result.stat_before.get(kind, {}).get(n, 0))} → "
                f"{human_bytes(result.stat_after.get(kind, {}).get(n, 0))}"
                for n in nodes
            )
            lines.append(f"  {kind:<6} {cells}")
    lines += [f"• {why}" for why in result.explanations]
    return lines


class GroupMigrationScreen(NumatuiScreen[None]):
    """One group move from start to verdict; `x` stops before the next process."""

    BINDINGS = [
        Binding("b,escape", "back", "Back to groups"),
        Binding("x", "stop", "Stop", tooltip="Stop before the next process; what moved stays"),
    ]

    def __init__(self, request: GroupMoveRequest) -> None:
        super().__init__()
        self.request = request
        self.cancel_event = threading.Event()
        self.latest: GroupProgress | None = None
        self.result: GroupMigrationResult | None = None
        self.crash = ""

    @property
    def running(self) -> bool:
        return self.result is None and not self.crash

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="group-move-body"):
            yield Static(
                plain(
                    "Moving ",
                    (self.request.group.name.label, "bold"),
                    f" from node {self.request.from_node} to node {self.request.to_node}",
                ),
                id="group-move-heading",
            )
            yield Static("starting…", id="group-move-progress")
            yield Static("", id="group-move-summary")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.title = visible(f"{self.app.title} · group move")
        self._worker()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="group-move",
        description="move a group",
    )
    def _worker(self) -> None:
        request = self.request

        def on_progress(progress: GroupProgress) -> None:
            self.post_message(GroupMoveSampled(progress))

        try:
            result = call_abandonable(
                lambda: self.numatui.source.migrate_group(
                    request.group.path,
                    {request.from_node},
                    {request.to_node},
                    on_progress,
                    self.cancel_event,
                )
            )
        except WorkAbandoned:
            self.cancel_event.set()
            return
        except Exception as exc:
            self.post_message(GroupMoveFinished(None, describe_error(exc)))
            return
        self.post_message(GroupMoveFinished(result))

    @on(GroupMoveSampled)
    @while_attached
    def _sampled(self, message: GroupMoveSampled) -> None:
        if not self.running:
            return
        p = message.progress
        self.latest = p
        self.query_one("#group-move-progress", Static).update(
            plain(
                f"pid {p.pid}: process {p.done + 1} of {p.known} found so far · "
                f"{human_bytes(p.bytes_moved)} moved by the finished ones · "
                f"{p.elapsed_s:.1f} s"
            )
        )

    @on(GroupMoveFinished)
    @while_attached
    def _finished(self, message: GroupMoveFinished) -> None:
        summary = self.query_one("#group-move-summary", Static)
        if message.result is None:
            self.crash = message.crash
            summary.update(plain(("Group move failed", "bold"), ": ", message.crash))
        else:
            self.result = message.result
            self.query_one("#group-move-progress", Static).update("done")
            summary.update(plain_lines(group_result_lines(message.result)))
            summary.set_class(message.result.outcome is MigrationOutcome.ALL_MOVED, "-done")
            summary.set_class(message.result.outcome is MigrationOutcome.PARTLY_MOVED, "-partial")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return True if self.running and not self.cancel_event.is_set() else None
        if action == "back":
            return True if not self.running else None
        return True

    def action_stop(self) -> None:
        self.cancel_event.set()
        self.query_one("#group-move-progress", Static).update(
            "stopping before the next process (what moved stays moved)…"
        )
        self.refresh_bindings()

    def action_back(self) -> None:
        if not self.running:
            self.dismiss(None)
