"""/proc/vmstat: the one reader of the machine-wide counters.

The topology reader charts them (`Topology.vm`); the scanner watches the
migration counters among them to learn that pages moved without a fault in
their process (`MigrationCounters`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from numatui.model.topology import VmCounters

_KEY_VALUE_LINE = re.compile(r"^([a-z0-9_]+)[ \t]+([0-9]+)[ \t]*$", re.MULTILINE | re.ASCII)
MAX_COUNTER_DIGITS = 30  # no counter the kernel prints is longer; int() of huge text is slow


def parse_key_values(text: str) -> dict[str, int]:
    """`name value` lines (nodeN/numastat, /proc/vmstat); other lines are ignored. Never raises."""
    out: dict[str, int] = {}
    for key, value in _KEY_VALUE_LINE.findall(text):
        if len(value) <= MAX_COUNTER_DIGITS:
            out[key] = int(value)
    return out


def parse_vmstat(text: str) -> VmCounters:
    values = parse_key_values(text)
    return VmCounters(
        pgmigrate_success=values.get("pgmigrate_success", 0),
        pgmigrate_fail=values.get("pgmigrate_fail", 0),
        numa_hit=values.get("numa_hit", 0),
        numa_miss=values.get("numa_miss", 0),
        numa_pages_migrated=values.get("numa_pages_migrated", 0),
        thp_collapse_alloc=values.get("thp_collapse_alloc", 0),
        pgmigrate_counted="pgmigrate_success" in values,
    )


_MAX_BYTES = 1 << 20  # vmstat files are a few KiB; a bigger one is not the kernel's


def read_counter_text(path: Path) -> str | None:
    """A vmstat-format file (`/proc/vmstat`, `nodeN/vmstat`) as text, or None when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while size < _MAX_BYTES and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def read_vmstat(proc_root: Path = Path("/proc")) -> VmCounters | None:
    """`proc_root`/vmstat now, or None when it cannot be read."""
    text = read_counter_text(proc_root / "vmstat")
    return None if text is None else parse_vmstat(text)


@dataclass(frozen=True, slots=True)
class MigrationCounters:
    """Cumulative /proc/vmstat counts of pages moved without a fault in the process they belong to.

    Only whether they changed between two reads matters (see `ProcessScanner.scan`).

    `not_by_balancing` = pgmigrate_success - numa_pages_migrated. migrate_pages()
    in mm/migrate.c adds every page it moves, for any reason, to
    pgmigrate_success: the migrate_pages/move_pages/mbind syscalls and cpuset
    memory_migrate (pages moved in a syscall, not in a fault of their
    process), demotion to a slower tier (kswapd, direct and khugepaged
    reclaim; pgdemote_* are a subset, so they are not added again), memory
    hot-unplug, compaction and contiguous allocations (same node, but not
    told apart: no counter says how many pages compaction moved),
    soft-offlining and long-term pinning. NUMA balancing's
    own moves (numa_pages_migrated, promotions between tiers included, so
    pgpromote_success is not added either) are made inside a hinting fault of
    the process, which its minflt already shows, so they are taken out; the
    other processes sharing such a page see it only at their max age.

    `collapsed` = thp_collapse_alloc: khugepaged (and MADV_COLLAPSE) copy
    base pages into a newly allocated huge page, on the node holding most of
    them, without migrate_pages() and without a fault in the process.

    The two are kept apart rather than summed, so a change of one can never
    be cancelled by the other.
    """

    not_by_balancing: int
    collapsed: int


def migration_counters(vm: VmCounters) -> MigrationCounters | None:
    """The counters from a vmstat read; None without pgmigrate_success.

    Without pgmigrate_success (a kernel built without CONFIG_MIGRATION, a
    file that is not vmstat) there is no signal. An absent numa_pages_migrated
    (no CONFIG_NUMA_BALANCING) or thp_collapse_alloc (no THP) means no such
    event can happen: 0.
    """
    if not vm.pgmigrate_counted:
        return None
    return MigrationCounters(
        not_by_balancing=vm.pgmigrate_success - vm.numa_pages_migrated,
        collapsed=vm.thp_collapse_alloc,
    )


def parse_migration_counters(data: bytes) -> MigrationCounters | None:
    """`migration_counters` of /proc/vmstat bytes. Never raises."""
    return migration_counters(parse_vmstat(data.decode("ascii", "replace")))


# Counters the exporter reports as they are (cumulative page counts since boot). Only the
# counters the running kernel prints are returned: a missing one is left out, not reported as 0.
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


def select_counters(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """The `names` present in a vmstat-format text (`name value` lines)."""
    values = parse_key_values(text)
    return {name: values[name] for name in names if name in values}


def machine_counters(proc_root: Path = Path("/proc")) -> dict[str, int] | None:
    """Kept /proc/vmstat counters, or None when the file cannot be read."""
    text = read_counter_text(proc_root / "vmstat")
    return None if text is None else select_counters(text, MACHINE_COUNTERS)


def node_counters(
    node_ids: list[int] | tuple[int, ...], sys_root: Path = Path("/sys")
) -> Mapping[int, dict[str, int]]:
    """Kept nodeN/vmstat counters per node; nodes whose file cannot be read are left out."""
    root = sys_root / "devices" / "system" / "node"
    out: dict[int, dict[str, int]] = {}
    for node in node_ids:
        text = read_counter_text(root / f"node{node}" / "vmstat")
        if text is not None:
            out[node] = select_counters(text, NODE_COUNTERS)
    return out
