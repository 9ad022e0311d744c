"""Choose source and target nodes for one process, with the kernel's plan previewed.

Returns the accepted `MigrationPlan`, or None when cancelled (nothing done).
Targets the kernel would refuse are disabled with the reason next to them; the
preview comes from `source.plan` (in a worker) so refusals are the source's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.messages import PlanPreviewed, PlanRefused
from numatui.model.memory import ProcessMemory
from numatui.model.migration import DEFAULT_STALL_S, MigrationPlan, Pacing
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.safe_text import plain, plain_lines
from numatui.screens.base import NumatuiModal
from numatui.screens.common import target_choices
from numatui.screens.lifecycle import while_attached
from numatui.units import format_bytes, human_bytes
from numatui.widgets.footer import KeysFooter
from numatui.widgets.ticks import TickBox, TickList

CHOOSE_NODES = "choose at least one source and one target"
_CHILDREN_READ = ("#sources", "#targets", "#preview", "#stoppable", "#stall-ms", "#confirm")
"""The children the dialog's handlers query: all present, or the dialog is closing."""


class MigrateDialog(NumatuiModal[MigrationPlan | None]):
    """Pick sources (bytes there) and targets (free memory); Enter confirms."""

    BINDINGS = [
        Binding("enter", "confirm", "Migrate", priority=True, tooltip="Start the migration"),
        Binding("escape", "cancel", "Cancel", tooltip="Close; nothing is moved"),
        Binding("tab", "app.focus_next", "Next list", show=False),
        Binding(
            "x",
            "toggle_stoppable",
            "Stoppable",
            tooltip="Move in chunks so the migration can be stopped part way (slower)",
        ),
    ]

    def __init__(self, process: ProcessMemory, topology: Topology, privileges: Privileges) -> None:
        super().__init__()
        self.process = process
        self.topology = topology
        self.plan: MigrationPlan | None = None
        self.refusal: str | None = None
        # The same rules `source.plan` refuses with: a node enabled here is one it accepts.
        self.choices = target_choices(topology, process, privileges)

    def compose(self) -> ComposeResult:
        p = self.process
        with Vertical(id="dialog"):
            yield Label(
                plain("Migrate ", p.name, f" ({p.pid}): {human_bytes(p.numa_bytes)} in memory"),
                id="title",
            )
            with Horizontal(id="lists"):
                with Vertical(classes="column"):
                    yield Label("From (bytes there now)", classes="list-title")
                    yield TickList[int](*self._source_options(), id="sources")
                with Vertical(classes="column"):
                    yield Label("To (free memory)", classes="list-title")
                    yield TickList[int](*self._target_options(), id="targets")
            yield Static(plain(CHOOSE_NODES), id="preview")
            with Horizontal(id="buttons"):
                yield TickBox("stoppable (x), chunks of", False, id="stoppable")
                # Digits and a dot only: typed text never reaches a plan unparsed.
                yield Input(
                    f"{DEFAULT_STALL_S * 1000:g}",
                    restrict=r"[0-9.]*",
                    max_length=6,
                    id="stall-ms",
                    tooltip="the stall budget: each move_pages call takes about this many ms",
                )
                yield Label("ms", id="stall-unit")
                yield Button("Migrate", variant="primary", id="confirm", disabled=True)
                yield Button("Cancel", id="cancel")
        # Its own footer: the one of the screen underneath would list the table's keys.
        yield KeysFooter()

    def _source_options(self) -> list[Selection[int]]:
        # Every node the process has pages on, even unusual ones, and the memory nodes.
        node_ids = sorted(set(self.process.node_bytes) | self.topology.with_memory)
        default = self._default_sources()
        return [
            Selection(
                plain(f"node {n}  {human_bytes(self.process.node_bytes.get(n, 0)):>10}"),
                n,
                n in default,
                id=f"source-{n}",
                disabled=self.process.node_bytes.get(n, 0) <= 0,
            )
            for n in node_ids
        ]

    def _target_options(self, free: Mapping[int, int] | None = None) -> list[Selection[int]]:
        """The targets; `free`: each node's free memory as the latest plan read it."""
        default = self._default_targets()
        options: list[Selection[int]] = []
        for choice in self.choices:
            node = choice.node
            # format_bytes, as the rules' warnings write it: one number, written one way.
            node_free = node.mem_free if free is None else free.get(node.id, node.mem_free)
            prompt = plain(f"node {node.id}  {format_bytes(node_free):>10} free")
            if node.memory_only:
                prompt.append("  memory-only")
            if choice.warning is not None:
                prompt.append(f"  ({choice.warning.short})")
            if choice.reason:
                prompt = plain(f"node {node.id}  — {choice.reason}")
            options.append(
                Selection(
                    prompt,
                    node.id,
                    node.id in default,
                    id=f"target-{node.id}",
                    disabled=not choice.enabled,
                )
            )
        return options

    def _default_sources(self) -> frozenset[int]:
        """Bring memory home: preselect the nodes away from the process's CPUs."""
        away = {n for n, b in self.process.node_bytes.items() if b > 0} - self.process.cpu_nodes
        return frozenset(away) if self._default_targets() else frozenset()

    def _default_targets(self) -> frozenset[int]:
        enabled = {c.node.id for c in self.choices if c.enabled}
        return frozenset(self.process.cpu_nodes & enabled)

    @property
    def from_nodes(self) -> frozenset[int]:
        return frozenset(self.query_one("#sources", SelectionList).selected)

    @property
    def to_nodes(self) -> frozenset[int]:
        return frozenset(self.query_one("#targets", SelectionList).selected)

    @property
    def stoppable(self) -> bool:
        return self.query_one("#stoppable", Checkbox).value

    @property
    def pacing(self) -> Pacing | None:
        """The stall budget typed in the dialog; None while it is not a positive number."""
        try:
            stall_ms = float(self.query_one("#stall-ms", Input).value)
        except ValueError:
            return None
        if not 0 < stall_ms <= 10_000:
            return None
        return Pacing(stall_s=stall_ms / 1000)

    def on_mount(self) -> None:
        if self._is_closing():
            # Opened and closed at once (the app quitting right behind `m`): the mount
            # event comes after the children went (seen under a CPU hog in the suite).
            return
        self.query_one("#sources", SelectionList).focus()
        self._request_preview()

    @on(SelectionList.SelectedChanged)
    @on(Checkbox.Changed, "#stoppable")
    @on(Input.Changed, "#stall-ms")
    def _selection_changed(self) -> None:
        # The mode is part of the plan: a new choice is a new plan, never an edited one.
        self._request_preview()

    def _request_preview(self) -> None:
        if self._is_closing():
            return
        self.plan = None
        self.refusal = None
        self.query_one("#confirm", Button).disabled = True
        from_nodes, to_nodes = self.from_nodes, self.to_nodes
        if not from_nodes or not to_nodes:
            self._show_preview(plain(CHOOSE_NODES), error=False)
            return
        pacing = self.pacing
        if pacing is None:
            self.refusal = "the stall budget must be a number of milliseconds above 0"
            self._show_preview(plain(self.refusal), error=True)
            return
        self._show_preview(plain("asking the kernel layer for the plan…"), error=False)
        self._preview_worker(from_nodes, to_nodes, self.stoppable, pacing)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="plan",
        description="preview a migration",
    )
    def _preview_worker(
        self,
        from_nodes: frozenset[int],
        to_nodes: frozenset[int],
        stoppable: bool,
        pacing: Pacing,
    ) -> None:
        pid = self.process.pid
        source = self.numatui.source
        try:
            plan = call_abandonable(
                lambda: source.plan(pid, from_nodes, to_nodes, stoppable=stoppable, pacing=pacing)
            )
        except WorkAbandoned:
            return
        except Exception as exc:
            self.post_message(PlanRefused(from_nodes, to_nodes, describe_error(exc)))
            return
        self.post_message(PlanPreviewed(plan))

    def _is_closing(self) -> bool:
        # An answer or a change event can land while the app tears the dialog down,
        # children one by one (seen in the suite beside a CPU hog: NoMatches for '#sources'
        # after '#confirm' was still found). Handlers run without awaiting, so children
        # present when a handler starts stay until it returns.
        return not all(self.query(child) for child in _CHILDREN_READ)

    @on(PlanPreviewed)
    @while_attached
    def _plan_previewed(self, message: PlanPreviewed) -> None:
        plan = message.plan
        if self._is_closing() or (
            plan.from_nodes != self.from_nodes
            or plan.to_nodes != self.to_nodes
            or plan.stoppable != self.stoppable
            or plan.pacing != self.pacing
        ):
            return  # an answer to a choice the user has since changed
        self.plan = plan
        self._show_free(plan.free_bytes)
        self._show_preview(self._describe(plan), error=False)
        self.query_one("#confirm", Button).disabled = plan.is_noop

    @on(PlanRefused)
    @while_attached
    def _plan_refused(self, message: PlanRefused) -> None:
        if self._is_closing() or (
            message.from_nodes != self.from_nodes or message.to_nodes != self.to_nodes
        ):
            return
        self.refusal = message.reason
        self._show_preview(plain(f"refused: {message.reason}"), error=True)

    def _show_free(self, free: Mapping[int, int]) -> None:
        """Each target's free memory as the plan (and so its warnings) read it."""
        targets = self.query_one("#targets", SelectionList)
        for option in self._target_options(free):
            index = targets.get_option_index(option.id or "")
            current = targets.get_option_at_index(index)
            if str(current.prompt) != str(option.prompt):
                targets.replace_option_prompt_at_index(index, option.prompt)

    def _describe(self, plan: MigrationPlan) -> Text:
        if plan.is_noop:
            return plain(
                "nothing would move: every chosen source is also a target, or holds nothing"
            )
        lines = ["The kernel will move, in this order:"]
        sizes = plan.bytes_per_pair or tuple(0 for _ in plan.pairs)
        for (src, dst), size in zip(plan.pairs, sizes, strict=False):
            lines.append(f"  node {src} → node {dst}   {human_bytes(size):>10}")
        lines.append(f"  total {human_bytes(plan.bytes_to_move)}")
        if plan.shared_bytes_staying:
            lines.append(
                f"{human_bytes(plan.shared_bytes_staying)} of shared pages will stay: "
                "numatui lacks CAP_SYS_NICE"
            )
        lines.extend(f"warning: {w.message}" for w in plan.warnings)
        return plain_lines(lines)

    def _show_preview(self, text: Text, error: bool) -> None:
        preview = self.query_one("#preview", Static)
        preview.update(text)
        preview.set_class(error, "-error")

    def action_confirm(self) -> None:
        plan = self.plan
        if plan is not None and (plan.stoppable != self.stoppable or plan.pacing != self.pacing):
            plan = None  # the plan for the current choice is still on its way
        if plan is None or plan.is_noop:
            self.notify(
                self.refusal or "choose nodes with something to move first",
                title="not migrating",
                severity="warning",
            )
            return
        self.dismiss(plan)

    def action_toggle_stoppable(self) -> None:
        self.query_one("#stoppable", Checkbox).toggle()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
