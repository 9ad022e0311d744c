"""What the running user may do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Privileges:
    """What the running user may do, so faces can explain refusals up front."""

    uid: int
    is_root: bool
    cap_sys_nice: bool  # move shared pages, targets outside a process's cpuset
    cap_sys_ptrace: bool  # read/migrate other users' processes
    processes_hidden: bool = False
    """/proc is mounted with hidepid and we may not see past it: others' processes are missing."""
