"""What the running user may do with other processes' memory.

Read from the effective capability set in /proc/self/status, not from the
uid alone: root in a container may lack CAP_SYS_NICE, and a non-root user
may have been granted it (setcap, systemd AmbientCapabilities).
"""

from __future__ import annotations

import os
from pathlib import Path

from numatui.model.privileges import Privileges

CAP_SYS_PTRACE = 19  # act on another user's process (migrate_pages' ptrace-read check)
CAP_SYS_NICE = 23  # move shared pages (MPOL_MF_MOVE_ALL), targets outside the cpuset


def parse_capeff(status_text: str) -> int:
    """The CapEff bitmask from the text of /proc/PID/status (0 when absent)."""
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == "CapEff":
            return int(value.strip(), 16)
    return 0


def privileges_from(uid: int, capeff: int) -> Privileges:
    return Privileges(
        uid=uid,
        is_root=uid == 0,
        cap_sys_nice=bool(capeff >> CAP_SYS_NICE & 1),
        cap_sys_ptrace=bool(capeff >> CAP_SYS_PTRACE & 1),
    )


def read_privileges(proc_root: Path = Path("/proc")) -> Privileges:
    """The calling process's effective uid and capabilities."""
    try:
        status = (proc_root / "self" / "status").read_text()
    except OSError:
        status = ""  # no /proc: assume no capabilities rather than guess them
    return privileges_from(os.geteuid(), parse_capeff(status))
