"""What the screens share: the migration rules' answers as one line of text, and summaries.

Whether and where a process may be migrated is decided in `numatui.rules`
(the same rules `validate` refuses with); this module only words them for
the screens. Pure functions over the model (no Textual), unit-tested directly.
"""

from __future__ import annotations

from numatui import rules
from numatui.model.memory import ProcessMemory
from numatui.model.privileges import Privileges
from numatui.model.topology import Node, Topology
from numatui.rules import TargetChoice
from numatui.units import human_bytes

__all__ = ["TargetChoice", "target_choices"]

MISPLACED_LOCALITY = 0.5
"""Below this share of memory on its CPUs' nodes, a process is marked misplaced."""
MISPLACED_MIN_BYTES = 16 * 1024 * 1024
"""Small processes are never marked: moving a few pages is not worth an operator's time."""

NOT_PRIVILEGED = "other users' processes need root or CAP_SYS_NICE"


def machine_migration_blocker(topology: Topology) -> str | None:
    """Why nothing on this machine can be migrated, or None when something can."""
    refusal = rules.machine_refusal(topology)
    if refusal is None:
        return None
    return f"migration unavailable: {refusal.message}"


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
    blocker = rules.process_blocker(process)
    return None if blocker is None else blocker.message


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


def target_choices(
    topology: Topology, process: ProcessMemory, privileges: Privileges
) -> list[TargetChoice]:
    """Every node, disabled with the rules' reason where the kernel would refuse it."""
    return rules.target_choices(topology, process, privileges)


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


def summary_lines(topology: Topology, privileges: Privileges | None) -> list[str]:
    """The processes screen's opening lines: the nodes, then why nothing can move, or
    what a user without root cannot do. The splash (numatui/splash.py) draws the same."""
    lines = [nodes_summary(topology)]
    blocker = machine_migration_blocker(topology)
    if blocker:
        lines.append(blocker)
    else:
        note = privilege_note(privileges)
        if note:
            lines.extend(note.split("\n"))
    return lines


READING_PROCESSES = "reading every process's memory per node…"
"""The status line until the first scan is shown (the processes screen and the splash)."""
