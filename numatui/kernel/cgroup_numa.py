"""cgroup v2 membership (/proc/PID/cgroup) and per-node memory (`memory.numa_stat`).

Both are untrusted input when read as root: a cgroup path is created by
whoever may make directories in the cgroup tree (a container runtime, a
delegated user). A path is only used below the cgroup2 mount when it is a
plain absolute path without `.`/`..` components or control characters, and
files are opened without following symlinks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_NODE_FIELD = re.compile(r"N([0-9]{1,5})=([0-9]{1,25})", re.ASCII)
_KEY = re.compile(r"[a-z_]{1,64}", re.ASCII)
_MAX_BYTES = 1 << 20
NON_BYTE_PREFIX = "workingset_"  # event counts, not bytes: not memory by kind


def _read_text(path: str, limit: int = _MAX_BYTES) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def parse_cgroup_v2_path(text: str) -> str | None:
    """The unified-hierarchy path (`0::/system.slice/x.service`) of a /proc/PID/cgroup text."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def process_cgroup(pid: int, proc_root: Path = Path("/proc")) -> str | None:
    """Raw cgroup v2 path of `pid`, or None (gone, no cgroup v2, not readable)."""
    text = _read_text(f"{proc_root}/{pid}/cgroup", limit=64 * 1024)
    return None if text is None else parse_cgroup_v2_path(text)


def safe_relative(path: str) -> str | None:
    """`path` without its leading slash when it is safe to look up below the mount."""
    if not path.startswith("/"):
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or not p.isprintable() for p in parts):
        return None
    return "/".join(parts)


def parse_numa_stat(text: str) -> dict[str, dict[int, int]]:
    """`memory.numa_stat`: `kind N0=bytes N1=bytes ...` lines; event counters left out."""
    out: dict[str, dict[int, int]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if not _KEY.fullmatch(key) or key.startswith(NON_BYTE_PREFIX):
            continue
        values = {int(n): int(v) for n, v in _NODE_FIELD.findall(rest)}
        if values:
            out[key] = values
    return out


def cgroup_numa_stat(
    path: str, cgroup_root: Path = Path("/sys/fs/cgroup")
) -> Mapping[str, dict[int, int]] | None:
    """Bytes per node by kind for one cgroup; None when unsafe, missing or unreadable.

    The root cgroup has no memory.numa_stat (the machine's nodes tell that).
    """
    relative = safe_relative(path)
    if relative is None or relative == "":
        return None
    text = _read_text(f"{cgroup_root}/{relative}/memory.numa_stat")
    return None if text is None else parse_numa_stat(text)
