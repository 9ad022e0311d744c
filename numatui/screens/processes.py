"""The home screen: every process, its memory per node, and how local it is.

Updates in place on each refresh (rows of exited processes vanish, changed
cells are rewritten) so the cursor stays on the selected pid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from numatui.model import MigrationPlan, ProcessMemory, Topology
from numatui.screens.common import (
    is_misplaced,
    machine_migration_blocker,
    memory_nodes,
    nodes_summary,
    privilege_note,
    process_migration_blocker,
)
from numatui.units import human_bytes

if TYPE_CHECKING:
    from numatui.app import AppState, NumatuiApp

# Locality comes before the per-node columns so it stays visible on 80 columns.
FIXED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pid", "PID"),
    ("name", "NAME"),
    ("user", "USER"),
    ("rss", "RSS"),
    ("locality", "LOCAL"),
)


class ProcessTable(DataTable[Any]):
    """The process table; component classes let the .tcss colour misplaced rows."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {
        "process-table--misplaced",
        "process-table--local",
        "process-table--zero",
    }
    # Shown in the Footer: the table takes Enter before the screen would.
    BINDINGS = [Binding("enter", "select_cursor", "Detail", tooltip="Memory by kind and mappings")]


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


class ProcessesScreen(Screen[None]):
    """Processes with memory per node; Enter for detail, `m` to migrate."""

    BINDINGS = [
        Binding("m", "migrate", "Migrate", tooltip="Move this process's pages to other nodes"),
        Binding(
            "slash", "filter", "Filter", key_display="/", tooltip="Filter by name, user or pid"
        ),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("r", "reverse_sort", "Reverse", tooltip="Reverse the sort order"),
        Binding("n", "cycle_node", "Node", tooltip="Only processes with memory on one node"),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.node_limit: int | None = None
        self._summary_text = ""
        self._status_text = ""
        self._last_blocker: str | None = "not read yet"
        self.sort_key = "rss"
        self.sort_reverse = True
        self._node_ids: list[int] = []
        self._shown: dict[int, ProcessMemory] = {}
        self._sort_values: dict[int, dict[str, Any]] = {}
        self._pending_pid: int | None = None
        # Cells per process snapshot: unchanged processes (same object from the scanner)
        # are never formatted twice, which keeps filter and node changes fast.
        self._cell_cache: dict[int, tuple[ProcessMemory, list[Any]]] = {}
        self._table: ProcessTable | None = None

    @property
    def numatui(self) -> NumatuiApp:
        from numatui.app import NumatuiApp

        assert isinstance(self.app, NumatuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the machine…", id="summary")
        yield Static("", id="status")
        yield ProcessTable(id="processes", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="filter-bar"):
            yield Static("filter:", id="filter-label")
            yield Input(placeholder="name, user or pid", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter-bar").display = False
        self.watch(self.numatui, "first_topology", self._on_first_topology, init=True)
        self.watch(self.numatui, "state", self._on_state, init=True)

    # ------------------------------------------------------------ data

    @property
    def table(self) -> ProcessTable:
        if self._table is None:
            self._table = self.query_one(ProcessTable)
        return self._table

    @property
    def selected_pid(self) -> int | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        except Exception:
            return None
        return int(key.value) if key.value is not None else None

    @property
    def selected_process(self) -> ProcessMemory | None:
        pid = self.selected_pid
        return self._shown.get(pid) if pid is not None else None

    def _on_first_topology(self, topology: Topology | None) -> None:
        if topology is None or self.numatui.state is not None:
            return
        lines = [nodes_summary(topology)]
        blocker = machine_migration_blocker(topology)
        if blocker:
            lines.append(blocker)
        summary = self.query_one("#summary", Static)
        summary.update("\n".join(lines))
        summary.set_class(blocker is not None, "-blocked")
        self.query_one("#status", Static).update("reading every process's memory per node…")

    def _on_state(self, state: AppState | None) -> None:
        if state is None:
            return
        self._update_summary(state)
        self._update_table(state, rebuild=False)
        # Re-evaluating every binding costs ~1.4% of a core at a 2 s refresh (measured,
        # benchmarks/bench_ui.py): do it only when what `m` depends on changed.
        blocker = machine_migration_blocker(state.topology)
        if blocker != self._last_blocker:
            self._last_blocker = blocker
            self.refresh_bindings()

    def _update_summary(self, state: AppState) -> None:
        lines = [nodes_summary(state.topology)]
        blocker = machine_migration_blocker(state.topology)
        if blocker:
            lines.append(blocker)
        else:
            note = privilege_note(state.privileges)
            if note:
                lines.append(note)
        text = "\n".join(lines)
        if text != self._summary_text:  # an unchanged Static.update still re-renders
            self._summary_text = text
            summary = self.query_one("#summary", Static)
            summary.update(text)
            summary.set_class(blocker is not None, "-blocked")

    def _update_status(self) -> None:
        state = self.numatui.state
        parts: list[str] = []
        if state is not None:
            scan = state.scan
            shown = len(self._shown)
            total = len(scan.processes)
            parts.append(
                f"{shown} of {total} processes" if shown != total else f"{total} processes"
            )
            if scan.unreadable:
                parts.append(f"{scan.unreadable} unreadable")
        direction = "↓" if self.sort_reverse else "↑"
        parts.append(f"sort {self._column_title(self.sort_key)} {direction}")
        if self.node_limit is not None:
            parts.append(f"node {self.node_limit} only")
        if self.filter_text:
            parts.append(f"filter “{self.filter_text}”")
        if self.numatui.last_error:
            parts.append(f"last refresh failed: {self.numatui.last_error}")
        text = " · ".join(parts)
        if text != self._status_text:
            self._status_text = text
            self.query_one("#status", Static).update(text)

    def _column_title(self, key: str) -> str:
        if key.startswith("node"):
            return f"N{key[4:]}"
        return {"pid": "PID", "user": "USER", "name": "NAME", "rss": "RSS"}.get(key, "LOCAL")

    def _matches(self, process: ProcessMemory) -> bool:
        if self.node_limit is not None and process.node_bytes.get(self.node_limit, 0) <= 0:
            return False
        needle = self.filter_text.strip().lower()
        if not needle:
            return True
        return (
            needle in process.name.lower()
            or needle in process.user.lower()
            or needle == str(process.pid)
            or needle in process.cmdline.lower()
        )

    def _columns_for(self, topology: Topology) -> list[int]:
        return [n.id for n in memory_nodes(topology)]

    def _build_columns(self) -> None:
        table = self.table
        table.clear(columns=True)
        for key, title in FIXED_COLUMNS:
            table.add_column(title, key=key)
        for node_id in self._node_ids:
            table.add_column(f"N{node_id}", key=f"node{node_id}")

    def _cells(self, process: ProcessMemory) -> list[Any]:
        cached = self._cell_cache.get(process.pid)
        if cached is not None and cached[0] is process:
            return cached[1]
        cells = self._format_cells(process)
        self._cell_cache[process.pid] = (process, cells)
        return cells

    def _format_cells(self, process: ProcessMemory) -> list[Any]:
        table = self.table
        misplaced = is_misplaced(process)
        zero_style = table.get_component_rich_style("process-table--zero", partial=True)
        bad_style = table.get_component_rich_style("process-table--misplaced", partial=True)
        good_style = table.get_component_rich_style("process-table--local", partial=True)
        locality = process.locality
        if locality is None:
            locality_cell = Text("-", justify="right", style=zero_style)
        elif misplaced:
            locality_cell = Text(f"! {locality:.0%}", justify="right", style=bad_style)
        else:
            locality_cell = Text(f"{locality:.0%}", justify="right", style=good_style)
        cells: list[Any] = [
            Text(str(process.pid), justify="right"),
            Text(process.name, style=bad_style if misplaced else ""),
            process.user,
            Text(human_bytes(process.rss_bytes), justify="right"),
            locality_cell,
        ]
        for node_id in self._node_ids:
            value = process.node_bytes.get(node_id, 0)
            if value:
                cells.append(Text(human_bytes(value), justify="right"))
            else:
                cells.append(Text("·", justify="right", style=zero_style))
        return cells

    def _update_table(self, state: AppState, rebuild: bool) -> None:
        table = self.table
        keep_pid = self._pending_pid if self._pending_pid is not None else self.selected_pid
        node_ids = self._columns_for(state.topology)
        if node_ids != self._node_ids or not table.columns:
            self._node_ids = node_ids
            self._cell_cache.clear()
            self._build_columns()
            rebuild = True
        if self.sort_key not in table.columns:
            self.sort_key = "rss"
        wanted = {p.pid: p for p in state.scan.processes if self._matches(p)}
        gone = sum(1 for pid in self._shown if pid not in wanted)
        if gone > 64:
            # DataTable.remove_row is linear in the table size: many removals cost more
            # than adding every row again.
            rebuild = True
        changed = rebuild
        if rebuild:
            table.clear()
            self._shown = {}
            self._sort_values = {}
        for pid in [pid for pid in self._shown if pid not in wanted]:
            table.remove_row(str(pid))
            del self._shown[pid]
            del self._sort_values[pid]
            changed = True
        column_keys = [key for key, _ in FIXED_COLUMNS] + [f"node{n}" for n in node_ids]
        new_rows: list[tuple[int, ProcessMemory]] = []
        for pid, process in wanted.items():
            old = self._shown.get(pid)
            if old is None:
                new_rows.append((pid, process))
                continue
            if old is process or old == process:
                continue
            for column_key, (before, after) in zip(
                column_keys, zip(self._cells(old), self._cells(process), strict=True), strict=True
            ):
                if before != after:
                    table.update_cell(str(pid), column_key, after)
            self._shown[pid] = process
            self._sort_values[pid] = _row_values(process, node_ids)
            changed = True
        for pid, process in new_rows:
            table.add_row(*self._cells(process), key=str(pid))
            self._shown[pid] = process
            self._sort_values[pid] = _row_values(process, node_ids)
            changed = True
        if len(self._cell_cache) > 2 * len(state.scan.processes) + 100:
            alive = {p.pid for p in state.scan.processes}
            self._cell_cache = {k: v for k, v in self._cell_cache.items() if k in alive}
        if changed:
            self._apply_sort()
        if keep_pid is not None and keep_pid in self._shown:
            table.move_cursor(row=table.get_row_index(str(keep_pid)), animate=False)
            self._pending_pid = None
        self._update_status()

    def _apply_sort(self) -> None:
        values = self._sort_values
        key = self.sort_key
        # Ties broken by pid so the order is stable from one refresh to the next.
        self.table.sort(
            "pid",
            key=lambda pid_cell: (values[int(pid_cell.plain)][key], int(pid_cell.plain)),
            reverse=self.sort_reverse,
        )

    def _resort_keeping_cursor(self) -> None:
        pid = self.selected_pid
        self._apply_sort()
        if pid is not None and pid in self._shown:
            self.table.move_cursor(row=self.table.get_row_index(str(pid)), animate=False)
        self._update_status()

    def select_pid(self, pid: int) -> None:
        """Put the cursor on `pid` now, or when it next appears in a scan."""
        if pid in self._shown:
            self.table.move_cursor(row=self.table.get_row_index(str(pid)), animate=False)
        else:
            self._pending_pid = pid
        self.table.focus()

    def _rebuild(self) -> None:
        state = self.numatui.state
        if state is not None:
            self._update_table(state, rebuild=True)

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "migrate":
            state = self.numatui.state
            if state is None or machine_migration_blocker(state.topology) is not None:
                return None  # shown disabled; the summary line says why
        return True

    def action_open_detail(self) -> None:
        process = self.selected_process
        if process is None:
            return
        from numatui.screens.detail import ProcessDetailScreen

        self.app.push_screen(ProcessDetailScreen(process))

    @on(DataTable.RowSelected, "#processes")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_detail()

    @on(DataTable.HeaderSelected, "#processes")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key
            self.sort_reverse = key not in ("pid", "user", "name")
        self._resort_keeping_cursor()

    def action_cycle_sort(self) -> None:
        keys = [str(k.value) for k in self.table.columns]
        if not keys:
            return
        index = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key = keys[(index + 1) % len(keys)]
        # Sizes and locality read best largest first; names and ids ascending.
        self.sort_reverse = self.sort_key not in ("pid", "user", "name", "locality")
        self._resort_keeping_cursor()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort_keeping_cursor()

    def action_cycle_node(self) -> None:
        ids: list[int | None] = [None, *self._node_ids]
        index = ids.index(self.node_limit) if self.node_limit in ids else 0
        self.node_limit = ids[(index + 1) % len(ids)]
        self._rebuild()

    def action_filter(self) -> None:
        bar = self.query_one("#filter-bar")
        bar.display = True
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if filter_input.value or self.node_limit is not None:
            filter_input.value = ""
            self.filter_text = ""
            self.node_limit = None
            self._rebuild()
        self.query_one("#filter-bar").display = False
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._rebuild()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.query_one("#filter-bar").display = False
        self.table.focus()

    def action_migrate(self) -> None:
        state = self.numatui.state
        process = self.selected_process
        if state is None or process is None:
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

        self.app.push_screen(MigrateDialog(process, state.topology), start)

    def palette_commands(self) -> Iterable[SystemCommand]:
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Migrate selected process", "Choose source and target nodes", self.action_migrate),
            ("Process detail", "Memory by kind and mappings", self.action_open_detail),
            ("Filter processes", "By name, user or pid", self.action_filter),
            ("Sort by next column", "Cycle the sort column", self.action_cycle_sort),
            ("Limit to next node", "Only processes with memory there", self.action_cycle_node),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
