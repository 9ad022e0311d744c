"""The process table widget on its own: cursor by key, paging, clicks, alignment, cropping."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import App, ComposeResult

from numatui.widgets.process_table import ProcessTable, TableCell, TableColumn, TableRow

COLUMNS = [TableColumn("pid", "PID", numeric=True), TableColumn("name", "NAME")]


def rows(pids: list[int]) -> list[TableRow]:
    return [TableRow(pid, (TableCell(str(pid)), TableCell(f"proc-{pid}"))) for pid in pids]


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []

    def compose(self) -> ComposeResult:
        yield ProcessTable(id="t")

    def on_mount(self) -> None:
        table = self.query_one(ProcessTable)
        table.set_columns(COLUMNS)
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
