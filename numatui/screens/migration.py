"""Watching a migration: bars drain on sources and fill on targets, then a summary.

The blocking `source.migrate` runs in a thread worker; each progress sample is
posted as a message and drawn here. The summary says what moved, what did not
and why, in the source's own words (never a traceback).
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.messages import MigrationCrashed, MigrationFinished, MigrationSampled
from numatui.model.memory import ProcessMemory
from numatui.model.migration import (
    MigrationOutcome,
    MigrationPlan,
    MigrationProgress,
    MigrationResult,
    misplaced_bytes,
    planned_bytes,
)
from numatui.model.node_bytes import NodeBytes
from numatui.model.topology import Topology
from numatui.safe_text import plain, plain_lines, visible
from numatui.screens.base import NumatuiScreen
from numatui.screens.lifecycle import while_attached
from numatui.units import human_bytes, human_rate
from numatui.widgets.footer import KeysFooter
from numatui.widgets.node_bars import NodeBar


class MigrationScreen(NumatuiScreen[None]):
    """One migration from start to summary."""

    BINDINGS = [
        Binding(
            "b,escape", "back", "Back to processes", tooltip="The table, with this process selected"
        ),
        Binding(
            "x", "stop", "Stop", tooltip="Stop after the current chunk; what moved stays moved"
        ),
    ]

    def __init__(self, plan: MigrationPlan, process: ProcessMemory, topology: Topology) -> None:
        super().__init__()
        self.plan = plan
        self.process = process
        self.topology = topology
        self.before: NodeBytes = process.node_bytes
        self.latest: MigrationProgress | None = None
        self.result: MigrationResult | None = None
        self.crash: str | None = None
        # A stoppable plan moves in chunks and checks this between them (`x` sets it);
        # any source sees it before starting, and when the app quits.
        self.cancel_event = threading.Event()
        self.stoppable = True  # until a sample says the job cannot stop (one kernel call)
        sources = {s for s, _ in plan.pairs} | set(plan.from_nodes)
        targets = {d for _, d in plan.pairs} | set(plan.to_nodes)
        self.node_ids = sorted(sources | targets)
        self.roles = {
            n: "source+target"
            if n in sources and n in targets
            else "source"
            if n in sources
            else "target"
            for n in self.node_ids
        }

    @property
    def running(self) -> bool:
        return self.result is None and self.crash is None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="migration-body"):
            pairs = ", ".join(f"{s}→{d}" for s, d in self.plan.pairs) or "none"
            yield Static(
                plain(
                    "Migrating ",
                    (self.process.name, "bold"),
                    f" ({self.process.pid}): "
                    f"{human_bytes(self.plan.bytes_to_move)} planned, pairs {pairs}",
                ),
                id="migration-title",
            )
            with Vertical(id="bars"):
                scale = self._scale()
                for node_id in self.node_ids:
                    bar = NodeBar(
                        node_id,
                        self.roles[node_id],
                        self.before.get(node_id, 0),
                        id=f"bar-{node_id}",
                    )
                    bar.scale = scale
                    yield bar
            yield Static("starting…", id="stats")
            yield Static("", id="summary")
            yield DataTable(id="before-after", cursor_type="none", show_cursor=False)
        yield KeysFooter()

    def _scale(self) -> int:
        """Bars share one scale: the most any involved node could hold during the move."""
        total = sum(self.before.get(n, 0) for n in self.node_ids)
        return max(1, total)

    def on_mount(self) -> None:
        # One title, not title + sub-title: the header draws those as separate runs
        # whose joining spaces some SVG renderers drop ("numatui—migration").
        self.title = visible(f"{self.app.title} · migration of pid {self.process.pid}")
        self.sub_title = ""
        self.query_one("#before-after").display = False
        self._migrate_worker()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="migrate",
        description="migrate pages",
    )
    def _migrate_worker(self) -> None:
        def on_progress(progress: MigrationProgress) -> None:
            self.post_message(MigrationSampled(progress))

        try:
            result = call_abandonable(
                lambda: self.numatui.source.migrate(self.plan, on_progress, self.cancel_event)
            )
        except WorkAbandoned:
            self.cancel_event.set()
            return
        except Exception as exc:
            self.post_message(MigrationCrashed(describe_error(exc)))
            return
        self.post_message(MigrationFinished(result))

    @on(MigrationSampled)
    @while_attached
    def _sampled(self, message: MigrationSampled) -> None:
        if not self.running:
            return  # a late sample must not overwrite the final numbers
        self.latest = message.progress
        if self.stoppable and not message.progress.stoppable:
            self.stoppable = False
            self.refresh_bindings()
        self._show_bytes(message.progress.node_bytes)
        self._show_stats(message.progress.node_bytes, message.progress.elapsed_s, final=False)

    def _show_bytes(self, node_bytes: NodeBytes) -> None:
        for node_id in self.node_ids:
            self.query_one(f"#bar-{node_id}", NodeBar).current = node_bytes.get(node_id, 0)

    def _moved(self, node_bytes: NodeBytes) -> int:
        """What is already where the kernel's pairs put it (the verdict's own measure)."""
        planned = planned_bytes(self.before, self.plan.pairs)
        return max(0, planned - misplaced_bytes(self.before, node_bytes, self.plan.pairs))

    def _show_stats(self, node_bytes: NodeBytes, elapsed: float, final: bool) -> None:
        self._show_moved(self._moved(node_bytes), elapsed, final)

    def _show_moved(self, moved: int, elapsed: float, final: bool) -> None:
        planned = self.plan.bytes_to_move
        rate = moved / elapsed if elapsed > 0 else 0.0
        share = f" ({moved / planned:.0%})" if planned else ""
        verb = "moved" if final else "moved so far"
        self.query_one("#stats", Static).update(
            plain(
                f"{verb} {human_bytes(moved)} of {human_bytes(planned)}{share}"
                f" · {human_rate(rate)} · {elapsed:.1f} s elapsed"
            )
        )

    @on(MigrationFinished)
    @while_attached
    def _finished(self, message: MigrationFinished) -> None:
        result = message.result
        self.result = result
        # A result with no counts (the process exited before anything was read) says
        # nothing about where the pages are: the bars keep what was last seen, and the
        # line under them says the result's own figure, never bars drained to zero.
        if result.before or result.after:
            self.before = result.before or self.before
            self._show_bytes(result.after)
        self._show_moved(result.bytes_moved, result.elapsed_s, final=True)
        self._show_summary(result)
        self.refresh_bindings()

    @on(MigrationCrashed)
    @while_attached
    def _crashed(self, message: MigrationCrashed) -> None:
        self.crash = message.message
        summary = self.query_one("#summary", Static)
        summary.update(
            plain_lines(
                [
                    plain(("Migration failed", "bold"), ": ", message.message),
                    "Nothing more will be moved.",
                ]
            )
        )
        summary.set_class(True, "-failed")
        self.query_one("#stats", Static).update(plain("stopped"))
        self.refresh_bindings()

    def _show_summary(self, result: MigrationResult) -> None:
        page = self.topology.page_size or 4096
        # The outcome line is one run of one style, so no renderer can drop its spaces.
        lines: list[str | Text] = [
            plain((f"Outcome: {result.outcome.value} in {result.elapsed_s:.1f} s", "bold"))
        ]
        lines.append(
            f"pages moved: {result.bytes_moved // page:,} ({human_bytes(result.bytes_moved)})"
        )
        if result.pages_not_moved is not None:
            lines.append(f"pages the kernel could not move: {result.pages_not_moved:,}")
        if result.bytes_misplaced:
            lines.append(
                f"not where the kernel's pairs put it: {human_bytes(result.bytes_misplaced)}"
            )
        if result.error is not None:
            name = f"{result.error.errno_name}: " if result.error.errno_name else ""
            # Error text quotes the process's own name: plain_lines escapes every str.
            lines.append(f"error: {name}{result.error.message}")
        lines.extend(f"• {text}" for text in result.explanations)
        if result.audit is not None:  # the path and the reason are text, never markup
            if result.audit.written:
                lines.append(plain("audit: recorded in ", result.audit.path))
            else:
                lines.append(
                    plain(
                        ("audit: NOT recorded", "bold"),
                        " in ",
                        result.audit.path,
                        ": ",
                        result.audit.reason or "",
                    )
                )
        lines.append("press b to go back to the process list")
        summary = self.query_one("#summary", Static)
        summary.update(plain_lines(lines))
        failed = result.outcome is MigrationOutcome.FAILED
        partly = result.outcome is MigrationOutcome.PARTLY_MOVED
        summary.set_class(failed, "-failed")
        summary.set_class(partly, "-partial")
        summary.set_class(not failed and not partly, "-done")
        self._show_before_after(result)

    def _show_before_after(self, result: MigrationResult) -> None:
        table = self.query_one("#before-after", DataTable)
        table.display = True
        table.clear(columns=True)
        table.add_columns("NODE", "ROLE", "BEFORE", "AFTER", "CHANGE")
        for node_id in sorted(set(self.node_ids) | set(result.before) | set(result.after)):
            before = result.before.get(node_id, 0)
            after = result.after.get(node_id, 0)
            delta = after - before
            table.add_row(
                plain(str(node_id)),
                plain(self.roles.get(node_id, "")),
                Text(human_bytes(before), justify="right"),
                Text(human_bytes(after), justify="right"),
                Text(
                    ("+" if delta > 0 else "") + human_bytes(delta) if delta else "·",
                    justify="right",
                ),
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return None if self.running else True
        if action == "stop":
            if not self.running or not self.plan.stoppable:
                return False  # hidden: over, or one migrate_pages call nothing can stop
            return None if self.cancel_event.is_set() or not self.stoppable else True
        return True

    def why_not(self, action: str) -> str | None:
        if action == "back" and self.running:
            how = "x stops it after this chunk" if self.plan.stoppable else "it cannot be stopped"
            return f"the migration is still running: wait for its summary ({how})"
        if action == "stop":
            if not self.running:
                return "the migration is over: nothing to stop"
            if not self.plan.stoppable or not self.stoppable:
                return (
                    "one migrate_pages call cannot be stopped once started; "
                    "tick 'stoppable' in the dialog to move in chunks that can be"
                )
            if self.cancel_event.is_set():
                return "already stopping after the current chunk"
        return None

    def action_stop(self) -> None:
        if not self.running or self.cancel_event.is_set():
            return
        self.cancel_event.set()
        self.query_one("#stats", Static).update(
            plain("stopping after the current chunk… (pages already moved stay moved)")
        )
        self.refresh_bindings()

    def action_back(self) -> None:
        self.numatui.select_process(self.process.pid)
