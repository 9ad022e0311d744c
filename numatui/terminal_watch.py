"""Whether the terminal the app draws on is still there.

A terminal that goes away sends SIGHUP to its session, and the app leaves on it
(`NumatuiApp.EXIT_SIGNALS`). One that goes away without it (numatui started in a
session of its own, or with SIGHUP ignored, as under nohup) leaves stdin at EOF
for good, and Textual's input thread then reads that EOF in a loop (Textualize/
textual pull request 6690, open): measured here, 60-90 % of a core for as long
as the process lives. So the app also asks the terminal itself, every few seconds.
"""

from __future__ import annotations

import errno
import termios


def terminal_gone(fd: int) -> bool:
    """True when `fd` is a terminal that has hung up: the kernel answers its ioctls with
    EIO. False for a live terminal, and for anything that never was one."""
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:  # not an OSError: its args are (errno, text)
        return bool(exc.args) and exc.args[0] == errno.EIO
    return False
