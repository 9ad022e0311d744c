"""Why a pid has no memory to show or move, in words that are true.

"does not exist" is wrong for a kernel thread (it exists, with no user memory),
a zombie (it has exited), a pid hidden by /proc's hidepid option, or a process
whose numa_maps even root may not read (a security module): each says so here.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from numatui.kernel.pid_files import PF_EXITING, PF_KTHREAD, parse_stat

_GONE = frozenset((errno.ENOENT, errno.ESRCH))
_DENIED = frozenset((errno.EACCES, errno.EPERM))


def _read(path: Path, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def describe_pid(pid: int, proc_root: Path = Path("/proc"), hidepid: bool = False) -> str | None:
    """What keeps `pid` from being shown or moved ("has exited", ...); None if nothing does.

    The text follows "process PID "; `hidepid` says /proc hides other users' processes.
    """
    base = proc_root / str(pid)
    try:
        stat = parse_stat(_read(base / "stat", 4096))
    except OSError as exc:
        if exc.errno in _DENIED:
            return "is hidden from this user by /proc's hidepid option: run as root to see it"
        if hidepid:
            return "does not exist, or belongs to another user and /proc's hidepid hides it"
        return "does not exist"
    if stat is None:
        return "does not exist"
    if stat.state in ("Z", "X", "x") or stat.flags & PF_EXITING:
        return "has exited"
    if stat.flags & PF_KTHREAD:
        return "is a kernel thread: it has no user memory to show or move"
    try:
        _read(base / "numa_maps", 1)
    except OSError as exc:
        if exc.errno in _GONE:
            return "has exited"
        if exc.errno in _DENIED:
            if os.geteuid() == 0:
                return (
                    "has a memory map (numa_maps) that even root may not read "
                    "(a security module denies it)"
                )
            return "has a memory map (numa_maps) this user may not read: run as root"
        return f"has a memory map (numa_maps) that cannot be read: {exc.strerror}"
    return None
