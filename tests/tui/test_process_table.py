"""The process table widget on its own: cursor by key, paging, clicks, alignment, cropping."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.geometry import Offset, Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.widget import Widget

from numatui.widgets.plain_box import PlainScrollBar
from numatui.widgets.process_table import ProcessTable, TableCell, TableColumn, TableRow

COLUMNS = [TableColumn("pid", "PID", numeric=True), TableColumn("name", "NAME")]


def rows(pids: list[int]) -> list[TableRow]:
    return [TableRow(pid, (TableCell(str(pid)), TableCell(f"proc-{pid}"))) for pid in pids]


@given(st.text())
def test_a_row_measures_each_cell_as_the_terminal_will_show_it(text: str) -> None:
    """Printable ASCII is measured by its length, everything else by Rich: the same widths."""
    assert TableRow(1, (TableCell(text), TableCell(f"{text}·"))).widths == (
        cell_len(text),
        cell_len(f"{text}·"),
    )


class TableApp(App[None]):
    AUTO_FOCUS = None  # focus is the test's choice (`start_focused`)

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []
        self.start_focused = True

    def compose(self) -> ComposeResult:
        yield ProcessTable(id="t")

    def on_mount(self) -> None:
        table = self.query_one(ProcessTable)
        table.set_columns(COLUMNS)
        if self.start_focused:
            table.focus()

    def on_process_table_row_selected(self, message: ProcessTable.RowSelected) -> None:
        self.messages.append(("row", message.key))

    def on_process_table_header_selected(self, message: ProcessTable.HeaderSelected) -> None:
        self.messages.append(("header", message.column_key))


def line_texts(table: ProcessTable, count: int) -> list[str]:
    return [table.render_line(y).text for y in range(count)]


async def test_cursor_follows_its_key_through_new_orders() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows(list(range(1, 101))))
        await pilot.press("down", "down")
        assert table.cursor_key == 3
        table.set_rows(rows(list(range(100, 0, -1))))  # reversed: pid 3 is now row 97
        assert table.cursor_key == 3 and table.cursor_row == 97
        await pilot.pause()
        # Scrolled so the cursor is on screen: header + 10 body lines at this size.
        first_shown = round(table.scroll_y)
        assert first_shown <= 97 < first_shown + table.scrollable_content_region.height - 1
        # The cursor's row leaves: the cursor stays at the same height.
        table.set_rows(rows([p for p in range(100, 0, -1) if p != 3]))
        assert table.cursor_row == 97 and table.cursor_key == 2
        table.set_rows([])
        assert table.cursor_key is None and table.row_count == 0
        await pilot.press("enter", "down", "pagedown")  # nothing to move or select
        assert app.messages == []


async def test_paging_home_end_and_enter() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows(list(range(1, 51))))
        await pilot.pause()
        page = table.scrollable_content_region.height - 1
        await pilot.press("pagedown")
        assert table.cursor_row == page
        await pilot.press("end")
        assert table.cursor_row == 49
        assert table.render_line(table.scrollable_content_region.height - 1).text.strip()
        await pilot.press("pageup", "home", "up")
        assert table.cursor_row == 0
        await pilot.press("down", "enter")
        assert app.messages == [("row", 2)]


async def test_header_and_row_clicks() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows([10, 20, 30]))
        await pilot.pause()
        # Columns: " PID " (5 cells wide: 3 + padding), then " NAME... ".
        await pilot.click(ProcessTable, offset=(1, 0))
        await pilot.click(ProcessTable, offset=(8, 0))
        assert app.messages == [("header", "pid"), ("header", "name")]
        await pilot.click(ProcessTable, offset=(8, 3))  # third row: moves the cursor there
        assert table.cursor_key == 30 and app.messages[2:] == []
        await pilot.click(ProcessTable, offset=(8, 3))  # again: selects it
        assert app.messages[2:] == [("row", 30)]


async def test_numbers_right_aligned_names_left_and_sort_arrow() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows([7, 12345]))
        table.set_sort("pid", reverse=True)
        await pilot.pause()
        header, first, second = line_texts(table, 3)
        # PID is as wide as its widest text, "PID ▼" and "12345" (5 cells), padded 1 each side.
        assert header.startswith(" PID ▼  NAME")
        assert first.startswith("     7  proc-7 ")
        assert second.startswith(" 12345  proc-12345")
        assert table.get_column("name") == ["proc-7", "proc-12345"]


async def test_wide_tables_scroll_sideways_and_wide_characters_keep_columns() -> None:
    app = TableApp()
    async with app.run_test(size=(20, 8)) as pilot:
        table = app.query_one(ProcessTable)
        wide = [TableRow(1, (TableCell("1"), TableCell("名前" * 10))), *rows([2])]
        table.set_rows(wide)
        await pilot.pause()
        assert table.virtual_size.width > table.scrollable_content_region.width
        for y in range(3):
            assert cell_len(table.render_line(y).text) == table.scrollable_content_region.width
        before = table.render_line(2).text
        await pilot.press("right", "right", "right")
        assert table.scroll_x > 0 and table.render_line(2).text != before


def count_layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the screen is laid out from now on (one element per layout)."""
    layouts: list[int] = []
    original = Screen._refresh_layout

    def counted(self: Screen[object], *args: object, **kwargs: object) -> None:
        layouts.append(1)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    return layouts


