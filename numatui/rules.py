"""The migration rules: what may be migrated where, as findings with stable codes.

One place decides. `kernel/migration.validate` refuses with the first refusal
found here, the migrate dialog disables the targets refused here (with the
same words), `Topology.can_migrate` is `machine_refusal(...) is None`, and the
CLI prints the codes in `migrate --json`. Pure functions over the model (no I/O,
no Textual), so every answer is unit-tested without a terminal or a kernel.

Each refusal carries the errno the kernel would answer for the same request
(mm/mempolicy.c `kernel_migrate_pages`), so a script sees one answer whether
numatui refused up front or the kernel did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from numatui.model.findings import Finding, RuleCode
from numatui.model.groups import GroupMember, MemberStatus
from numatui.model.memory import MemoryKind, ProcessMemory
from numatui.model.migration import MigrationError, MigrationOutcome
from numatui.model.privileges import Privileges
from numatui.model.topology import Node, Topology
from numatui.units import format_bytes, node_list

__all__ = [
    "Finding",
    "RuleCode",
    "TargetChoice",
    "drain_refusal",
    "drain_targets",
    "group_verdict",
    "machine_refusal",
    "pick_drain_target",
    "plan_warnings",
    "process_blocker",
    "process_refusal",
    "request_refusal",
    "target_choices",
    "target_refusal",
]


def _nodes(nodes: Iterable[int]) -> str:
    listed = node_list(frozenset(nodes))
    return "none" if listed == "-" else listed


def machine_refusal(topology: Topology) -> Finding | None:
    """Why nothing on this machine can be migrated, or None when something can."""
    if not topology.numa_available:
        reason = topology.unavailable_reason or "the kernel exposes no NUMA nodes"
        return Finding(
            RuleCode.NUMA_UNAVAILABLE,
            f"NUMA is not available here ({reason}): there is nothing to move",
            "ENOSYS",
            "no NUMA",
        )
    if len(topology.with_memory) < 2:
        return Finding(
            RuleCode.SINGLE_MEMORY_NODE,
            "this machine has a single NUMA node with memory: there is nowhere to move memory to",
            "",
            "single node",
        )
    return None


def process_refusal(pid: int, process: ProcessMemory | None) -> Finding | None:
    """Why this process's memory cannot be moved at all (gone, kernel thread), or None."""
    if process is None or process.pid != pid:
        return Finding(
            RuleCode.PROCESS_GONE,
            f"process {pid} does not exist (it may have exited)",
            "ESRCH",
            "gone",
        )
    if process.is_kernel_thread:
        return Finding(
            RuleCode.KERNEL_THREAD,
            f"process {pid} ({process.name}) is a kernel thread: kernel threads have no user "
            "memory to move",
            "EINVAL",
            "kernel thread",
        )
    return None


def process_blocker(process: ProcessMemory) -> Finding | None:
    """Why offering to migrate this process makes no sense (the app's `m` key), or None."""
    refusal = process_refusal(process.pid, process)
    if refusal is not None:
        return refusal
    if process.numa_bytes == 0:
        return Finding(
            RuleCode.NO_PAGES, "this process has no pages in memory to move", "", "no pages"
        )
    return None


def target_refusal(
    node_id: int,
    topology: Topology,
    process: ProcessMemory | None,
    privileges: Privileges,
) -> Finding | None:
    """Why the kernel would refuse `node_id` as a target for `process`, or None."""
    node = topology.node(node_id)
    if node is None:
        return Finding(
            RuleCode.NODE_MISSING,
            f"node {node_id} does not exist (this machine has "
            f"{_nodes(n.id for n in topology.nodes)})",
            "EINVAL",
            "no such node",
        )
    if not node.online:
        return Finding(
            RuleCode.TARGET_OFFLINE,
            f"node {node_id} is offline: pick one of {_nodes(topology.online)}",
            "EINVAL",
            "offline",
        )
    if not node.has_memory:
        return Finding(
            RuleCode.TARGET_NO_MEMORY,
            f"node {node_id} has no memory (CPU-only node): pick one of "
            f"{_nodes(topology.with_memory)}",
            "EINVAL",
            "no memory",
        )
    if (
        process is not None
        and process.mems_allowed
        and node_id not in process.mems_allowed
        and not privileges.cap_sys_nice
    ):
        return Finding(
            RuleCode.TARGET_OUTSIDE_CPUSET,
            f"node {node_id} is outside process {process.pid}'s cpuset (it may use "
            f"{_nodes(process.mems_allowed)}): the kernel refuses this (EPERM) without "
            "CAP_SYS_NICE; pick a node inside the cpuset, or run as root",
            "EPERM",
            f"outside allowed nodes {node_list(process.mems_allowed)}",
        )
    return None


