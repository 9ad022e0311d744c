"""Holding a guest test's process still, so two reads of its memory must agree exactly.

A child that printed "ready" may still be running Python on its way to its blocking call
(and faulting pages in, which changes its /proc/PID/stat); and khugepaged may collapse its
anonymous pages into a huge page at any time: that moves them (onto one node) and, where
the range was partly populated, adds pages, all without a fault in the process. Tests that
compare two reads wait until the process is blocked in its syscall, and run it with THP
disabled (PR_SET_THP_DISABLE: khugepaged leaves such a process alone).
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Iterator
from pathlib import Path

PR_SET_THP_DISABLE = 41
SYS_READ = 0
SYS_CLOCK_NANOSLEEP = 230  # time.sleep

_libc = ctypes.CDLL(None, use_errno=True)


def _set_thp_disable(value: int) -> None:
    if _libc.prctl(PR_SET_THP_DISABLE, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_THP_DISABLE)")


@contextlib.contextmanager
def thp_disabled_for_children() -> Iterator[None]:
    """Processes started inside inherit PR_SET_THP_DISABLE (across fork and exec); this
    process gets it back off at the end (it held it only for the start)."""
    _set_thp_disable(1)
    try:
        yield
    finally:
        _set_thp_disable(0)


def blocked_in(pid: int) -> str:
    """/proc/PID/syscall: "<nr> <args...>" while blocked in a syscall, else "running"."""
    return Path(f"/proc/{pid}/syscall").read_text().strip()


def wait_until_blocked_in(
    pid: int, syscall: int, fd: int | None = None, timeout: float = 60.0
) -> None:
    """Wait until `pid` is asleep in `syscall` (on `fd`, if given: its first argument)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = blocked_in(pid)
        fields = seen.split()
        if fields and fields[0] == str(syscall) and (fd is None or int(fields[1], 16) == fd):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "S":
                return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} not blocked in syscall {syscall} after {timeout:g} s: {seen}")
