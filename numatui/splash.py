"""The first screen, drawn before Textual loads: the nodes and a "reading" line at once.

Loading Textual and building its first frame take 0.3-0.45 s of this 2-core
machine, where the nodes are known ~2 ms after the first read starts
(numatui/first_read.py). So the summary the processes screen opens with is
written straight to the terminal first, in the same rows: the title, the nodes,
why nothing can move (or what a user without root cannot do) and the status
line. Textual's driver then enters the alternate screen the splash is already
on (a second enter keeps the cursor the shell left), and its first frame
repaints every cell. Measured in a real terminal: benchmarks/bench_first_screen.py.

Only numatui's own words and figures are drawn, and still through `visible`
(no control character of any text reaches the terminal but the splash's own).

The terminal is the splash's until Textual's driver starts (the app's `on_load`;
its driver leaves the alternate screen on every way out after that). If the app
never gets that far (Ctrl-C or a signal while Textual loads, a failed import),
`withdraw()` leaves the alternate screen and shows the cursor again.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.safe_text import visible
from numatui.screens.common import READING_PROCESSES, summary_lines

TITLE = "numatui"
READING_MACHINE = "reading the machine…"
"""The summary's text before the nodes are read (as the processes screen says it)."""

MIN_WRAP = 20
"""Narrower than this, summary lines are cut instead of wrapped."""

ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
"""Alternate screen, cursor hidden, cleared."""
LEAVE = "\x1b[?1049l\x1b[?25h"
"""The main screen back (xterm restores the cursor saved on entering), cursor shown."""


def splash_lines(
    early: tuple[Privileges, Topology] | None, width: int, height: int = 1000
) -> list[str]:
    """The rows to draw, top first, at most `height` of them and none wider than
    `width`: the title centred as Textual's header centres it, then, one column in as
    the screen pads them, the processes screen's summary (wrapped as it wraps) and
    its status line (cut)."""
    if early is None:
        summary = [READING_MACHINE]
    else:
        privileges, topology = early
        summary = summary_lines(topology, privileges)
    inner = width - 2
    rows = [" " * max((width - len(TITLE)) // 2, 0) + TITLE]
    for line in summary:
        text = visible(line)
        # Too narrow to wrap into anything readable: cut, as the status line is.
        parts = textwrap.wrap(text, inner) if inner >= MIN_WRAP else [text]
        rows.extend(" " + part for part in parts)
    rows.append(" " + visible(READING_PROCESSES))
    return [_cut(row, width) for row in rows[: max(height, 0)]]


def _cut(row: str, width: int) -> str:
    """At most `width` columns (numatui's own text: one column a character)."""
    return row[: max(width, 0)]


def frame(rows: Sequence[str]) -> str:
    """Everything the splash writes: enter, clear, then each row at its place."""
    drawn = "".join(f"\x1b[{number};1H{row}" for number, row in enumerate(rows, start=1))
    return ENTER + drawn


class Splash:
    """The splash on a terminal, until Textual takes it over or `withdraw()`."""

    def __init__(self, fd: int, columns: int = 80, lines: int = 24) -> None:
        self.fd = fd
        self.columns, self.lines = columns, lines
        self.shown = False

    @classmethod
    def for_terminal(cls, fd: int = 2) -> Splash | None:
        """A splash for `fd` (Textual's output: stderr) if it and stdin (Textual's keys) are
        a terminal that is not dumb, else None. Writes nothing (`draw`)."""
        if os.environ.get("TERM", "dumb") in ("", "dumb"):
            return None
        try:
            if not (os.isatty(fd) and os.isatty(0)):
                return None
            size = os.get_terminal_size(fd)
        except OSError:
            return None
        # A console that reports no size (0x0, a serial line) gets Textual's default.
        return cls(fd, size.columns or 80, size.lines or 24)

    def draw(self, early: tuple[Privileges, Topology] | None) -> None:
        """Enter the alternate screen and draw the rows. Never raises for the terminal: a
        splash that cannot be written is only a later first frame."""
        rows = splash_lines(early, self.columns, self.lines)
        # Set before the first byte: a Ctrl-C during the write still finds the splash up
        # for `withdraw`. Any byte written may have been the alternate screen's.
        self.shown = True
        self.shown = self._write(frame(rows)) > 0

    def withdraw(self) -> None:
        """The terminal as it was: for a start that ended before Textual's driver did."""
        if self.shown:
            self._write(LEAVE)
            self.shown = False

    def _write(self, text: str) -> int:
        """Bytes written of `text`: all of it, or as far as the terminal took it."""
        data = text.encode("utf-8")
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError:  # a non-blocking console that is full, a hung-up terminal
            pass
        return done
