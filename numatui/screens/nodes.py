"""Every node: CPUs, memory, huge pages, tier; the distance matrix; usage over time.

Charts read the app's `NodeHistory`, so they already hold the samples taken
before this screen was first opened.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from numatui.model.topology import Node, Topology
from numatui.safe_text import plain, plain_lines
from numatui.screens.base import AppState, NumatuiScreen
from numatui.screens.common import machine_migration_blocker, nodes_summary
from numatui.units import human_bytes, human_count_rate, node_list
from numatui.widgets.chart import SparkChart
from numatui.widgets.footer import KeysFooter
from numatui.widgets.quiet_static import QuietStatic

RATE_CHARTS: tuple[tuple[str, str], ...] = (
    ("numa_hit", "numa hit/s"),
    ("numa_miss", "numa miss/s"),
    ("pgmigrate_success", "migrated/s"),
    ("pgmigrate_fail", "migr. fail/s"),
)


def huge_pages(node: Node) -> str:
    pools = [p for p in node.hugepages if p.total]
    if not pools:
        return "-"
    return " ".join(f"{p.free}/{p.total} of {human_bytes(p.size_bytes)}" for p in pools)


def node_kind(node: Node) -> str:
    if not node.online:
        return "offline"
    if node.memory_only:
        return "memory-only"
    if not node.has_memory:
        return "CPU-only"
    return "CPU+memory"


NODE_COLUMNS = (
    "NODE", "KIND", "CPUS", "TOTAL", "USED", "FREE", "USED%", "HIT/s", "MISS/s",
    "HUGE free/total", "TIER",
)  # fmt: skip
NARROW_DROPPED = frozenset({"TOTAL", "USED", "HIT/s", "MISS/s"})
NODES_FULL_WIDTH = 110
"""Columns of terminal the whole nodes table needs (with a CPU list like 0-23,48-71)."""


class NodesScreen(NumatuiScreen[None]):
    """The machine's nodes and how their use changes."""

    BINDINGS = [
        Binding("d", "drain", "Drain node", tooltip="Move every process's memory off this node"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._chart_nodes: list[int] = []
        # What each table shows, as text: an unchanged table is not rebuilt (a rebuilt
        # one is drawn again, kilobytes a second on an idle terminal).
        self._drawn: dict[str, list[tuple[str, ...]]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="nodes-body"):
            yield QuietStatic("reading the machine…", id="nodes-summary")
            yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
            yield Static("Distances (relative access cost, 10 = local)", classes="section-title")
            yield DataTable(id="distances", cursor_type="none", show_cursor=False)
            yield Static("Used memory over time (scale: node total)", classes="section-title")
            yield Vertical(id="used-charts")
            yield Static("Kernel counters (pages per second)", classes="section-title")
            with Vertical(id="rate-charts"):
                for name, label in RATE_CHARTS:
                    yield SparkChart(label, human_count_rate, id=f"rate-{name}")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = "nodes"
        self.watch(self.app, "state", self._on_state, init=True)

    def on_resize(self) -> None:
        state = self.numatui.state
        if state is not None:
            self._show_nodes(state.topology)

    def _on_state(self, state: AppState | None) -> None:
        if state is None:
            return
        topology = state.topology
        lines = [nodes_summary(topology)]
        blocker = machine_migration_blocker(topology)
        if blocker:
            lines.append(blocker)
        self.query_one("#nodes-summary", QuietStatic).update(plain_lines(lines))
        self._show_nodes(topology)
        self._show_distances(topology)
        self._show_charts(topology)

    def _unchanged(self, table_id: str, rows: list[tuple[Text, ...]]) -> bool:
        drawn = [tuple(cell.plain for cell in row) for row in rows]
        if self._drawn.get(table_id) == drawn:
            return True
        self._drawn[table_id] = drawn
        return False

    def _show_nodes(self, topology: Topology) -> None:
        history = self.numatui.history
        rows: list[tuple[Text, ...]] = []
        for node in sorted(topology.nodes, key=lambda n: n.id):
            used_share = f"{node.mem_used / node.mem_total:.0%}" if node.mem_total else "-"
            # This node's own counters: pages allocated here as intended (hit) and
            # here although another node was intended (miss), per second.
            hits = history.node_rate_series(node.id, "numa_hit")
            misses = history.node_rate_series(node.id, "numa_miss")
            rows.append((
                plain(str(node.id)),
                plain(node_kind(node)),
                plain(node_list(node.cpus)),
                Text(human_bytes(node.mem_total), justify="right"),
                Text(human_bytes(node.mem_used), justify="right"),
                Text(human_bytes(node.mem_free), justify="right"),
                Text(used_share, justify="right"),
                Text(human_count_rate(hits[-1]) if hits else "-", justify="right"),
                Text(human_count_rate(misses[-1]) if misses else "-", justify="right"),
                plain(huge_pages(node)),
                plain("-" if node.tier is None else str(node.tier)),
            ))  # fmt: skip
        # A narrow terminal drops the columns others imply (TOTAL, USED: FREE and USED%)
        # or the charts below show (HIT/s, MISS/s), so HUGE and TIER stay in view.
        keep = [
            i
            for i, title in enumerate(NODE_COLUMNS)
            if not (self.size.width < NODES_FULL_WIDTH and title in NARROW_DROPPED)
        ]
        rows = [tuple(row[i] for i in keep) for row in rows]
        titles = [NODE_COLUMNS[i] for i in keep]
        if self._unchanged("nodes", [tuple(map(Text, titles)), *rows]):
            return
        table = self.query_one("#nodes", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_columns(*titles)
        for row in rows:
            table.add_row(*row, key=row[0].plain)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

    def _show_distances(self, topology: Topology) -> None:
        ids = sorted(n.id for n in topology.nodes if n.online)
        rows: list[tuple[Text, ...]] = [tuple(plain(str(node_id)) for node_id in ids)]
        for node_id in ids:
            node = topology.node(node_id)
            distances = node.distances if node is not None else {}
            rows.append((
                plain(str(node_id)),
                *(Text(str(distances.get(other, "-")), justify="right") for other in ids),
            ))  # fmt: skip
        if self._unchanged("distances", rows):
            return
        table = self.query_one("#distances", DataTable)
        table.clear(columns=True)
        table.add_column("from\\to", key="from")
        for node_id, header in zip(ids, rows[0], strict=True):
            table.add_column(header, key=str(node_id))
        for row in rows[1:]:
            table.add_row(*row)

    def _show_charts(self, topology: Topology) -> None:
        history = self.numatui.history
        container = self.query_one("#used-charts", Vertical)
        memory_ids = sorted(n.id for n in topology.nodes if n.has_memory)
        if memory_ids != self._chart_nodes:
            container.remove_children()
            container.mount_all(
                SparkChart(f"node {n} used", human_bytes, id=f"used-{n}") for n in memory_ids
            )
            self._chart_nodes = memory_ids
        for node_id in memory_ids:
            node = topology.node(node_id)
            ceiling = float(node.mem_total) if node is not None and node.mem_total else None
            series = [float(v) for v in history.used_series(node_id)]
            self.query_one(f"#used-{node_id}", SparkChart).set_series(series, ceiling)
        for name, _ in RATE_CHARTS:
            self.query_one(f"#rate-{name}", SparkChart).set_series(history.rate_series(name))

    def action_drain(self) -> None:
        """The drain dialog for the node under the cursor (it plans, then asks)."""
        table = self.query_one("#nodes", DataTable)
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        if row_key.value is None:
            return
        from numatui.screens.drain import DrainDialog  # loaded when first used, not at start

        self.app.push_screen(DrainDialog(int(row_key.value)))