def _outside_cpuset_warning(process: ProcessMemory, targets: frozenset[int]) -> Finding | None:
    if not process.mems_allowed or targets <= process.mems_allowed:
        return None
    return Finding(
        RuleCode.TARGET_OUTSIDE_CPUSET,
        f"node {_nodes(targets - process.mems_allowed)} is outside the process's cpuset: "
        "memory it allocates from now on still goes to its own nodes",
        "",
        "outside its cpuset",
    )


def _no_free_memory_warning(node: Node) -> Finding | None:
    if not node.mem_total or node.mem_free > 0:
        return None
    return Finding(
        RuleCode.TARGET_NO_FREE_MEMORY,
        f"node {node.id} has no free memory: what does not fit stays where it is",
        "",
        "no free memory",
    )


@dataclass(frozen=True)
class TargetChoice:
    """One node offered as a target: disabled when `refusal` is set; `warning` is shown."""

    node: Node
    refusal: Finding | None = None
    warning: Finding | None = None

    @property
    def enabled(self) -> bool:
        return self.refusal is None

    @property
    def reason(self) -> str | None:
        """The few words shown next to a disabled node."""
        return None if self.refusal is None else self.refusal.short


def target_choices(
    topology: Topology, process: ProcessMemory, privileges: Privileges
) -> list[TargetChoice]:
    """Every node, with the refusal the kernel would give it as a target (same rules as
    `request_refusal`), and what to warn about the ones it accepts."""
    machine = machine_refusal(topology)
    out: list[TargetChoice] = []
    for node in sorted(topology.nodes, key=lambda n: n.id):
        refusal = machine or target_refusal(node.id, topology, process, privileges)
        warning = None
        if refusal is None:
            warning = _outside_cpuset_warning(
                process, frozenset({node.id})
            ) or _no_free_memory_warning(node)
        out.append(TargetChoice(node, refusal, warning))
    return out


def request_refusal(
    pid: int,
    sources: frozenset[int],
    targets: frozenset[int],
    topology: Topology,
    process: ProcessMemory | None,
    privileges: Privileges,
    *,
    process_uid: int | None,
    caller_mems: frozenset[int] | None,
) -> Finding | None:
    """The first reason to refuse moving `pid`'s pages from `sources` to `targets`, or None.

    An empty source set, or identical sets, is not refused: nothing moves. The
    order follows the kernel's where it matters (permission before the targets'
    cpuset, EINVAL last), so the errno is the one the kernel would give.
    """
    machine = machine_refusal(topology)
    if machine is not None:
        return machine
    gone = process_refusal(pid, process)
    if gone is not None or process is None:
        return gone
    if not sources or sources == targets:
        return None
    if not targets:
        return Finding(
            RuleCode.NO_TARGET,
            "no target node given: pick at least one node to move memory to",
            "EINVAL",
            "no target",
        )
    unknown_sources = sorted(n for n in sources if topology.node(n) is None)
    if unknown_sources:
        return Finding(
            RuleCode.NODE_MISSING,
            f"source node {_nodes(unknown_sources)} does not exist "
            f"(this machine has {_nodes(n.id for n in topology.nodes)})",
            "EINVAL",
            "no such node",
        )
    if process_uid is not None and process_uid != privileges.uid and not privileges.cap_sys_ptrace:
        return Finding(
            RuleCode.OTHER_USER,
            f"process {pid} belongs to another user ({process.user}): moving its memory needs "
            "root or CAP_SYS_PTRACE (and CAP_SYS_NICE for its shared pages); run numatui with sudo",
            "EPERM",
            "another user's",
        )
    # Non-existent, offline and memory-less targets first: they are not the cpuset's fault.
    refusals = [target_refusal(n, topology, process, privileges) for n in sorted(targets)]
    for refusal in refusals:
        if refusal is not None and refusal.code is not RuleCode.TARGET_OUTSIDE_CPUSET:
            return refusal
    for refusal in refusals:
        if refusal is not None:
            return refusal
    if caller_mems is not None and not targets & caller_mems:
        return Finding(
            RuleCode.TARGET_OUTSIDE_NUMATUI_CPUSET,
            f"node {_nodes(targets)} is outside numatui's own cpuset (it may use "
            f"{_nodes(caller_mems)}): the kernel would refuse (EINVAL); run numatui "
            "in a cgroup whose cpuset.mems includes the target",
            "EINVAL",
            "outside numatui's cpuset",
        )
    return None


