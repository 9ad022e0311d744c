"""Groups: cgroups (services, containers, pods) with their memory per node.

Per group: the bytes its processes map on each node (what a process-level move can
move) and the group's own `memory.numa_stat` (page cache no member maps included),
or why the kernel does not give it. Cgroup paths and container names are untrusted:
shown only through `safe_text`.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from numatui.model.groups import GROUP_STAT_KINDS, Group, GroupScan
from numatui.model.topology import Topology
from numatui.safe_text import PRINTABLE, plain, plain_lines, visible
from numatui.screens.base import AppState
from numatui.screens.common import machine_migration_blocker, memory_nodes
from numatui.screens.lifecycle import while_attached
from numatui.screens.table_screen import FilteredTableScreen
from numatui.units import human_bytes
from numatui.widgets.filter_input import FilterInput
from numatui.widgets.footer import KeysFooter
from numatui.widgets.process_table import ProcessTable, TableCell, TableColumn, TableRow
from numatui.widgets.quiet_static import QuietStatic

FIXED_COLUMNS: tuple[TableColumn, ...] = (
    TableColumn("name", "GROUP"),
    TableColumn("kind", "KIND"),
    TableColumn("procs", "PROCS", numeric=True),
    TableColumn("numa", "MAPPED", numeric=True),
    TableColumn("cgroup", "CGROUP", numeric=True),
)


def _values(group: Group, node_ids: list[int]) -> dict[str, Any]:
    stat = group.stat_node_bytes
    values: dict[str, Any] = {
        "name": visible(group.name.label).lower(),
        "kind": str(group.name.kind),
        "procs": len(group.pids),
        "numa": group.numa_bytes,
        "cgroup": -1 if stat is None else sum(stat.values()),
        "path": visible(group.path),
    }
    for node in node_ids:
        values[f"node{node}"] = group.node_bytes.get(node, 0)
        values[f"cg{node}"] = -1 if stat is None else stat.get(node, 0)
    return values


def _cells(group: Group, node_ids: list[int]) -> tuple[TableCell, ...]:
    stat = group.stat_node_bytes

    def size(value: int) -> TableCell:
        return TableCell(human_bytes(value)) if value else TableCell("·", "zero")

    cells = [
        TableCell(visible(group.name.label)),
        TableCell(str(group.name.kind)),
        TableCell(str(len(group.pids))),
        size(group.numa_bytes),
        TableCell("?", "zero") if stat is None else size(sum(stat.values())),
    ]
    cells += [size(group.node_bytes.get(n, 0)) for n in node_ids]
    cells += [TableCell("?", "zero") if stat is None else size(stat.get(n, 0)) for n in node_ids]
    cells.append(TableCell(visible(group.path)))
    return tuple(cells)


def group_detail_lines(group: Group, node_ids: list[int]) -> list[str]:
    """The selected group's own accounts by kind, or why there are none."""
    lines = [f"{group.name.label} · {group.path} · pid {', '.join(map(str, group.pids[:12]))}"]
    if len(group.pids) > 12:
        lines[0] += f" … ({len(group.pids)})"
    if group.numa_stat is None:
        lines.append(f"memory.numa_stat: not available: {group.numa_stat_missing}")
        return lines
    for kind in GROUP_STAT_KINDS:
        per_node = group.numa_stat.get(kind, {})
        cells = "  ".join(f"N{n} {human_bytes(per_node.get(n, 0)):>9}" for n in node_ids)
        lines.append(f"{kind:<6} {cells}")
    return lines


