"""A table that renders only the rows on screen.

Textual's DataTable renders each cell through Rich's layout engine and drops
its caches on every sort, so re-drawing one screen of a 2,000-row table after
a sort cost 30-60 ms (profiled). Here the screen hands over rows already in
display order, each cell a plain string with a tone, and a line is a handful
of Segments: a frame costs the same whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widget import Widget

from numatui.widgets.plain_box import PlainScrollBar, plain_box_lines

TONES = ("misplaced", "local", "zero")
"""Cell tones the .tcss colours (component classes `process-table--<tone>`)."""


@dataclass(frozen=True, slots=True)
class TableColumn:
    key: str
    label: str
    numeric: bool = False
    """Numbers are right-aligned (and so is their header)."""


class TableCell(NamedTuple):
    """A cell's text and tone: a tuple, built in 2/3 of a frozen dataclass's time (a
    table of 2,000 processes builds up to 14,000 of them at each full refresh)."""

    text: str
    tone: str = ""
    """"" or one of TONES."""


@dataclass(frozen=True, slots=True)
class TableRow:
    key: int
    cells: tuple[TableCell, ...]
    widths: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Measured once per row object: column widths are a max over rows on every update.
        object.__setattr__(self, "widths", tuple(map(_width, self.cells)))


def _width(cell: TableCell) -> int:
    """Cells on the terminal: printable ASCII, most cells, is one per character."""
    text = cell.text
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


@dataclass(frozen=True, slots=True)
class _LineStyles:
    base: Style
    header: Style
    cursor: Style
    even: Style
    tones: dict[str, Style]


class ProcessTable(ScrollView, can_focus=True):
    """Rows in the order given, a cursor that follows its row's key, a fixed header."""

    COMPONENT_CLASSES = {
        "process-table--header",
        "process-table--cursor",
        "process-table--even-row",
        *(f"process-table--{tone}" for tone in TONES),
    }
    BINDINGS = [
        Binding("enter", "select_cursor", "Detail", tooltip="Memory by kind and mappings"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    class RowSelected(Message):
        """Enter, or a click on the row under the cursor."""

        def __init__(self, table: ProcessTable, key: int) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> ProcessTable:
            return self.table

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, table: ProcessTable, column_key: str) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key

        @property
        def control(self) -> ProcessTable:
            return self.table

    PADDING = 1
    """Blank cells each side of every column."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._columns: list[TableColumn] = []
        self._rows: list[TableRow] = []
        self._index: dict[int, int] = {}
        self._widths: list[int] = []
        self._row_ids: set[int] = set()
        self._widest: list[int] = []  # per column, over every row (not the labels)
        # Drawn lines of rows off the cursor, by row object: scrolling by a line draws
        # one new row, not a screenful. Valid for one (scroll x, width, widths, styles).
        self._strips: dict[int, tuple[TableRow, int, Strip]] = {}
        self._strips_for: tuple[int, int] = (-1, -1)
        self._styles: _LineStyles | None = None
        self._cursor = 0
        self.sort_key: str | None = None
        self.sort_reverse = False

    # ------------------------------------------------------------ data

    @property
    def columns(self) -> dict[str, TableColumn]:
        return {column.key: column for column in self._columns}

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> int | None:
        return self._rows[self._cursor].key if self._rows else None

    @property
    def row_keys(self) -> list[int]:
        """The keys of the rows shown, top to bottom."""
        return [row.key for row in self._rows]

    def get_row_index(self, key: int) -> int:
        return self._index[key]

    def has_row(self, key: int) -> bool:
        return key in self._index

    def get_column(self, key: str) -> list[str]:
        """The texts of one column, top to bottom."""
        position = [c.key for c in self._columns].index(key)
        return [row.cells[position].text for row in self._rows]

    def set_columns(self, columns: Sequence[TableColumn]) -> None:
        self._columns = list(columns)
        self._rows = []
        self._row_ids = set()
        self._widest = []
        self._index = {}
        self._cursor = 0
        self._measure()

    def set_sort(self, key: str | None, reverse: bool) -> None:
        """Which header shows the sort arrow (the rows come sorted already)."""
        if (key, reverse) != (self.sort_key, self.sort_reverse):
            self.sort_key, self.sort_reverse = key, reverse
            widths = self._column_widths()
            if widths != self._widths:
                self._measure(widths)
            else:  # the same widths (the arrow turned): only the header line changes
                self.refresh(Region(0, 0, self.scrollable_content_region.width, 1))

    def set_rows(self, rows: Sequence[TableRow], keep_key: int | None = None) -> None:
        """Show `rows` in this order; the cursor stays on `keep_key` (or its row's key)."""
        if keep_key is None:
            keep_key = self.cursor_key
        rows = list(rows)
        # Unchanged rows are the same objects (the list compares by identity first): an
        # unchanged table draws nothing, so an idle screen writes nothing to the terminal.
        if rows == self._rows and (keep_key is None or self.cursor_key == keep_key):
            return
        old_rows, old_cursor, old_widths = self._rows, self._cursor, self._widths
        self._rows = rows
        self._index = {row.key: i for i, row in enumerate(self._rows)}
        if keep_key is not None and keep_key in self._index:
            self._cursor = self._index[keep_key]
        else:
            # The selected row left (exited, filtered out): stay at the same height.
            self._cursor = min(old_cursor, max(0, len(self._rows) - 1))
        row_ids = set(map(id, rows))
        if row_ids != self._row_ids:  # not only a new order (a sort): measure the rows
            self._row_ids = row_ids
            every_row = zip(*(row.widths for row in rows), strict=True)
            self._widest = list(map(max, every_row)) if rows else []
        widths = self._column_widths()
        if widths != old_widths:
            self._measure(widths)
        else:
            # Same columns: redraw only the lines on screen whose row or cursor changed.
            # Most refreshes change a few processes, most of them off screen; a whole
            # table's frame costs several milliseconds of the UI thread (profiled).
            self.virtual_size = Size(self.virtual_size.width, len(self._rows) + 1)
            moved = {old_cursor, self._cursor} if old_cursor != self._cursor else set()
            top = round(self.scroll_y)
            lines = self.scrollable_content_region.height - 1
            changed = [
                index
                for index in range(top, top + lines)
                if index in moved
                or (old_rows[index] if index < len(old_rows) else None)
                is not (rows[index] if index < len(rows) else None)
            ]
            if len(changed) > lines // 2:
                self.refresh()  # a new order: one whole redraw, not line by line
            else:
                for index in changed:
                    self._refresh_row(index)
        self.scroll_to_cursor()

    def _column_widths(self) -> list[int]:
        widths = [cell_len(self._label(c)) for c in self._columns]
        for i, widest in enumerate(self._widest):
            widths[i] = max(widths[i], widest)
        return widths

    def _measure(self, widths: list[int] | None = None) -> None:
        """New column widths (or the header's labels): the whole table is drawn again."""
        self._widths = self._column_widths() if widths is None else widths
        self._strips.clear()
        total = sum(self._widths) + 2 * self.PADDING * len(self._widths)
        size = Size(total, len(self._rows) + 1)  # +1: the header
        room = self.scrollable_content_region.width
        old = self.virtual_size
        if size.height == old.height and 0 < max(size.width, old.width) <= room:
            # Only the width changed, and the table fits its box before and after: no
            # scrollbar comes or goes, so the screen needs no new layout. Textual's
            # `virtual_size` asks for one on every change, and a sort moves the arrow
            # (" ▲") to a column it may widen: 2 of 3 sorts laid the whole screen out
            # again (2,000 rows, profiled).
            self.set_reactive(Widget.virtual_size, size)
        else:
            self.virtual_size = size
        self.refresh()

    def _refresh_row(self, index: int) -> None:
        """Redraw the line of row `index` if it is on screen (line 0 is the header)."""
        y = index + 1 - round(self.scroll_y)
        region = self.scrollable_content_region
        if 1 <= y < region.height:
            self.refresh(Region(0, y, region.width, 1))

    def _label(self, column: TableColumn) -> str:
        if column.key != self.sort_key:
            return column.label
        return f"{column.label} {'▼' if self.sort_reverse else '▲'}"

    # ------------------------------------------------------------ cursor

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, row: int) -> None:
        if not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        if row != self._cursor:
            # Two lines change: the one the cursor leaves and the one it lands on.
            self._refresh_row(self._cursor)
            self._cursor = row
            self._refresh_row(row)
        self.scroll_to_cursor()

    def scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height - 1
        if height <= 0:
            return  # not laid out yet; on_resize comes back here
        top = round(self.scroll_y)
        if self._cursor < top:
            top = self._cursor
        elif self._cursor >= top + height:
            top = self._cursor - height + 1
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, force=True, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.scroll_to_cursor()

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + self._page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        key = self.cursor_key
        if key is None:
            # An empty list (a filter that matches nothing): say so rather than do nothing.
            message = "no process is selected: the list is empty (escape clears the filter)"
            self.notify(message, title="no detail", severity="warning")
            return
        self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + round(self.scroll_x)
            for column, width in zip(self._columns, self._widths, strict=True):
                x -= width + 2 * self.PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column.key))
                    break
            return
        row = event.y - 1 + round(self.scroll_y)
        if 0 <= row < len(self._rows):
            if row == self._cursor:
                self.action_select_cursor()
            else:
                self.move_cursor(row)

    # ------------------------------------------------------------ drawing

    def notify_style_update(self) -> None:
        self._strips.clear()  # a theme, CSS or focus change: every colour may differ
        self._styles = None
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        return self._render_line_at(y, round(self.scroll_x), self.scrollable_content_region.width)

    def _render_line_at(self, y: int, x: int, width: int) -> Strip:
        """Line `y` scrolled to `x`, `width` cells wide (worked out once for a frame: Textual
        derives the content region anew on each call)."""
        if (x, width) != self._strips_for or len(self._strips) > 4 * max(50, self.size.height):
            self._strips.clear()
            self._strips_for = (x, width)
        row: TableRow | None = None  # stays None for the header and the cursor's row
        stripe = 0
        if y > 0:
            index = y - 1 + round(self.scroll_y)
            if index < len(self._rows) and index != self._cursor:
                row = self._rows[index]
                stripe = index % 2
                kept = self._strips.get(id(row))
                if kept is not None and kept[0] is row and kept[1] == stripe:
                    return kept[2]
        strip = self._draw_line(y, x, width)
        if row is not None:
            self._strips[id(row)] = (row, stripe, strip)
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines of `crop` straight from `render_line` when the box is plain: a line
        of an unchanged row is then the Strip drawn and filtered before."""
        x, width = round(self.scroll_x), self.scrollable_content_region.width
        lines = plain_box_lines(self, crop, lambda y: self._render_line_at(y, x, width))
        return super().render_lines(crop) if lines is None else lines

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """Textual's own property (textual/widget.py, 8.x), with `PlainScrollBar`: a sort
        redraws the scrollbar too."""
        if self._vertical_scrollbar is None:
            bar = PlainScrollBar(
                vertical=True, name="vertical", thickness=self.scrollbar_size_vertical
            )
            bar.display = False
            self._vertical_scrollbar = bar
            self.app._start_widget(self, bar)
        return self._vertical_scrollbar

    def _line_styles(self) -> _LineStyles:
        # Textual works `rich_style` out through every ancestor on each call: once per
        # line was a third of a full table's frame (profiled). Kept until styles change.
        if self._styles is None:
            self._styles = _LineStyles(
                base=self.rich_style,
                header=self.get_component_rich_style("process-table--header"),
                cursor=self.get_component_rich_style("process-table--cursor"),
                even=self.get_component_rich_style("process-table--even-row"),
                tones={
                    tone: self.get_component_rich_style(f"process-table--{tone}", partial=True)
                    for tone in TONES
                },
            )
        return self._styles

    def _draw_line(self, y: int, x: int, width: int) -> Strip:
        styles = self._line_styles()
        base = styles.base
        # Unscrolled, a line narrower than the table's box is padded as it is built: no
        # second Strip to pad it (a sort's frame builds 44 lines).
        fill = width if x == 0 else 0
        if y == 0:
            style = styles.header
            texts = [self._label(c) for c in self._columns]
            widths = [cell_len(t) for t in texts]
            line = self._line(texts, [""] * len(texts), style, {}, widths, fill)
        else:
            index = y - 1 + round(self.scroll_y)
            if index >= len(self._rows):
                return Strip.blank(width, base)
            row = self._rows[index]
            if index == self._cursor:
                style = styles.cursor
                tones: dict[str, Style] = {}  # the cursor's own colours stay readable
            else:
                style = styles.even if index % 2 else base
                tones = styles.tones
            line = self._line(
                [c.text for c in row.cells],
                [c.tone for c in row.cells],
                style,
                tones,
                row.widths,
                fill,
            )
        if line.cell_length == width and x == 0:
            return line
        # The row's background runs to the right edge, as the cursor bar should.
        return line.crop(x, x + width).adjust_cell_length(width, style)

    def _line(
        self,
        texts: list[str],
        tones: list[str],
        style: Style,
        tone_styles: dict[str, Style],
        text_widths: Sequence[int],
        fill: int = 0,
    ) -> Strip:
        """The whole line in `style`, padded in it to `fill` cells if shorter."""
        pad = " " * self.PADDING
        # Cells in the line's own style run together as one Segment: every later step
        # (crop, Textual's styles and filters, the compositor's cuts, the terminal's
        # escape codes) costs per Segment, and most cells have no tone (profiled: a
        # sort's frame of 44 lines was a third our lines and two thirds what follows).
        segments: list[Segment] = []
        run: list[str] = []
        for column, width, text, tone, text_width in zip(
            self._columns, self._widths, texts, tones, text_widths, strict=True
        ):
            spare = width - text_width  # cells, not characters: wide characters count 2
            if spare < 0:
                fitted = set_cell_size(text, width)
            elif column.numeric:
                fitted = " " * spare + text
            else:
                fitted = text + " " * spare
            if tone in tone_styles:
                run.append(pad)
                segments.append(Segment("".join(run), style))
                segments.append(Segment(fitted, style + tone_styles[tone]))
                run = [pad]
            else:
                run += (pad, fitted, pad)
        length = sum(self._widths) + 2 * len(pad) * len(self._widths)
        if fill > length:
            run.append(" " * (fill - length))
            length = fill
        if run:
            segments.append(Segment("".join(run), style))
        return Strip(segments, length)