async def sorted_from_the_start(table_rows: list[TableRow], key: str, size: tuple[int, int]) -> str:
    app = StyledTableApp()
    async with app.run_test(size=size) as pilot:
        table = app.query_one(ProcessTable)
        table.set_sort(key, reverse=False)
        table.set_rows(table_rows)
        await pilot.pause()
        return app.export_screenshot()


async def test_a_sort_arrow_widening_a_column_within_the_box_lays_out_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # " ▲" makes a column as wide as its label 2 cells wider. While the table fits its box
    # before and after, no scrollbar comes or goes: the screen is not laid out again (it
    # cost most of a sort's frame), and shows what a table sorted from the start shows.
    app = StyledTableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows([1, 2, 3]))
        await pilot.pause()
        width = table.virtual_size.width
        layouts = count_layouts(monkeypatch)
        table.set_sort("pid", reverse=False)
        await pilot.pause()
        assert table.virtual_size.width == width + 2
        assert table.render_line(0).text.startswith(" PID ▲  NAME")
        assert table.render_line(1).text.startswith("     1  proc-1 ")
        assert not layouts
        shown = app.export_screenshot()
    assert shown == await sorted_from_the_start(rows([1, 2, 3]), "pid", (40, 12))


async def test_a_sort_arrow_that_overflows_the_box_brings_the_scrollbar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 20 cells: PID (3) and a 13-cell name, each padded 1 a side, fill the box exactly;
    # the arrow on PID makes the table 22 wide, and it scrolls sideways.
    table_rows = [TableRow(1, (TableCell("1"), TableCell("abcdefghijklm")))]
    app = StyledTableApp()
    async with app.run_test(size=(20, 8)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(table_rows)
        await pilot.pause()
        assert table.virtual_size.width == table.scrollable_content_region.width == 20
        assert not table.show_horizontal_scrollbar
        layouts = count_layouts(monkeypatch)
        table.set_sort("pid", reverse=False)
        await pilot.pause()
        assert layouts and table.show_horizontal_scrollbar
        assert table.virtual_size.width == 22
        await pilot.press("right", "right")
        assert table.scroll_x == 2
        assert table.render_line(0).text.startswith("ID ▲  NAME")
        # The arrow moves on to NAME: PID is narrow again, the table fits and the bar goes.
        table.set_sort("name", reverse=False)
        await pilot.pause()
        assert not table.show_horizontal_scrollbar and table.scroll_x == 0
        shown = app.export_screenshot()
    assert shown == await sorted_from_the_start(table_rows, "name", (20, 8))


def renamed(pid: int, name: str) -> TableRow:
    return TableRow(pid, (TableCell(str(pid)), TableCell(name)))


class StyledTableApp(TableApp):
    # The cursor and the stripes must show in a screenshot for a stale line to be seen.
    CSS = """
    ProcessTable > .process-table--cursor { background: red; }
    ProcessTable > .process-table--even-row { background: blue; }
    """


async def screen_of(
    final: list[TableRow],
    cursor_key: int,
    top: int,
    theme: str | None = None,
    focused: bool = True,
    app_class: type[StyledTableApp] | None = None,
) -> str:
    """The screen a fresh table shows for these rows, drawn whole once."""
    app = (app_class or StyledTableApp)()
    app.start_focused = focused  # never focused: nothing drawn before can be left over
    async with app.run_test(size=(40, 12)) as pilot:
        if theme is not None:
            app.theme = theme
        table = app.query_one(ProcessTable)
        table.set_rows(final)
        await pilot.pause()
        table.scroll_to(y=top, animate=False, immediate=True)
        table.move_cursor(table.get_row_index(cursor_key))
        await pilot.pause()
        assert round(table.scroll_y) == top
        assert table.has_focus is focused
        return app.export_screenshot()


async def show(pilot: Pilot[None], table: ProcessTable, new: list[TableRow], **kw: int) -> None:
    """Hand the table `new` rows and let it draw them."""
    table.set_rows(new, **kw)
    await pilot.pause()


def drawn(app: App[None], table: ProcessTable) -> tuple[str, int, int]:
    """What is on screen now, the top row and the cursor's key: to compare with `screen_of`."""
    key = table.cursor_key
    assert key is not None
    return app.export_screenshot(), round(table.scroll_y), key


async def test_partial_redraws_leave_the_screen_a_whole_redraw_would() -> None:
    # Updates redraw only the lines whose row or cursor changed: what is on screen after
    # a run of them must be what a table drawn whole shows (no line left stale). The row
    # count stays the same throughout: a new count redraws everything anyway.
    app = StyledTableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        current = rows(list(range(10, 40)))
        table.set_rows(current)
        await pilot.press("down", "down", "down")  # cursor on pid 13
        await pilot.pause()
        # A visible row changes (same width) and one off screen.
        current = [renamed(r.key, "proc-XY") if r.key in (11, 35) else r for r in current]
        await show(pilot, table, current)
        await pilot.press("down")  # onto pid 14
        await pilot.pause()
        # Two visible rows trade places.
        current[6], current[7] = current[7], current[6]
        await show(pilot, table, current)
        # The cursor's row moves up by one: a row above it leaves, one comes at the end.
        current = [*current[1:], renamed(40, "proc-40")]
        await show(pilot, table, current)
        # A row's name grows: its column widens (every line is drawn again).
        current = [renamed(12, "proc-with-a-longer-name") if r.key == 12 else r for r in current]
        await show(pilot, table, current)
        # A new order of the same rows (a sort), twice: the widths are kept, not measured.
        await show(pilot, table, current[::-1])
        await show(pilot, table, current)
        # The same rows, the cursor put on another one (a pid asked for by the screen).
        await show(pilot, table, list(current), keep_key=18)
        shown, top, key = drawn(app, table)
    assert key == 18
    assert shown == await screen_of(current, key, top)


async def test_kept_lines_follow_scrolling_and_a_new_theme() -> None:
    # Lines of rows off the cursor are kept between frames: scrolling away and back,
    # and a theme change, must show what a fresh table shows.
    app = StyledTableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        current = rows(list(range(10, 70)))
        await show(pilot, table, current)
        await pilot.press(*["down"] * 15, "end", "home", *["down"] * 12)
        await pilot.pause()
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.press("up")
        await pilot.pause()
        shown, top, key = drawn(app, table)
    assert key == 21 and top > 0
    assert shown == await screen_of(current, key, top, theme="textual-light")


class FocusTintApp(StyledTableApp):
    CSS = StyledTableApp.CSS + "ProcessTable:focus > .process-table--cursor { background: green; }"


async def test_kept_lines_follow_the_focus() -> None:
    # The cursor has its own colour while focused (as in the app): not kept after blur.
    app = FocusTintApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        current = rows(list(range(10, 70)))
        await show(pilot, table, current)
        await pilot.press("down", "down")
        await pilot.pause()
        focused = app.export_screenshot()
        table.blur()
        await pilot.pause()
        shown, top, key = drawn(app, table)
    assert shown != focused  # the cursor's colour follows the focus, as its CSS says
    assert key == 12
    assert shown == await screen_of(current, key, top, focused=False, app_class=FocusTintApp)


class TonedTableApp(TableApp):
    CSS = "ProcessTable > .process-table--misplaced { color: #ff0000; }"


async def test_cells_in_the_line_style_run_together_and_tones_keep_their_colour() -> None:
    app = TonedTableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(ProcessTable)
        toned = TableRow(9, (TableCell("9", "misplaced"), TableCell("proc-9")))
        table.set_rows([*rows([7, 8]), toned])
        await pilot.pause()
        # Every later step costs per Segment: a plain row is one run of text (plus the
        # padding to the right edge), a toned cell its own Segment between two runs.
        plain = [s for s in list(table.render_line(2)) if s.text]  # row 8, off the cursor
        assert len(plain) <= 2 and plain[0].text.split() == ["8", "proc-8"], plain
        parts = [s for s in list(table.render_line(3)) if s.text]
        texts = [s.text for s in parts]
        assert texts[0] == " " and texts[1].strip() == "9", texts
        assert texts[2].startswith("  proc-9"), texts
        assert parts[1].style is not None and parts[1].style.color is not None
        assert parts[1].style.color.triplet == (255, 0, 0)
        assert parts[0].style is not None and parts[0].style.color != parts[1].style.color


async def test_lines_are_those_textuals_styles_pass_would_draw() -> None:
    """`render_lines` skips Textual's styles pass for the table's plain box: the same
    Strips must come out, focused or not, in any theme, in ANSI colours, for any crop,
    and a box that is not plain (padding, a border) goes through Textual's pass."""
    app = TonedTableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(
            [
                *rows(list(range(1, 30))),
                TableRow(99, (TableCell("99", "misplaced"), TableCell("名前"))),
            ]
        )
        await pilot.pause()
        width, height = table.region.size
        crops = [Region(0, 0, width, height), Region(3, 2, 10, 3), Region(0, height - 1, width, 1)]

        def same() -> None:
            for crop in crops:
                ours = table.render_lines(crop)
                table._styles_cache.clear()
                assert ours == ScrollView.render_lines(table, crop), (crop, app.theme)

        same()
        with mock.patch.object(ScrollView, "render_lines", side_effect=AssertionError("pass")):
            table.render_lines(crops[0])  # the plain box never takes Textual's pass
        table.blur()
        await pilot.pause()
        same()
        for theme in ("textual-light", "nord"):
            app.theme = theme
            await pilot.pause()
            same()
        app.ansi_color = True
        await pilot.pause()
        same()
        table.styles.padding = (0, 1)
        await pilot.pause()
        crop = Region(0, 0, *table.region.size)
        assert table.render_lines(crop) == ScrollView.render_lines(table, crop)
        assert table.render_lines(crop)[1].text.startswith(" ")  # the padding is drawn


async def test_the_apps_line_filters_apply_to_the_tables_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # the app then adds a filter that drops colour
    app = TonedTableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(ProcessTable)
        toned = TableRow(9, (TableCell("9", "misplaced"), TableCell("proc-9")))
        table.set_rows([*rows([8]), toned])  # the toned row off the cursor
        await pilot.pause()
        crop = Region(0, 0, *table.region.size)
        ours = table.render_lines(crop)
        assert ours == ScrollView.render_lines(table, crop)
        colours = {seg.style.color for strip in ours for seg in strip if seg.style}
        assert not any(c is not None and c.triplet == (255, 0, 0) for c in colours), colours


def assert_bar_draws_as_textual(bar: PlainScrollBar) -> int:
    """The bar's lines against Textual's pass, for the whole bar and a crop of it."""
    crops = [Region(0, 0, *bar.region.size), Region(0, 3, bar.region.width, 4)]
    for crop in crops:
        ours = bar.render_lines(crop)
        bar._styles_cache.clear()
        bar.refresh()  # Textual's own content is drawn again, not kept
        assert ours == Widget.render_lines(bar, crop), (crop, bar.position)
    return len(crops)


@pytest.mark.parametrize("no_color", [False, True])
async def test_the_scrollbar_draws_the_lines_textual_would(
    no_color: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's scrollbar draws its lines from the bar's segments, not through Rich and
    Textual's styles pass: the same Strips must come out wherever the thumb is, hovered or
    grabbed, in any theme, in ANSI colours and under NO_COLOR's filter."""
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.set_rows(rows(list(range(1, 300))))
        await pilot.pause()
        bar = table.vertical_scrollbar
        assert isinstance(bar, PlainScrollBar) and bar.display
        compared = assert_bar_draws_as_textual(bar)
        with mock.patch.object(Widget, "render_lines", side_effect=AssertionError("pass")):
            bar.render_lines(Region(0, 0, *bar.region.size))  # never Textual's pass
        positions = {bar.position}
        for key in ("pagedown", "pagedown", "end", "up"):
            await pilot.press(key)
            positions.add(bar.position)
            compared += assert_bar_draws_as_textual(bar)
        assert len(positions) == 4  # the thumb was drawn at the top, twice lower, the end
        bar.mouse_over = True
        await pilot.pause()
        compared += assert_bar_draws_as_textual(bar)
        bar.grabbed = Offset(0, 2)
        await pilot.pause()
        compared += assert_bar_draws_as_textual(bar)
        bar.grabbed = None
        for theme in ("textual-light", "nord"):
            app.theme = theme
            await pilot.pause()
            compared += assert_bar_draws_as_textual(bar)
        app.ansi_color = True
        await pilot.pause()
        compared += assert_bar_draws_as_textual(bar)
        assert compared == 20
