"""What the processes and groups screens share: one table driven by a filter box, a node
limit and a sort column, with the same keys on both (`/`, escape, `s`, `r`, `n`, a click
on a header).

A screen says which of its widgets these are (`TABLE_ID`, `FILTER_ID`, `FILTER_BAR_ID`),
which columns read best ascending, and how to rebuild its rows (`_refilter` when what
is shown changes, `_show_sorted` when only the order does).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.widgets import Input

from numatui.screens.base import NumatuiScreen
from numatui.widgets.process_table import ProcessTable


class FilteredTableScreen(NumatuiScreen[None]):
    """A screen whose table the shared filter, node-limit and sort keys drive."""

    TABLE_ID: ClassVar[str]
    FILTER_ID: ClassVar[str]
    FILTER_BAR_ID: ClassVar[str]
    DEFAULT_SORT: ClassVar[str]
    ASCENDING: ClassVar[frozenset[str]]
    """Columns first sorted smallest first (names, ids, locality: least local first);
    sizes read best largest first."""

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.node_limit: int | None = None
        self.sort_key = self.DEFAULT_SORT
        self.sort_reverse = True
        self._node_ids: list[int] = []
        self._table: ProcessTable | None = None

    @property
    def table(self) -> ProcessTable:
        if self._table is None:
            self._table = self.query_one(f"#{self.TABLE_ID}", ProcessTable)
        return self._table

    def _refilter(self) -> None:
        """Choose the rows shown (filter, node limit), then `_show_sorted`."""
        raise NotImplementedError

    def _show_sorted(self) -> None:
        """Hand the shown rows to the table in `sort_key` order."""
        raise NotImplementedError

    def _keep_sort_column(self) -> None:
        """Sort by `DEFAULT_SORT` when the column sorted by is gone (its node went away)."""
        if self.sort_key not in self.table.columns:
            self.sort_key = self.DEFAULT_SORT

    def _sort_by(self, key: str) -> None:
        self.sort_key = key
        self.sort_reverse = key not in self.ASCENDING
        self._show_sorted()

    @on(ProcessTable.HeaderSelected)
    def _header_selected(self, event: ProcessTable.HeaderSelected) -> None:
        if event.control is not self.table:
            return
        if event.column_key == self.sort_key:
            self.action_reverse_sort()
        else:
            self._sort_by(event.column_key)

    def action_cycle_sort(self) -> None:
        keys = list(self.table.columns)
        if not keys:
            return
        index = keys.index(self.sort_key) if self.sort_key in keys else -1
        self._sort_by(keys[(index + 1) % len(keys)])

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._show_sorted()

    def action_cycle_node(self) -> None:
        ids: list[int | None] = [None, *self._node_ids]
        index = ids.index(self.node_limit) if self.node_limit in ids else 0
        self.node_limit = ids[(index + 1) % len(ids)]
        self._refilter_to_a_match()

    def action_filter(self) -> None:
        self.query_one(f"#{self.FILTER_BAR_ID}").display = True
        self.query_one(f"#{self.FILTER_ID}", Input).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one(f"#{self.FILTER_ID}", Input)
        if box.value or self.node_limit is not None:
            box.value = ""
            self.filter_text = ""
            self.node_limit = None
            self._refilter()
        self.query_one(f"#{self.FILTER_BAR_ID}").display = False
        self.table.focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.FILTER_ID:
            self.filter_text = event.value
            self._refilter_to_a_match()

    def _refilter_to_a_match(self) -> None:
        """`_refilter` for a new filter: when it hides the row under the cursor, the cursor
        goes to the first row shown, the best match, not to whichever row now sits at its
        height (which is right when a process exits, not when the user narrows the list)."""
        kept = self.table.cursor_key
        self._refilter()
        if kept is not None and not self.table.has_row(kept):
            self.table.move_cursor(0)

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != self.FILTER_ID:
            return
        if not event.value:
            self.query_one(f"#{self.FILTER_BAR_ID}").display = False
        self.table.focus()
