"""Drain one node: the dry run's per-process plan, then the whole drain's progress and report.

Opened from the nodes screen (`d` on a node). The plan comes from `source.plan_drain`
in a worker; Enter runs `source.drain` (paced, one process after another) in a
worker, `x` stops it between chunks, Escape closes (nothing is done before Enter).
Process names are untrusted: every line goes through `plain_lines`.
"""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Label, Static

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.model.drain import DrainPlan, DrainProgress, DrainReport
from numatui.safe_text import plain, plain_lines
from numatui.screens.base import NumatuiModal
from numatui.screens.lifecycle import while_attached
from numatui.units import human_bytes
from numatui.widgets.footer import KeysFooter


class DrainPlanned(Message):
    def __init__(self, plan: DrainPlan) -> None:
        super().__init__()
        self.plan = plan


class DrainAdvanced(Message):
    def __init__(self, progress: DrainProgress) -> None:
        super().__init__()
        self.progress = progress


class DrainFinished(Message):
    def __init__(self, report: DrainReport | None, error: str | None) -> None:
        super().__init__()
        self.report = report
        self.error = error


def plan_lines(plan: DrainPlan) -> list[str]:
    if plan.refusal is not None:
        return [f"refused: {plan.refusal.message}", "nothing was done"]
    lines = [f"{len(plan.items)} process(es) with memory on node {plan.node}:"]
    for item in plan.items:
        where = (
            f"→ node {item.target}"
            if item.target is not None
            else f"stays: {item.refusal.message if item.refusal else '?'}"
        )
        lines.append(f"  {item.pid:>7}  {item.name}  {human_bytes(item.bytes_on_node):>9}  {where}")
    lines.append(
        f"total {human_bytes(plan.bytes_to_move)} to move, "
        f"{human_bytes(plan.bytes_staying)} staying"
    )
    if plan.unreadable:
        lines.append(f"{plan.unreadable} process(es) could not be read (run as root)")
    return lines


def report_lines(report: DrainReport) -> list[str]:
    node = report.plan.node
    lines = [
        f"{human_bytes(report.bytes_moved)} moved off node {node} in {report.elapsed_s:.1f} s"
        + (" (stopped)" if report.stopped else "")
    ]
    for result in report.results:
        moved = max(0, result.before.get(node, 0) - result.after.get(node, 0))
        lines.append(
            f"  {result.plan.pid:>7}  {result.plan.process_name}: {result.outcome}, "
            f"{human_bytes(moved)}"
        )
        lines.extend(f"           {why}" for why in result.explanations)
    lines.append(
        f"node {node} used: {human_bytes(report.used_before)} before, "
        f"{human_bytes(report.used_after)} after"
    )
    if report.leftovers:
        lines.append("not moved:")
    lines.extend(f"  {human_bytes(left.bytes):>9}  {left.detail}" for left in report.leftovers)
    return lines


class DrainDialog(NumatuiModal[None]):
    """The drain of one node: plan, confirm, progress, report."""

    BINDINGS = [
        Binding("enter", "start", "Drain", priority=True, tooltip="Move it all off the node"),
        Binding("x", "stop", "Stop", tooltip="Stop between chunks; what moved stays moved"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, node: int) -> None:
        super().__init__()
        self.node = node
        self.plan: DrainPlan | None = None
        self.running = False
        self.finished = False
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="drain-dialog"):
            yield Label(plain(f"Drain node {self.node}"), id="drain-title")
            with VerticalScroll(id="drain-body"):
                yield Static(plain("planning: reading every process…"), id="drain-text")
            yield Static(plain("enter: drain   escape: close"), id="drain-status")
        yield KeysFooter()  # the dialog's own keys, not the nodes screen's underneath

    def on_mount(self) -> None:
        self._plan_worker()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="drain-plan",
        description="plan a drain",
    )
    def _plan_worker(self) -> None:
        source = self.numatui.source
        try:
            plan = call_abandonable(lambda: source.plan_drain(self.node))
        except WorkAbandoned:
            return
        except Exception as exc:
            self.post_message(DrainFinished(None, describe_error(exc)))
            return
        self.post_message(DrainPlanned(plan))

    @on(DrainPlanned)
    @while_attached
    def _planned(self, message: DrainPlanned) -> None:
        self.plan = message.plan
        self.query_one("#drain-text", Static).update(plain_lines(plan_lines(message.plan)))
        if message.plan.refusal is not None:
            self._status("escape: close")
        elif not message.plan.bytes_to_move:
            self._status("nothing to move   escape: close")
        else:
            self._status("enter: drain (paced, about 20 ms a chunk)   escape: close")

    def action_start(self) -> None:
        plan = self.plan
        if self.running or self.finished or plan is None or plan.refusal is not None:
            return
        if not plan.bytes_to_move:
            return
        self.running = True
        self._status("draining…   x: stop between chunks")
        self._drain_worker(plan)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="drain-run",
        description="drain a node",
    )
    def _drain_worker(self, plan: DrainPlan) -> None:
        source = self.numatui.source

        def advanced(progress: DrainProgress) -> None:
            self.post_message(DrainAdvanced(progress))

        try:
            report = source.drain(plan, on_progress=advanced, cancel=self._stop)
        except Exception as exc:
            self.post_message(DrainFinished(None, describe_error(exc)))
            return
        self.post_message(DrainFinished(report, None))

    @on(DrainAdvanced)
    @while_attached
    def _advanced(self, message: DrainAdvanced) -> None:
        p = message.progress
        self._status(
            f"draining: {p.processes_done}/{p.processes_total} processes, "
            f"{human_bytes(p.bytes_moved)} of {human_bytes(p.bytes_total)}, "
            f"{p.elapsed_s:.1f} s   x: stop"
        )

    @on(DrainFinished)
    @while_attached
    def _finished(self, message: DrainFinished) -> None:
        self.running = False
        self.finished = True
        text = self.query_one("#drain-text", Static)
        if message.report is not None:
            text.update(plain_lines(report_lines(message.report)))
            self._status("done   escape: close")
        else:
            text.update(plain_lines([f"failed: {message.error}"]))
            self._status("escape: close")

    def action_stop(self) -> None:
        if self.running:
            self._stop.set()
            self._status("stopping after the current chunk…")

    def action_close(self) -> None:
        if self.running:
            self.notify("the drain is running: x stops it first", severity="warning")
            return
        self.dismiss(None)

    def _status(self, text: str) -> None:
        self.query_one("#drain-status", Static).update(plain(text))
