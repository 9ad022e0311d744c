"""The splash (numatui/splash.py): the processes screen's opening rows, drawn before
Textual loads. Its rows here; its life on a real terminal in test_terminal.py."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.screens.common import READING_PROCESSES, summary_lines
from numatui.splash import ENTER, LEAVE, READING_MACHINE, Splash, frame, splash_lines
from tests.tui.fakes import four_nodes, single_node

ROOT = Privileges(uid=0, is_root=True, cap_sys_nice=True, cap_sys_ptrace=True)
USER = Privileges(uid=1000, is_root=False, cap_sys_nice=False, cap_sys_ptrace=False)


def test_the_rows_are_the_processes_screens_opening_rows() -> None:
    topology = four_nodes()
    rows = splash_lines((ROOT, topology), 120)
    assert rows[0] == " " * 56 + "numatui"
    assert rows[1:-1] == [" " + line for line in summary_lines(topology, ROOT)]
    assert rows[1].startswith(" 4 nodes (2 memory-only) · ") and " free of " in rows[1]
    assert rows[-1] == " " + READING_PROCESSES


def test_a_machine_that_cannot_migrate_says_why_as_the_screen_does() -> None:
    rows = splash_lines((ROOT, single_node()), 200)
    assert rows[2].startswith(" migration unavailable: "), rows


def test_a_user_without_root_is_told_up_front() -> None:
    rows = splash_lines((USER, four_nodes()), 200)
    assert any(row.startswith(" not root: ") for row in rows), rows


def test_nodes_not_read_yet_say_so() -> None:
    assert splash_lines(None, 80)[1:] == [" " + READING_MACHINE, " " + READING_PROCESSES]


def test_a_long_line_wraps_as_the_screen_wraps_it() -> None:
    rows = splash_lines((ROOT, single_node()), 40)
    assert len(rows) > 4 and all(len(row) <= 40 for row in rows)
    blocker = " ".join(row.strip() for row in rows[2:-1])
    assert blocker == summary_lines(single_node(), ROOT)[1]


def topologies() -> st.SearchStrategy[Topology]:
    return st.sampled_from([single_node(), four_nodes(), four_nodes(sparse=True)])


@given(
    early=st.none() | st.tuples(st.sampled_from([ROOT, USER]), topologies()),
    width=st.integers(0, 300),
    height=st.integers(0, 80),
)
def test_every_row_fits_the_terminal_and_is_plain_text(
    early: tuple[Privileges, Topology] | None, width: int, height: int
) -> None:
    rows = splash_lines(early, width, height)
    assert len(rows) <= height
    for row in rows:
        assert len(row) <= width
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in row), row


def test_the_frame_enters_the_alternate_screen_and_places_each_row() -> None:
    text = frame(["  numatui", " 2 nodes"])
    assert text == ENTER + "\x1b[1;1H  numatui\x1b[2;1H 2 nodes"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, int]]:
    """A pseudo-terminal as stdin and stderr would be: (the app's side, the reader's)."""
    reader, app_side = os.openpty()
    fcntl.ioctl(app_side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    monkeypatch.setenv("TERM", "xterm-256color")
    saved_stdin = os.dup(0)
    os.dup2(app_side, 0)
    try:
        yield app_side, reader
    finally:
        os.dup2(saved_stdin, 0)
        for fd in (saved_stdin, reader, app_side):
            os.close(fd)


def read_all(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode()


def test_shown_on_a_terminal_then_withdrawn(terminal: tuple[int, int]) -> None:
    app_side, reader = terminal
    splash = Splash.for_terminal(fd=app_side)
    assert splash is not None
    splash.draw((ROOT, four_nodes()))
    assert splash.shown
    drawn = read_all(reader)
    assert drawn.startswith(ENTER) and READING_PROCESSES in drawn
    splash.withdraw()
    splash.withdraw()  # once only: a second leave would move the cursor
    assert read_all(reader) == LEAVE


def test_no_splash_on_a_dumb_terminal(
    terminal: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert Splash.for_terminal(fd=terminal[0]) is None
    assert read_all(terminal[1]) == ""


def test_no_splash_where_output_is_not_a_terminal(tmp_path: os.PathLike[str]) -> None:
    with open(os.path.join(tmp_path, "out"), "wb") as out:
        assert Splash.for_terminal(fd=out.fileno()) is None
    assert os.path.getsize(os.path.join(tmp_path, "out")) == 0


def test_a_terminal_that_takes_nothing_is_no_splash(terminal: tuple[int, int]) -> None:
    app_side, _ = terminal
    closed = os.dup(app_side)
    os.close(closed)  # EBADF on the write: as a console that refuses it
    splash = Splash(closed)
    assert splash._write("x") == 0


def test_a_terminal_without_a_size_gets_textuals_default(terminal: tuple[int, int]) -> None:
    app_side, reader = terminal
    fcntl.ioctl(app_side, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    splash = Splash.for_terminal(fd=app_side)
    assert splash is not None
    assert (splash.columns, splash.lines) == (80, 24)
    splash.draw(None)
    assert frame(splash_lines(None, 80, 24)) == read_all(reader)


def test_a_ctrl_c_during_the_draw_leaves_the_splash_to_withdraw(
    terminal: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interrupt lands as the first write returns (a signal handler runs between
    # bytecodes): the alternate screen was entered, so withdraw() must leave it.
    app_side, reader = terminal
    splash = Splash.for_terminal(fd=app_side)
    assert splash is not None and not splash.shown
    real_write = splash._write

    def write_then_interrupt(text: str) -> int:
        real_write(text)
        raise KeyboardInterrupt

    monkeypatch.setattr(splash, "_write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        splash.draw(None)
    monkeypatch.undo()
    assert read_all(reader).startswith(ENTER)
    splash.withdraw()
    assert read_all(reader) == LEAVE
