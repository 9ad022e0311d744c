"""Page migration and memory tiering counters: /proc/vmstat and each node's own vmstat.

The exporter reports these as they are (cumulative page counts since boot).
Only the counters the running kernel prints are returned: a kernel without
memory tiering has no `pgpromote_success`, and a counter that is missing is
left out rather than reported as zero.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from numatui.kernel.topology import parse_key_values

MACHINE_COUNTERS = (
    "pgmigrate_success",
    "pgmigrate_fail",
    "numa_pages_migrated",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgdemote_khugepaged",
    "thp_migration_success",
    "thp_migration_fail",
)
"""/proc/vmstat counters kept (machine-wide, pages)."""

NODE_COUNTERS = (
    "pgpromote_success",
    "pgpromote_candidate",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgdemote_khugepaged",
)
"""nodeN/vmstat counters kept (per node, pages; Linux 5.18 and later). The NUMA hit/miss
counters there repeat nodeN/numastat, which the topology reader already reads."""

_MAX_BYTES = 1 << 20  # both files are a few KiB; a bigger one is not the kernel's


def _read_text(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, _MAX_BYTES).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def select_counters(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """The `names` present in a vmstat-format text (`name value` lines)."""
    values = parse_key_values(text)
    return {name: values[name] for name in names if name in values}


def machine_counters(proc_root: Path = Path("/proc")) -> dict[str, int] | None:
    """Kept /proc/vmstat counters, or None when the file cannot be read."""
    text = _read_text(proc_root / "vmstat")
    return None if text is None else select_counters(text, MACHINE_COUNTERS)


def node_counters(
    node_ids: list[int] | tuple[int, ...], sys_root: Path = Path("/sys")
) -> Mapping[int, dict[str, int]]:
    """Kept nodeN/vmstat counters per node; nodes whose file cannot be read are left out."""
    root = sys_root / "devices" / "system" / "node"
    out: dict[int, dict[str, int]] = {}
    for node in node_ids:
        text = _read_text(root / f"node{node}" / "vmstat")
        if text is not None:
            out[node] = select_counters(text, NODE_COUNTERS)
    return out