def plan_warnings(
    process: ProcessMemory,
    topology: Topology,
    pairs: tuple[tuple[int, int], ...],
    bytes_per_pair: tuple[int, ...],
    targets: frozenset[int],
    kernel_targets: frozenset[int],
    shared_staying: int,
) -> tuple[Finding, ...]:
    """What an accepted plan should say before it runs (it runs anyway)."""
    warnings: list[Finding] = []
    if kernel_targets != targets:
        warnings.append(
            Finding(
                RuleCode.TARGET_OUTSIDE_NUMATUI_CPUSET,
                f"node {_nodes(targets - kernel_targets)} is outside numatui's cpuset: "
                f"the kernel moves memory only to {_nodes(kernel_targets)}",
            )
        )
    outside = _outside_cpuset_warning(process, targets)
    if outside is not None:
        warnings.append(outside)
    if shared_staying:
        warnings.append(
            Finding(
                RuleCode.SHARED_PAGES_STAY,
                f"{format_bytes(shared_staying)} is shared with other processes and stays "
                "without CAP_SYS_NICE (run as root to move it)",
            )
        )
    incoming: dict[int, int] = {}
    for (_, dest), size in zip(pairs, bytes_per_pair, strict=True):
        incoming[dest] = incoming.get(dest, 0) + size
    for dest, size in sorted(incoming.items()):
        node = topology.node(dest)
        if node is not None and node.mem_total and size > node.mem_free:
            warnings.append(
                Finding(
                    RuleCode.TARGET_TOO_FULL,
                    f"node {dest} has {format_bytes(node.mem_free)} free for "
                    f"{format_bytes(size)}: what does not fit stays where it is",
                )
            )
    huge: Mapping[int, int] = process.kind_bytes.get(MemoryKind.HUGE, {})
    if any(huge.get(source, 0) for source, _ in pairs):
        for dest in sorted(incoming):
            node = topology.node(dest)
            if node is not None and not any(pool.free for pool in node.hugepages):
                warnings.append(
                    Finding(
                        RuleCode.HUGETLB_NO_FREE_PAGE,
                        f"the process has hugetlb pages but node {dest} has no free huge "
                        "page: those stay (raise nr_hugepages on that node)",
                    )
                )
    if topology.numa_balancing:
        warnings.append(
            Finding(
                RuleCode.NUMA_BALANCING,
                "automatic NUMA balancing is on: the kernel may move pages back toward the "
                "CPUs that use them (bind the process with numactl --membind to keep them)",
            )
        )
    return tuple(warnings)


# ---------------------------------------------------------------- a whole group (cgroup)


def _on(stat: Mapping[str, Mapping[int, int]] | None, kind: str, nodes: frozenset[int]) -> int:
    if stat is None:
        return 0
    return sum(v for n, v in stat.get(kind, {}).items() if n in nodes)


def group_verdict(
    members: tuple[GroupMember, ...],
    from_nodes: frozenset[int],
    error: MigrationError | None,
    stat_before: Mapping[str, Mapping[int, int]] | None,
    stat_after: Mapping[str, Mapping[int, int]] | None,
    numa_stat_missing: str,
    privileges: Privileges,
) -> tuple[MigrationOutcome, tuple[str, ...]]:
    """One verdict over a group move's per-process outcomes, and what it could not move.

    A member that exited has no memory left to move: it is named, never counted as
    a failure. The group is "all moved" only when every member that ran moved all
    its pages and none was refused or skipped.
    """
    explanations: list[str] = []
    ran = [m for m in members if m.status is MemberStatus.MOVED and m.result is not None]
    outcomes = [m.result.outcome for m in ran if m.result is not None]
    moved = sum(m.result.bytes_moved for m in ran if m.result is not None)
    refused = [m for m in members if m.status is MemberStatus.REFUSED]
    skipped = [m for m in members if m.status is MemberStatus.SKIPPED]
    exited = [m for m in members if m.status is MemberStatus.EXITED]
    joined = [m for m in members if m.joined_during_move]
    if joined:
        explanations.append(
            f"{len(joined)} process(es) joined the group during the move and were moved too "
            f"(pid {', '.join(str(m.pid) for m in joined)})"
        )
    if exited:
        explanations.append(
            f"{len(exited)} process(es) exited during the move; their memory went with them "
            f"(pid {', '.join(str(m.pid) for m in exited)})"
        )
    if refused:
        explanations.append(f"{len(refused)} process(es) refused: each says why below")
    if skipped:
        explanations.append(f"{len(skipped)} process(es) not moved: each says why below")
    if error is not None:
        explanations.append(error.message)
    # What a process-level move cannot move, from the group's own accounts.
    if stat_before is not None and stat_after is not None:
        cache = _on(stat_after, "file", from_nodes) - _on(stat_after, "shmem", from_nodes)
        if cache > 0:
            explanations.append(
                f"{format_bytes(cache)} of page cache stays on node {_nodes(from_nodes)} "
                "(memory.numa_stat file): numatui moves the pages the members map, not page "
                "cache no member maps"
            )
        kernel = _on(stat_after, "kernel", from_nodes)
        if kernel > 0:
            explanations.append(
                f"{format_bytes(kernel)} of the group's kernel memory (stacks, page tables, "
                f"slab) stays on node {_nodes(from_nodes)}: the kernel does not migrate it"
            )
    elif numa_stat_missing:
        explanations.append(
            f"the group's own per-node accounts are not available ({numa_stat_missing}): "
            "page cache no member maps may stay on the sources unseen"
        )
    if privileges.cap_sys_nice:
        explanations.append(
            "any pages the members share with processes outside the group moved too (as root "
            "the kernel moves shared pages): those processes now find them on the target"
        )
    else:
        explanations.append(
            "pages shared with other processes, inside or outside the group, stay without "
            "CAP_SYS_NICE (run as root to move them)"
        )
    if not members or (not ran and not refused and not skipped):
        outcome = MigrationOutcome.NOTHING_TO_MOVE
        if error is not None:
            outcome = MigrationOutcome.FAILED
        elif not members:
            explanations.insert(0, "the group has no processes")
        return outcome, tuple(explanations)
    clean = all(
        o in (MigrationOutcome.ALL_MOVED, MigrationOutcome.NOTHING_TO_MOVE) for o in outcomes
    )
    if clean and not refused and not skipped and error is None:
        if MigrationOutcome.ALL_MOVED in outcomes:
            return MigrationOutcome.ALL_MOVED, tuple(explanations)
        return MigrationOutcome.NOTHING_TO_MOVE, tuple(explanations)
    if moved > 0 or MigrationOutcome.ALL_MOVED in outcomes:
        return MigrationOutcome.PARTLY_MOVED, tuple(explanations)
    return MigrationOutcome.FAILED, tuple(explanations)