class GroupsScreen(FilteredTableScreen):
    """Every cgroup with processes, its memory per node; `g` back to the processes."""

    TABLE_ID = "groups"
    FILTER_ID = "groups-filter"
    FILTER_BAR_ID = "groups-filter-bar"
    DEFAULT_SORT = "numa"
    ASCENDING = frozenset({"name", "kind", "path"})

    BINDINGS = [
        Binding("g", "back", "Processes", tooltip="Back to the processes"),
        Binding("m", "move_group", "Move", tooltip="Move every process of this group"),
        Binding(
            "slash", "filter", "Filter", key_display="/", tooltip="Filter by name, path or kind"
        ),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("r", "reverse_sort", "Reverse", tooltip="Reverse the sort order"),
        Binding("n", "cycle_node", "Node", tooltip="Only groups with memory on one node"),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    class GroupsRead(Message):
        def __init__(self, state: AppState, groups: GroupScan | None, error: str = ""):
            super().__init__()
            self.state = state
            self.groups = groups
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.groups: GroupScan | None = None
        self.error = ""
        self._keys: dict[str, int] = {}
        self._shown: dict[int, Group] = {}
        self._behind = False
        """A refresh came while another screen covered this one."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield QuietStatic("reading the groups…", id="groups-summary")
        yield QuietStatic("", id="groups-status")
        yield ProcessTable(id="groups")
        yield QuietStatic("", id="group-detail")
        with Horizontal(id="groups-filter-bar"):
            yield Static("filter:", id="groups-filter-label")
            yield FilterInput(
                placeholder="name, path or kind", id="groups-filter", restrict=PRINTABLE
            )
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#groups-filter-bar").display = False
        self.watch(self.app, "state", self._on_state, init=True)

    @property
    def selected_group(self) -> Group | None:
        key = self.table.cursor_key
        return None if key is None else self._shown.get(key)

    # ------------------------------------------------------------ data

    def _on_state(self, state: AppState | None) -> None:
        if state is None:
            return
        if not self.is_active and self.groups is not None:
            # Covered by a dialog: the whole top screen would be repainted for every
            # message handled here (Textual); caught up when shown again.
            self._behind = True
            return
        self._read_groups(state)

    def on_screen_resume(self) -> None:
        if self._behind:
            self._behind = False
            self._on_state(self.numatui.state)

    @work(
        thread=True,
        exclusive=True,
        group="groups",
        exit_on_error=False,
        description="read the groups",
    )
    def _read_groups(self, state: AppState) -> None:
        try:
            groups: GroupScan | None = self.numatui.source.groups(state.scan)
            error = ""
        except Exception as exc:  # a failed read must leave the screen up, saying why
            groups, error = None, f"could not read the groups: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.GroupsRead(state, groups, error))

    @on(GroupsRead)
    @while_attached
    def _groups_read(self, message: GroupsRead) -> None:
        self.error = message.error
        if message.groups is not None:
            self.groups = message.groups
        node_ids = [n.id for n in memory_nodes(message.state.topology)]
        if node_ids != self._node_ids or not self.table.columns:
            self._node_ids = node_ids
            self._build_columns()
        self._update_summary(message.state.topology)
        self._refilter()

    def _build_columns(self) -> None:
        nodes = [TableColumn(f"node{n}", f"N{n}", numeric=True) for n in self._node_ids]
        cg = [TableColumn(f"cg{n}", f"CG N{n}", numeric=True) for n in self._node_ids]
        self.table.set_columns([*FIXED_COLUMNS, *nodes, *cg, TableColumn("path", "PATH")])

    def _update_summary(self, topology: Topology) -> None:
        lines = [
            "MAPPED, N<n>: what the group's processes map (what a move can move); "
            "CGROUP, CG N<n>: the group's memory.numa_stat (page cache no process maps too)"
        ]
        if self.groups is not None and self.groups.support.missing:
            lines.append(self.groups.support.missing)
        if self.error:
            lines.append(self.error)
        summary = self.query_one("#groups-summary", QuietStatic)
        summary.update(plain_lines(lines))

    def _key(self, path: str) -> int:
        if path not in self._keys:
            self._keys[path] = len(self._keys)
        return self._keys[path]

    def _matches(self, group: Group, needle: str) -> bool:
        if self.node_limit is not None and group.node_bytes.get(self.node_limit, 0) <= 0:
            return False
        if not needle:
            return True
        text = "\0".join(
            (visible(group.name.label), visible(group.path), str(group.name.kind))
        ).lower()
        return needle in text or any(needle == str(pid) for pid in group.pids)

    def _refilter(self) -> None:
        needle = self.filter_text.strip().lower()
        groups = self.groups.groups if self.groups is not None else ()
        self._shown = {self._key(g.path): g for g in groups if self._matches(g, needle)}
        self._show_sorted()

    def _show_sorted(self) -> None:
        self._keep_sort_column()
        key = self.sort_key
        rows = [(_values(g, self._node_ids)[key], g.path, k, g) for k, g in self._shown.items()]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=self.sort_reverse)
        self.table.set_sort(key, self.sort_reverse)
        self.table.set_rows(
            [TableRow(k, _cells(g, self._node_ids)) for _, _, k, g in rows],
            keep_key=self.table.cursor_key,
        )
        self._update_status()
        self._update_detail()

    def _update_status(self) -> None:
        total = len(self.groups.groups) if self.groups is not None else 0
        shown = len(self._shown)
        parts = [f"{shown} of {total} groups" if shown != total else f"{total} groups"]
        column = self.table.columns.get(self.sort_key)
        label = column.label if column is not None else self.sort_key
        parts.append(f"sort {label} {'↓' if self.sort_reverse else '↑'}")
        if self.node_limit is not None:
            parts.append(f"node {self.node_limit} only")
        if self.filter_text:
            parts.append(f"filter “{self.filter_text}”")
        self.query_one("#groups-status", QuietStatic).update(plain(" · ".join(parts)))

    def _update_detail(self) -> None:
        group = self.selected_group
        detail = self.query_one("#group-detail", QuietStatic)
        if group is None:
            detail.update("")
            return
        detail.update(plain_lines(group_detail_lines(group, self._node_ids)))

    # ------------------------------------------------------------ actions

    @on(ProcessTable.RowSelected, "#groups")
    def _row_selected(self, event: ProcessTable.RowSelected) -> None:
        event.stop()
        self._update_detail()

    def action_back(self) -> None:
        self.app.switch_mode("processes")

    def action_move_group(self) -> None:
        group = self.selected_group
        state = self.numatui.state
        if group is None or state is None:
            return
        blocker = machine_migration_blocker(state.topology)
        if blocker:
            self.notify(blocker, title="cannot move", severity="warning")
            return
        from numatui.screens.group_move import (
            GroupMigrationScreen,
            GroupMoveDialog,
            GroupMoveRequest,
        )

        def start(request: GroupMoveRequest | None) -> None:
            if request is not None:
                self.app.push_screen(GroupMigrationScreen(request))

        self.app.push_screen(GroupMoveDialog(group, state.topology), start)
