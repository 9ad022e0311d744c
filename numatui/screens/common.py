"""Decisions the screens share: when migration is possible and why not.

Pure functions over the model (no Textual), so the reasons shown on screen are
unit-tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from numatui.model import Node, ProcessMemory, Topology
from numatui.source import Privileges
from numatui.units import human_bytes, node_list

MISPLACED_LOCALITY = 0.5
"""Below this share of memory on its CPUs' nodes, a process is marked misplaced."""
MISPLACED_MIN_BYTES = 16 * 1024 * 1024
"""Small processes are never marked: moving a few pages is not worth an operator's time."""

NOT_PRIVILEGED = "other users' processes need root or CAP_SYS_NICE"


def machine_migration_blocker(topology: Topology) -> str | None:
    """Why nothing on this machine can be migrated, or None when something can."""
    if not topology.numa_available:
        reason = topology.unavailable_reason or "the kernel exposes no NUMA nodes"
        return f"migration unavailable: {reason}"
    if len(topology.with_memory) < 2:
        return "migration unavailable: a single NUMA node with memory, nowhere to move pages to"
    return None


def privilege_note(privileges: Privileges | None) -> str | None:
    """What a non-root user cannot do, said up front."""
    if privileges is None:
        return None
    notes = []
    if privileges.processes_hidden:
        notes.append("/proc hides other users' processes (hidepid): only yours are listed")
    if not (privileges.is_root or privileges.cap_sys_nice):
        notes.append(f"not root: {NOT_PRIVILEGED}; shared pages stay where they are")
    return "\n".join(notes) or None


def process_migration_blocker(process: ProcessMemory) -> str | None:
    """Why this one process cannot be migrated, or None."""
    if process.is_kernel_thread:
        return "kernel threads have no user memory to migrate"
    if process.numa_bytes == 0:
        return "this process has no pages in memory to move"
    return None


def is_misplaced(process: ProcessMemory) -> bool:
    locality = process.locality
    return (
        locality is not None
        and locality < MISPLACED_LOCALITY
        and process.numa_bytes >= MISPLACED_MIN_BYTES
    )


def memory_nodes(topology: Topology) -> list[Node]:
    """Nodes that can hold pages, sorted by id (ids may be sparse: 0,1,4,5)."""
    return sorted((n for n in topology.nodes if n.has_memory), key=lambda n: n.id)


@dataclass(frozen=True)
class TargetChoice:
    """One node offered as a migration target; `reason` is set when it is disabled."""

    node: Node
    reason: str | None

    @property
    def enabled(self) -> bool:
        return self.reason is None


def target_choices(topology: Topology, process: ProcessMemory) -> list[TargetChoice]:
    """Every node, with the reason the kernel would refuse it as a target."""
    single = not topology.can_migrate
    out: list[TargetChoice] = []
    for node in sorted(topology.nodes, key=lambda n: n.id):
        reason: str | None = None
        if single:
            reason = "single node"
        elif not node.online:
            reason = "offline"
        elif not node.has_memory or node.mem_total == 0:
            reason = "no memory"
        elif process.mems_allowed and node.id not in process.mems_allowed:
            reason = f"outside allowed nodes {node_list(process.mems_allowed)}"
        elif node.mem_free <= 0:
            reason = "no free memory"
        out.append(TargetChoice(node, reason))
    return out


def nodes_summary(topology: Topology) -> str:
    """`4 nodes (2 memory-only) · 6.2 GiB free of 16 GiB`."""
    nodes = [n for n in topology.nodes if n.online]
    memory_only = sum(1 for n in nodes if n.memory_only)
    free = sum(n.mem_free for n in nodes)
    total = sum(n.mem_total for n in nodes)
    plural = "node" if len(nodes) == 1 else "nodes"
    parts = [f"{len(nodes)} {plural}"]
    if memory_only:
        parts[0] += f" ({memory_only} memory-only)"
    parts.append(f"{human_bytes(free)} free of {human_bytes(total)}")
    if topology.numa_balancing:
        parts.append("automatic NUMA balancing on")
    return " · ".join(parts)
