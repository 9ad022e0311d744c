"""The home screen: every process, its memory per node, and how local it is.

Updates in place on each refresh (rows of exited processes vanish, changed
cells are rewritten) so the cursor stays on the selected pid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from numatui.model.memory import ProcessMemory
from numatui.model.migration import MigrationPlan
from numatui.model.topology import Topology
from numatui.safe_text import PRINTABLE, plain, plain_lines, visible
from numatui.screens.base import AppState
from numatui.screens.common import (
    READING_PROCESSES,
    is_misplaced,
    machine_migration_blocker,
    memory_nodes,
    process_migration_blocker,
    summary_lines,
)
from numatui.screens.lifecycle import while_attached
from numatui.screens.table_screen import FilteredTableScreen
from numatui.source import Privileges
from numatui.units import human_bytes
from numatui.widgets.filter_input import FilterInput
from numatui.widgets.footer import KeysFooter
from numatui.widgets.process_table import ProcessTable, TableCell, TableColumn, TableRow

# Locality comes before the per-node columns so it stays visible on 80 columns.
FIXED_COLUMNS: tuple[TableColumn, ...] = (
    TableColumn("pid", "PID", numeric=True),
    TableColumn("name", "NAME"),
    TableColumn("user", "USER"),
    TableColumn("rss", "RSS", numeric=True),
    TableColumn("locality", "LOCAL", numeric=True),
)


def _row_values(process: ProcessMemory, node_ids: list[int]) -> dict[str, Any]:
    """The sortable value of each column (cells show these formatted)."""
    values: dict[str, Any] = {
        "pid": process.pid,
        "user": process.user,
        "name": process.name.lower(),
        "rss": process.rss_bytes,
        "locality": -1.0 if process.locality is None else process.locality,
    }
    for node_id in node_ids:
        values[f"node{node_id}"] = process.node_bytes.get(node_id, 0)
    return values


UNKNOWN_CELL = TableCell("?", "zero")  # unknown, not zero: the status line says why
NONE_CELL = TableCell("·", "zero")
NO_LOCALITY_CELL = TableCell("-", "zero")


def _cells(
    process: ProcessMemory, node_ids: list[int], name: str, user: str
) -> tuple[TableCell, ...]:
    """`name` and `user`: the process's, already through `visible`."""
    misplaced = is_misplaced(process)
    locality = process.locality
    if not process.memory_readable:
        locality_cell = UNKNOWN_CELL
    elif locality is None:
        locality_cell = NO_LOCALITY_CELL
    elif misplaced:
        locality_cell = TableCell(f"! {locality:.0%}", "misplaced")
    else:
        locality_cell = TableCell(f"{locality:.0%}", "local")
    cells = [
        TableCell(str(process.pid)),
        TableCell(name, "misplaced" if misplaced else ""),
        TableCell(user),
        TableCell(human_bytes(process.rss_bytes)),
        locality_cell,
    ]
    node_bytes = process.node_bytes
    for node_id in node_ids:
        if not process.memory_readable:
            cells.append(UNKNOWN_CELL)
        else:
            value = node_bytes.get(node_id, 0)
            cells.append(TableCell(human_bytes(value)) if value else NONE_CELL)
    return tuple(cells)


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process as the table shows, sorts and filters it."""

    process: ProcessMemory
    row: TableRow
    values: dict[str, Any]
    search_text: str
    """Name, user and command line as shown (escaped), lower-cased, for the filter: what
    is on screen can be typed, e.g. `\\x1b` finds a name holding an escape character."""


def process_row(process: ProcessMemory, node_ids: list[int]) -> ProcessRow:
    name, user = visible(process.name), visible(process.user)
    return ProcessRow(
        process,
        TableRow(process.pid, _cells(process, node_ids, name, user)),
        _row_values(process, node_ids),
        "\0".join((name, user, visible(process.cmdline))).lower(),
    )


def prepare_rows(
    processes: Iterable[ProcessMemory], node_ids: list[int], previous: Mapping[int, ProcessRow]
) -> dict[int, ProcessRow]:
    """A row per process, reusing `previous` rows of unchanged processes.

    The scanner hands back the very same object for a process that did not
    change, so identity is enough and no process is formatted twice.
    """
    rows: dict[int, ProcessRow] = {}
    for process in processes:
        old = previous.get(process.pid)
        rows[process.pid] = (
            old if old is not None and old.process is process else process_row(process, node_ids)
        )
    return rows


NO_PROCESS = "no process is selected: the list is empty (escape clears the filter)"


class ProcessesScreen(FilteredTableScreen):
    """Processes with memory per node; Enter for detail, `m` to migrate."""

    TABLE_ID = "processes"
    FILTER_ID = "filter"
    FILTER_BAR_ID = "filter-bar"
    DEFAULT_SORT = "rss"
    ASCENDING = frozenset({"pid", "user", "name", "locality"})

    BINDINGS = [
        Binding("m", "migrate", "Migrate", tooltip="Move this process's pages to other nodes"),
        Binding(
            "slash", "filter", "Filter", key_display="/", tooltip="Filter by name, user or pid"
        ),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("r", "reverse_sort", "Reverse", tooltip="Reverse the sort order"),
        Binding("n", "cycle_node", "Node", tooltip="Only processes with memory on one node"),
        Binding("k", "toggle_kernel_threads", "Kthreads", tooltip="Show or hide kernel threads"),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        # Kernel threads have no user memory to see or move: hidden unless asked for.
        self.show_kernel_threads = False
        self._summary_text = ""
        self._status_text = ""
        self._last_blocker: str | None = "not read yet"
        self._shown: dict[int, ProcessMemory] = {}
        self._pending_pid: int | None = None
        # Rows of every process in `shown_state`, with the node columns they were built
        # for; replaced whole (never mutated), so the row worker may read them.
        self._prepared: tuple[list[int], dict[int, ProcessRow]] = ([], {})
        # Ascending orders of the shown rows by column, for the `_shown` they were sorted
        # from: a reverse, or a column sorted by before, costs no sort until the rows change.
        self._orders: tuple[dict[int, ProcessMemory], dict[str, list[ProcessRow]]] = ({}, {})
        self.shown_state: AppState | None = None
        """The refresh whose processes the table shows (rows are built off the UI thread)."""
        self._behind = False
        """A refresh came while another screen covered this one."""

    class RowsPrepared(Message):
        """The row worker formatted a refresh's processes."""

        def __init__(self, state: AppState, node_ids: list[int], rows: dict[int, ProcessRow]):
            super().__init__()
            self.state = state
            self.node_ids = node_ids
            self.rows = rows

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the machine…", id="summary")
        yield Static("", id="status")
        yield ProcessTable(id="processes")
        with Horizontal(id="filter-bar"):
            yield Static("filter:", id="filter-label")
            # A pasted control character would reach the terminal as typed: refused.
            yield FilterInput(placeholder="name, user or pid", id="filter", restrict=PRINTABLE)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#filter-bar").display = False
        self.watch(self.app, "first_topology", self._on_first_topology, init=True)
        self.watch(self.app, "state", self._on_state, init=True)

    # ------------------------------------------------------------ data

    @property
    def selected_pid(self) -> int | None:
        return self.table.cursor_key

    @property
    def selected_process(self) -> ProcessMemory | None:
        pid = self.selected_pid
        return self._shown.get(pid) if pid is not None else None

    def _on_first_topology(self, topology: Topology | None) -> None:
        if topology is None or self.numatui.state is not None:
            return
        self._update_summary(topology, None)
        self.query_one("#status", Static).update(READING_PROCESSES)

    def _on_state(self, state: AppState | None) -> None:
        if state is None:
            return
        if not self.is_active and self.shown_state is not None:
            # Covered (detail, dialog, help): Textual repaints the whole top screen for
            # every message a screen beneath handles, kilobytes a second while idle.
            # The table catches up when it is shown again (on_screen_resume).
            self._behind = True
            return
        self._update_summary(state.topology, state.privileges)
        self._prepare_rows(state)
        # Re-evaluating every binding costs ~1.4% of a core at a 2 s refresh (measured,
        # benchmarks/bench_ui.py): do it only when what `m` depends on changed.
        blocker = machine_migration_blocker(state.topology)
        if blocker != self._last_blocker:
            self._last_blocker = blocker
            self.refresh_bindings()

    def on_screen_resume(self) -> None:
        if self._behind:
            self._behind = False
            self._on_state(self.numatui.state)

    def _update_summary(self, topology: Topology, privileges: Privileges | None) -> None:
        blocker = machine_migration_blocker(topology)
        text = "\n".join(summary_lines(topology, privileges))
        if text != self._summary_text:  # an unchanged Static.update still re-renders
            self._summary_text = text
            summary = self.query_one("#summary", Static)
            summary.update(plain_lines(text.split("\n")))  # numatui's own lines, joined above
            summary.set_class(blocker is not None, "-blocked")

    def _update_status(self) -> None:
        state = self.shown_state
        parts: list[str] = []
        if state is not None:
            scan = state.scan
            shown = len(self._shown)
            total = len(scan.processes)
            parts.append(
                f"{shown} of {total} processes" if shown != total else f"{total} processes"
            )
            if scan.unreadable:
                # Their memory shows as ?; root can read all but the odd process (the detail
                # screen says why), so only a user without root is told what would help.
                why = "" if state.privileges.is_root else " (needs root)"
                parts.append(f"{scan.unreadable} unreadable{why}")
        direction = "↓" if self.sort_reverse else "↑"
        parts.append(f"sort {self._column_title(self.sort_key)} {direction}")
        if self.node_limit is not None:
            parts.append(f"node {self.node_limit} only")
        if state is not None and not self.show_kernel_threads:
            kernel = sum(1 for p in state.scan.processes if p.is_kernel_thread)
            if kernel:
                noun = "kernel thread" if kernel == 1 else "kernel threads"
                parts.append(f"{kernel} {noun} hidden (k)")
        if self.filter_text:
            parts.append(f"filter “{self.filter_text}”")
        if self.numatui.last_error:
            parts.append(f"last refresh failed: {self.numatui.last_error}")
        status = " · ".join(parts)
        if status != self._status_text:
            self._status_text = status
            # The filter and the last error are untrusted: shown escaped, never as markup.
            line = self.query_one("#status", Static)
            # A status of fixed height keeps its size: no layout of the whole screen for
            # it. A sort changes it, and that reflow and redraw of every widget cost more
            # CPU than the sort itself (profiled, 2,000 rows). Narrow, it wraps (auto).
            height = line.styles.height
            line.update(plain(status), layout=height is None or height.is_auto)

    def _column_title(self, key: str) -> str:
        column = self.table.columns.get(key)
        return column.label if column is not None else key

    def _matches(self, row: ProcessRow, needle: str) -> bool:
        process = row.process
        if process.is_kernel_thread and not self.show_kernel_threads:
            return False
        if self.node_limit is not None and process.node_bytes.get(self.node_limit, 0) <= 0:
            return False
        if not needle:
            return True
        return needle in row.search_text or needle == str(process.pid)

    def _columns_for(self, topology: Topology) -> list[int]:
        return [n.id for n in memory_nodes(topology)]

    def _build_columns(self) -> None:
        nodes = [TableColumn(f"node{n}", f"N{n}", numeric=True) for n in self._node_ids]
        self.table.set_columns([*FIXED_COLUMNS, *nodes])

    # Formatting 2,000 changed rows takes tens of milliseconds: done in a thread so a
    # key pressed meanwhile is answered at once (benchmarks/bench_ui.py).
    @work(
        thread=True,
        exclusive=True,
        group="process-rows",
        exit_on_error=False,
        description="format the process rows",
    )
    def _prepare_rows(self, state: AppState) -> None:
        node_ids = self._columns_for(state.topology)
        built_for, previous = self._prepared
        reusable = previous if built_for == node_ids else {}
        rows = prepare_rows(state.scan.processes, node_ids, reusable)
        if not get_current_worker().is_cancelled:
            self.post_message(self.RowsPrepared(state, node_ids, rows))

    @on(RowsPrepared)
    @while_attached
    def _rows_prepared(self, message: RowsPrepared) -> None:
        if message.state is not self.numatui.state:
            return  # a newer refresh's rows are on their way
        if message.node_ids != self._node_ids or not self.table.columns:
            self._node_ids = message.node_ids
            self._build_columns()
        self._keep_sort_column()
        self._prepared = (message.node_ids, message.rows)
        self.shown_state = message.state
        self._refilter()

    def _refilter(self) -> None:
        needle = self.filter_text.strip().lower()
        self._shown = {
            pid: row.process for pid, row in self._prepared[1].items() if self._matches(row, needle)
        }
        self._show_sorted()

    def _show_sorted(self) -> None:
        """Sort the shown processes and hand them to the table, the cursor kept on its pid."""
        key = self.sort_key
        rows = self._ascending(key)
        if self.sort_reverse:
            rows = rows[::-1]  # ties go by pid, so this is the descending order
        keep = self._pending_pid if self._pending_pid in self._shown else None
        if keep is not None:
            self._pending_pid = None
        self.table.set_sort(key, self.sort_reverse)
        self.table.set_rows([r.row for r in rows], keep_key=keep)
        self._update_status()

    def _ascending(self, key: str) -> list[ProcessRow]:
        """The shown rows by `key`, ties broken by pid (the order then stays the same from
        one refresh to the next); kept until `_shown` is replaced."""
        shown, orders = self._orders
        if shown is not self._shown:
            shown, orders = self._shown, {}
            self._orders = (shown, orders)
        rows = orders.get(key)
        if rows is None:
            prepared = self._prepared[1]
            rows = [prepared[pid] for pid in shown]
            rows.sort(key=lambda r: (r.values[key], r.process.pid))
            orders[key] = rows
        return rows

    def select_pid(self, pid: int) -> None:
        """Put the cursor on `pid` now, or when it next appears in a scan."""
        if pid in self._shown:
            self.table.move_cursor(self.table.get_row_index(pid))
        else:
            self._pending_pid = pid
        self.table.focus()

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "migrate":
            state = self.numatui.state
            if state is None or machine_migration_blocker(state.topology) is not None:
                return None  # shown disabled; pressed, the app shows `why_not`
        return True

    def why_not(self, action: str) -> str | None:
        if action == "migrate":
            state = self.numatui.state
            if state is None:
                return "still reading the processes: try again in a moment"
            return machine_migration_blocker(state.topology)
        return None

    def action_open_detail(self) -> None:
        process = self.selected_process
        if process is None:
            self.notify(NO_PROCESS, title="no detail", severity="warning")
            return
        from numatui.screens.detail import ProcessDetailScreen

        def migrate_requested(migrate: bool | None) -> None:
            if migrate:
                self.select_pid(process.pid)
                self.action_migrate()

        self.app.push_screen(ProcessDetailScreen(process), migrate_requested)

    @on(ProcessTable.RowSelected, "#processes")
    def _row_selected(self, event: ProcessTable.RowSelected) -> None:
        event.stop()
        self.action_open_detail()

    def action_toggle_kernel_threads(self) -> None:
        self.show_kernel_threads = not self.show_kernel_threads
        self._refilter()

    def action_migrate(self) -> None:
        state = self.numatui.state
        process = self.selected_process
        if state is None or process is None:
            self.notify(
                self.why_not("migrate") or NO_PROCESS, title="cannot migrate", severity="warning"
            )
            return
        blocker = machine_migration_blocker(state.topology) or process_migration_blocker(process)
        if blocker:
            self.notify(blocker, title="cannot migrate", severity="warning")
            return
        from numatui.screens.migrate_dialog import MigrateDialog

        def start(plan: MigrationPlan | None) -> None:
            if plan is None:
                return
            from numatui.screens.migration import MigrationScreen

            self.app.push_screen(MigrationScreen(plan, process, state.topology))

        self.app.push_screen(MigrateDialog(process, state.topology, state.privileges), start)

    def palette_commands(self) -> Iterable[SystemCommand]:
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Migrate selected process", "Choose source and target nodes", self.action_migrate),
            ("Process detail", "Memory by kind and mappings", self.action_open_detail),
            ("Filter processes", "By name, user or pid", self.action_filter),
            ("Sort by next column", "Cycle the sort column", self.action_cycle_sort),
            ("Limit to next node", "Only processes with memory there", self.action_cycle_node),
            (
                "Show or hide kernel threads",
                "They have no user memory to move",
                self.action_toggle_kernel_threads,
            ),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