# ---------------------------------------------------------------- draining a node


def drain_refusal(node_id: int, topology: Topology) -> Finding | None:
    """Why node `node_id` cannot be drained at all, or None."""
    machine = machine_refusal(topology)
    if machine is not None and machine.code is RuleCode.NUMA_UNAVAILABLE:
        return machine
    node = topology.node(node_id)
    if node is None:
        return Finding(
            RuleCode.NODE_MISSING,
            f"node {node_id} does not exist (this machine has "
            f"{_nodes(n.id for n in topology.nodes)}): nothing to drain",
            "EINVAL",
            "no such node",
        )
    if not node.has_memory:
        return Finding(
            RuleCode.DRAIN_NO_MEMORY,
            f"node {node_id} has no memory (CPU-only node): nothing to drain",
            "",
            "no memory",
        )
    others = [n for n in topology.with_memory if n != node_id and _online(topology, n)]
    if not others:
        return Finding(
            RuleCode.SINGLE_MEMORY_NODE,
            f"node {node_id} is the only node with memory: there is nowhere to drain it to",
            "",
            "only memory node",
        )
    return None


def _online(topology: Topology, node_id: int) -> bool:
    node = topology.node(node_id)
    return node is not None and node.online


def drain_targets(
    node_id: int, topology: Topology, process: ProcessMemory, privileges: Privileges
) -> tuple[int, ...]:
    """The nodes `process`'s memory on `node_id` may go to, best first.

    Only nodes the kernel would accept as targets (online, with memory) and that the
    process may use itself (its cpuset's mems: memory moved outside them would be
    allocated back there anyway); nearest to the drained node first (its distance row),
    then the most free memory.
    """
    drained = topology.node(node_id)
    distances: Mapping[int, int] = drained.distances if drained is not None else {}
    usable = [
        node
        for node in topology.nodes
        if node.id != node_id
        and target_refusal(node.id, topology, process, privileges) is None
        and (not process.mems_allowed or node.id in process.mems_allowed)
    ]
    usable.sort(key=lambda n: (distances.get(n.id, 255), -n.mem_free, n.id))
    return tuple(n.id for n in usable)


def pick_drain_target(
    node_id: int, process: ProcessMemory, candidates: tuple[int, ...], free: Mapping[int, int]
) -> tuple[int | None, Finding | None]:
    """The first candidate with room for the process's memory on `node_id` (`free` is what
    is left on each node after the processes planned before), else the one with the most
    room (what does not fit stays, and the verdict says so); or why there is none."""
    if not candidates:
        allowed = process.mems_allowed
        why = (
            f"its cpuset allows only node {_nodes(allowed)}"
            if allowed and allowed <= {node_id}
            else "no other node with memory that it may use"
        )
        return None, Finding(
            RuleCode.DRAIN_NO_TARGET,
            f"process {process.pid} ({process.name}) cannot leave node {node_id}: {why}",
            "",
            "no target",
        )
    size = process.node_bytes.get(node_id, 0)
    for candidate in candidates:
        if free.get(candidate, 0) >= size:
            return candidate, None
    return max(candidates, key=lambda n: (free.get(n, 0), -n)), None
