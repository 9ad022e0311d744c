"""One process: memory per node by kind, its mappings, allowed and running nodes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from numatui.blocking import WorkAbandoned, call_abandonable, describe_error
from numatui.messages import NumaMapsFetched, SourceFailed
from numatui.model.memory import MemoryKind, NumaMaps, ProcessMemory
from numatui.safe_text import plain, plain_lines, shorten, visible
from numatui.screens.base import AppState, NumatuiScreen
from numatui.screens.common import is_misplaced
from numatui.screens.lifecycle import while_attached
from numatui.units import human_bytes, node_list
from numatui.widgets.footer import KeysFooter
from numatui.widgets.quiet_static import QuietStatic

MAPPINGS_SHOWN = 200
"""Largest mappings listed; a big process has tens of thousands."""
COMMAND_SHOWN = 2000
"""Characters of the command line shown; the rest is counted (one can be megabytes)."""
UNKNOWN = "?"
"""A byte count that could not be read: never shown as 0 or `·`."""
PENDING = "…"
"""A byte count not read yet: the first scan reads bytes per node only."""


class ProcessDetailScreen(NumatuiScreen[bool]):
    """Where one process's memory is, kind by kind and mapping by mapping.

    Dismissed with True when the user asks to migrate the process.
    """

    BINDINGS = [
        Binding("escape,b", "back", "Back", tooltip="Back to the process list"),
        Binding("m", "migrate", "Migrate", tooltip="Move this process's pages"),
        Binding("u", "reload", "Update", tooltip="Read the mappings again"),
        Binding("c", "toggle_command", "Command", tooltip="The whole command line, or one line"),
    ]

    def __init__(self, process: ProcessMemory) -> None:
        super().__init__()
        self.process = process
        self.maps: NumaMaps | None = None
        self.gone = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield QuietStatic(id="identity")
            yield QuietStatic(id="command")
            yield Static("Memory per node by kind", classes="section-title")
            yield DataTable(id="kinds", cursor_type="none", show_cursor=False)
            yield QuietStatic(
                "Mappings (largest first)", classes="section-title", id="mappings-title"
            )
            yield DataTable(id="mappings", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = visible(f"{self.process.name} ({self.process.pid})")
        self._show_identity()
        self._show_kinds()
        self.query_one("#mappings", DataTable).loading = True
        self._fetch_maps(self.process.pid)
        self.watch(self.app, "state", self._on_state, init=False)

    def _on_state(self, state: AppState | None) -> None:
        if state is None:
            return
        for process in state.scan.processes:
            if process.pid == self.process.pid:
                if process != self.process:
                    self.process = process
                    self._show_identity()
                    self._show_kinds()
                return
        if not self.gone:
            self.gone = True
            self._show_identity()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="numa_maps",
        description="read the mappings",
    )
    def _fetch_maps(self, pid: int) -> None:
        try:
            maps = call_abandonable(lambda: self.numatui.source.numa_maps(pid))
        except WorkAbandoned:
            return
        except PermissionError:
            self.post_message(SourceFailed("read the mappings", self._unreadable_reason()))
            return
        except Exception as exc:
            self.post_message(SourceFailed("read the mappings", describe_error(exc)))
            return
        self.post_message(NumaMapsFetched(pid, maps))

    @on(NumaMapsFetched)
    @while_attached
    def _maps_fetched(self, message: NumaMapsFetched) -> None:
        message.stop()
        if message.pid != self.process.pid:
            return
        self.maps = message.maps
        self._show_mappings(message.maps)

    @on(SourceFailed)
    @while_attached
    def _maps_failed(self, message: SourceFailed) -> None:
        message.stop()
        table = self.query_one("#mappings", DataTable)
        table.loading = False
        title = self.query_one("#mappings-title", QuietStatic)
        title.update(plain(f"Mappings: {message.message}"))
        title.add_class("-error")

    def _show_identity(self) -> None:
        p = self.process
        locality = "unknown" if p.locality is None else f"{p.locality:.0%}"
        mark = "  (misplaced: most memory is away from its CPUs)" if is_misplaced(p) else ""
        in_maps = human_bytes(p.numa_bytes) if p.memory_readable else UNKNOWN
        rows: list[str | Text] = [
            plain((p.name, "bold"), f"  pid {p.pid}  user {p.user}  threads {p.threads}"),
            f"resident  {human_bytes(p.rss_bytes)}   in numa_maps {in_maps}"
            f"   mappings {p.mapping_count}",
            f"locality  {locality}{mark}",
            f"allowed nodes {node_list(p.mems_allowed)}"
            f"   threads run on nodes {node_list(p.cpu_nodes)}",
        ]
        if not p.memory_readable:
            why = self._unreadable_reason()
            rows.append(plain(("memory per node unknown (?)", "bold"), f": {why}"))
        shared = sum(p.shared_bytes.values())
        if shared:
            rows.append(f"shared with other processes {human_bytes(shared)}")
        if self.gone:
            exited = ("this process has exited", "bold")
            rows.append(plain(exited, ": the numbers are its last scan"))
        identity = self.query_one("#identity", QuietStatic)
        identity.update(plain_lines(rows))
        identity.set_class(self.gone, "-gone")
        # One line unless asked (`c`): a JVM's or QEMU's command line would fill the
        # screen and push the memory table below the fold.
        self.query_one("#command", QuietStatic).update(
            plain("command   ", shorten(p.cmdline, COMMAND_SHOWN) or "-")
        )

    def _node_ids(self) -> list[int]:
        state = self.numatui.state
        ids = set(self.process.node_bytes)
        if state is not None:
            ids |= {n.id for n in state.topology.nodes if n.has_memory}
        return sorted(ids)

    def _show_kinds(self) -> None:
        table = self.query_one("#kinds", DataTable)
        table.clear(columns=True)
        node_ids = self._node_ids()
        table.add_column("KIND", key="kind")
        for node_id in node_ids:
            table.add_column(plain(f"N{node_id}"), key=f"node{node_id}")
        table.add_column("TOTAL", key="total")
        kinds = self.process.kind_bytes
        readable = self.process.memory_readable
        shown = UNKNOWN if not readable else None if self.process.kinds_read else PENDING
        for kind in MemoryKind:
            per_node = kinds.get(kind, {})
            cells = _byte_cells(per_node, node_ids, shown)
            table.add_row(plain(kind.value), *cells, key=kind.value)
        table.add_row(
            plain(("all", "bold")),
            *_byte_cells(self.process.node_bytes, node_ids, None if readable else UNKNOWN),
            key="all",
        )

    def _show_mappings(self, maps: NumaMaps) -> None:
        table = self.query_one("#mappings", DataTable)
        table.loading = False
        table.clear(columns=True)
        node_ids = sorted(set(self._node_ids()) | set(maps.node_bytes))
        table.add_column("START", key="start")
        table.add_column("KIND", key="kind")
        table.add_column("POLICY", key="policy")
        for node_id in node_ids:
            table.add_column(plain(f"N{node_id}"), key=f"node{node_id}")
        table.add_column("TOTAL", key="total")
        table.add_column("SHARED", key="shared")
        table.add_column("PATH", key="path")
        ordered = sorted(maps.mappings, key=lambda m: (-sum(m.node_bytes.values()), m.start))
        for region in ordered[:MAPPINGS_SHOWN]:
            table.add_row(
                plain(f"{region.start:x}"),
                plain(region.kind.value),
                plain(region.policy),
                *_byte_cells(region.node_bytes, node_ids),
                plain("yes" if region.shared else ""),
                plain(region.path or ""),  # any user names the files it maps
            )
        hidden = len(ordered) - MAPPINGS_SHOWN
        title = f"Mappings (largest first): {len(ordered)}"
        if hidden > 0:
            title += f", {MAPPINGS_SHOWN} shown"
        self.query_one("#mappings-title", QuietStatic).update(plain(title))

    def _unreadable_reason(self) -> str:
        state = self.numatui.state
        if state is not None and state.privileges.is_root:
            return "its numa_maps cannot be read, even as root"
        return "its numa_maps is not readable by this user (needs root)"

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_command(self) -> None:
        self.query_one("#command").toggle_class("-whole")

    def action_reload(self) -> None:
        self._fetch_maps(self.process.pid)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "migrate":
            state = self.numatui.state
            from numatui.screens.common import machine_migration_blocker

            if self.gone or state is None or machine_migration_blocker(state.topology):
                return None
        return True

    def why_not(self, action: str) -> str | None:
        if action != "migrate":
            return None
        if self.gone:
            return "this process has exited: there is nothing left to move"
        state = self.numatui.state
        from numatui.screens.common import machine_migration_blocker

        if state is None:
            return "still reading the machine: try again in a moment"
        return machine_migration_blocker(state.topology)

    def action_migrate(self) -> None:
        # The screen underneath opens the dialog: it is handed the request, not reached for.
        self.dismiss(True)


def _byte_cells(per_node: Any, node_ids: list[int], instead: str | None = None) -> list[Text]:
    """Bytes per node then the total; `instead` in every cell when there are no counts
    to show (`?` could not be read, `…` not read yet)."""

    def cell(value: int) -> Text:
        shown = instead if instead is not None else human_bytes(value) if value else "·"
        return Text(shown, justify="right")

    cells = [cell(per_node.get(n, 0)) for n in node_ids]
    cells.append(cell(sum(per_node.values())))
    return cells
