"""One process read through its /proc directory: a scan's unit of work.

`PidReader` turns a pid into a `ProcessMemory` (or says why there is none). The
scanner uses it for every read, and a scan's helper process (`scan_pool`) loads
only this module, the files and numa_maps parsers and the model's memory module,
so that it starts in a fraction of what the scanner with all its imports costs.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Callable, Mapping
from types import MappingProxyType

from numatui.errors import ProcessGone
from numatui.kernel.kernel_list import parse_kernel_list
from numatui.kernel.numa_maps import (
    MemorySummary,
    merge_summaries,
    node_summary,
    summarize_numa_maps,
)
from numatui.kernel.pid_files import (
    PF_KTHREAD,
    PidDir,
    ProcessUnreadable,
    exited,
    parse_cmdline,
    parse_stat,
    parse_status,
    read_boot_time,
)
from numatui.model.memory import MemoryKind, ProcessMemory
from numatui.model.node_bytes import NodeBytes, frozen_map

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from typing import Any

    from numatui.kernel.pid_files import PidStat

# Reading every thread's stat for a process with thousands of threads would
# dominate the scan; the nodes its threads run on are known well enough from
# the first threads listed.
MAX_THREADS_SAMPLED = 64


class Vanished:
    """Read outcome: the process exited while we read it (or was a zombie)."""


class StatUnreadable:
    """Read outcome: not even /proc/PID/stat is readable (hidepid=1 or a stricter LSM)."""


ReadOutcome = tuple[tuple[int, ...], ProcessMemory, bool] | type[Vanished] | type[StatUnreadable]
"""(stat's `change_signature`, memory, numa_maps unreadable), or why there is none."""


class PidReader:
    """Reads processes of one /proc tree, as this machine's page size and memory nodes say.

    `memory_nodes`: the node ids the numa_maps sums look for (None: found in each
    file); the scanner sets them from each topology it is given.
    """

    def __init__(self, proc: str, page_size: int) -> None:
        self._proc = proc
        self.page_size = page_size
        self.memory_nodes: frozenset[int] | None = None
        self._clock_ticks = os.sysconf("SC_CLK_TCK")
        self._boot_time: float | None = None
        self._users: dict[int, str] = {}

    def boot_time(self) -> float:
        if self._boot_time is None:
            self._boot_time = read_boot_time(self._proc)
        return self._boot_time

    def helper_setup(
        self, cpu_map: Mapping[int, int], nodes_only: bool, cmdline: bool, nice: int = 0
    ) -> dict[str, Any]:
        """What a helper process's `helper_reader` needs to read as this reader does
        (plain values, for `scan_pool`'s wire); `nice`: how much lower the helper's CPU
        priority (`scan_pool` starts it so)."""
        return {
            "nice": nice,
            "proc": self._proc,
            "page_size": self.page_size,
            "memory_nodes": self.memory_nodes,
            "cpu_map": dict(cpu_map),
            "boot_time": self.boot_time(),
            "nodes_only": nodes_only,
            "cmdline": cmdline,
        }

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = str(uid)
            self._users[uid] = name
        return name

    def _cpu_nodes(
        self, pid_dir: PidDir, stat: PidStat, cpu_map: Mapping[int, int]
    ) -> frozenset[int]:
        nodes: set[int] = set()
        main = cpu_map.get(stat.processor)
        if main is not None:
            nodes.add(main)
        if stat.num_threads <= 1 or not cpu_map:
            return frozenset(nodes)
        for cpu in pid_dir.thread_processors(MAX_THREADS_SAMPLED):
            node = cpu_map.get(cpu)
            if node is not None:
                nodes.add(node)
        return frozenset(nodes)

    def read_one(
        self,
        pid: int,
        cpu_map: Mapping[int, int],
        nodes_only: bool = False,
        cmdline: bool = True,
    ) -> ReadOutcome:
        try:
            stat, memory, unreadable = self.read_full(
                pid, cpu_map, nodes_only=nodes_only, cmdline=cmdline
            )
        except ProcessUnreadable:
            return StatUnreadable
        except (ProcessGone, OSError):
            return Vanished
        return stat.change_signature, memory, unreadable

    def read_full(
        self,
        pid: int,
        cpu_map: Mapping[int, int],
        nodes_only: bool = False,
        cmdline: bool = True,
    ) -> tuple[PidStat, ProcessMemory, bool]:
        """Read one process through a held directory fd; (stat, memory, numa_maps unreadable).

        `nodes_only`: bytes per node only (no kinds or shared bytes), what a
        process list shows; numa_maps is then summed in one C-level pass per
        node instead of being split by kind. `cmdline`: read the command line.

        Raises ProcessUnreadable when its stat may not be read, ProcessGone
        (or another OSError) when it exited meanwhile or is a zombie.
        """
        with PidDir(self._proc, pid) as pid_dir:
            stat = parse_stat(pid_dir.read("stat"))
            if stat is None or exited(stat):
                # Zombies and exiting processes have no memory left to show.
                raise ProcessGone(pid)
            is_kthread = bool(stat.flags & PF_KTHREAD)
            summary: MemorySummary | None = None
            unreadable = False
            if not is_kthread:
                summarize = node_summary if nodes_only else summarize_numa_maps
                parts: list[MemorySummary] = []
                try:
                    # A long numa_maps comes in pieces, read on by a child while each
                    # is parsed here (pid_files.read_in_pieces).
                    pid_dir.read_in_pieces(
                        "numa_maps",
                        lambda piece: parts.append(
                            summarize(piece, self.page_size, self.memory_nodes)
                        ),
                    )
                    summary = merge_summaries(parts)
                except ProcessUnreadable:
                    unreadable = True
            try:
                status = parse_status(pid_dir.read("status"))
                skip_cmdline = is_kthread or not cmdline
                command = "" if skip_cmdline else parse_cmdline(pid_dir.read("cmdline"))
            except ProcessUnreadable as e:  # stat was readable: a dying process's files
                raise ProcessGone(pid) from e
            # Read after numa_maps: a live user process still has its mm
            # (VmRSS); without one, numa_maps may have been cut short by exit.
            if not status or (not is_kthread and "VmRSS" not in status):
                raise ProcessGone(pid)
            if status.get("State", "")[:1] in ("Z", "X"):
                raise ProcessGone(pid)
            cpu_nodes = self._cpu_nodes(pid_dir, stat, cpu_map)
        memory = self._build(
            pid, stat, status, command, summary, cpu_nodes, is_kthread, kinds_read=not nodes_only
        )
        if unreadable:
            memory = dataclasses.replace(memory, memory_readable=False)
        return stat, memory, unreadable

    def _build(
        self,
        pid: int,
        stat: PidStat,
        status: Mapping[str, str],
        cmdline: str,
        summary: MemorySummary | None,
        cpu_nodes: frozenset[int],
        is_kthread: bool,
        kinds_read: bool = True,
    ) -> ProcessMemory:
        try:
            uid = int(status.get("Uid", "").split()[0])
            user = self._user(uid)
        except (ValueError, IndexError):
            user = "?"
        try:
            mems_allowed = parse_kernel_list(status.get("Mems_allowed_list", ""))
        except ValueError:
            mems_allowed = frozenset()
        empty: NodeBytes = frozen_map()
        return ProcessMemory(
            pid=pid,
            name=status.get("Name") or stat.comm,
            user=user,
            cmdline=cmdline,
            rss_bytes=stat.rss_pages * self.page_size,
            threads=stat.num_threads,
            node_bytes=frozen_map(summary.node_bytes) if summary else empty,
            kind_bytes=MappingProxyType(
                {k: frozen_map(v) for k, v in summary.kind_bytes.items()} if summary else {}
            ),
            shared_bytes=frozen_map(summary.shared_bytes) if summary else empty,
            mems_allowed=mems_allowed,
            cpu_nodes=cpu_nodes,
            mapping_count=summary.mapping_count if summary else 0,
            start_time=self.boot_time() + stat.start_ticks / self._clock_ticks,
            is_kernel_thread=is_kthread,
            kinds_read=kinds_read or summary is None,
        )


# ---------------------------------------------------------------- helper processes


def encode_outcome(outcome: ReadOutcome) -> object:
    """A read outcome as plain values for `scan_pool`'s wire (marshal)."""
    if outcome is Vanished:
        return "vanished"
    if outcome is StatUnreadable:
        return "stat unreadable"
    assert isinstance(outcome, tuple)
    signature, memory, unreadable = outcome
    fields: dict[str, object] = {}
    for name in ProcessMemory.__dataclass_fields__:
        value = getattr(memory, name)
        if name == "kind_bytes":
            value = {kind.value: dict(by_node) for kind, by_node in value.items()}
        elif isinstance(value, MappingProxyType):
            value = dict(value)
        fields[name] = value
    return (signature, fields, unreadable)


def decode_outcome(wire: Any) -> ReadOutcome:
    """`encode_outcome`'s inverse. Raises ValueError (or TypeError) for anything else."""
    if wire == "vanished":
        return Vanished
    if wire == "stat unreadable":
        return StatUnreadable
    signature, fields, unreadable = wire
    fields = dict(fields)
    fields["kind_bytes"] = MappingProxyType(
        {MemoryKind(kind): frozen_map(by_node) for kind, by_node in fields["kind_bytes"].items()}
    )
    for name in ("node_bytes", "shared_bytes"):
        fields[name] = frozen_map(fields[name])
    return tuple(signature), ProcessMemory(**fields), bool(unreadable)


def helper_reader(setup: Mapping[str, Any]) -> Callable[[int], object]:
    """In a helper process: what reads one pid as the parent's reader would, encoded
    (`setup` is that reader's `helper_setup`)."""
    reader = PidReader(setup["proc"], setup["page_size"])
    reader.memory_nodes = setup["memory_nodes"]
    reader._boot_time = setup["boot_time"]  # start times agree with the parent's to the bit
    cpu_map: dict[int, int] = setup["cpu_map"]
    nodes_only, cmdline = bool(setup["nodes_only"]), bool(setup["cmdline"])

    def read(pid: int) -> object:
        return encode_outcome(reader.read_one(pid, cpu_map, nodes_only, cmdline))

    return read
