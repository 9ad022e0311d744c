"""Draining a node: move every process's pages off it, then say what stayed and why.

Planning reads every process's memory per node, asks the rules (`numatui.rules`)
where each may go (its cpuset's nodes with memory, nearest first, with room),
and validates each move as a single migration would be (`migration.validate`).
Running moves the processes one after another with the paced, stoppable mover
(move_pages in chunks of about the stall budget), so a drain never freezes a
process for the whole of its move and Stop takes effect between chunks.

Afterwards the node's own meminfo says how much is still used there; numatui
splits that into what it could not have moved (kernel memory, page cache and
shmem that no moved process maps, huge pages in use) and what stayed of the
processes it moved (each result explains its part).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from numatui import rules
from numatui.errors import MigrationRefused
from numatui.kernel import migration
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader, parse_meminfo
from numatui.model.drain import DrainItem, DrainLeftover, DrainPlan, DrainProgress, DrainReport
from numatui.model.migration import MigrationProgress, MigrationResult, Pacing
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology

RunOne = Callable[
    [DrainItem, Callable[[MigrationProgress], None], threading.Event | None], MigrationResult
]
"""Runs one process's validated plan (the source's migrate: guard, job, audit)."""

KERNEL_MEMINFO_KEYS = ("Slab", "KernelStack", "PageTables", "SecPageTables", "Bounce")


def plan_drain(
    node: int,
    *,
    topology: Topology,
    scanner: ProcessScanner,
    privileges: Privileges,
    pacing: Pacing | None = None,
    proc_root: Path = Path("/proc"),
) -> DrainPlan:
    """Every process with memory on `node`, with its target or the reason it has none.

    Nothing is changed. A drain refused as a whole (`rules.drain_refusal`) comes
    back with `refusal` set and no items.
    """
    refusal = rules.drain_refusal(node, topology)
    if refusal is not None:
        return DrainPlan(node, refusal=refusal)
    scan = scanner.scan(topology=topology)
    free = {n.id: n.mem_free for n in topology.nodes if n.has_memory}
    items: list[DrainItem] = []
    # Largest first: they need the room most, and the progress reads best that way.
    on_node = sorted(
        (p for p in scan.processes if p.node_bytes.get(node, 0) and not p.is_kernel_thread),
        key=lambda p: (-p.node_bytes.get(node, 0), p.pid),
    )
    for process in on_node:
        size = process.node_bytes.get(node, 0)
        candidates = rules.drain_targets(node, topology, process, privileges)
        target, why_not = rules.pick_drain_target(node, process, candidates, free)
        if target is None:
            items.append(DrainItem(process.pid, process.name, size, None, None, why_not))
            continue
        try:
            plan = migration.validate(
                process.pid,
                {node},
                {target},
                topology,
                process,
                privileges,
                stoppable=True,
                pacing=pacing,
                proc_root=proc_root,
            )
        except MigrationRefused as exc:
            known = {str(code): code for code in rules.RuleCode}
            code = known.get(exc.code, rules.RuleCode.DRAIN_NO_TARGET)
            finding = rules.Finding(code, str(exc), exc.errno_name)
            items.append(DrainItem(process.pid, process.name, size, None, None, finding))
            continue
        free[target] = free.get(target, 0) - size
        items.append(DrainItem(process.pid, process.name, size, target, plan))
    return DrainPlan(node, tuple(items), unreadable=scan.unreadable)


def node_meminfo(sys_root: Path, node: int) -> dict[str, int]:
    """nodeN/meminfo as bytes (counts for HugePages_*); empty when unreadable."""
    try:
        text = (sys_root / "devices/system/node" / f"node{node}" / "meminfo").read_text()
    except OSError:
        return {}
    return parse_meminfo(text)


def run_drain(
    plan: DrainPlan,
    run_one: RunOne,
    *,
    topology_reader: TopologyReader,
    on_progress: Callable[[DrainProgress], None] | None = None,
    cancel: threading.Event | None = None,
    bytes_on_node_now: Callable[[int], int | None] | None = None,
) -> DrainReport:
    """Move each planned process off the node in turn; then read what the node still holds.

    `bytes_on_node_now(pid)` re-reads what a process that was not moved still has on the
    node (pages it shares with moved processes may have left with them); None: unknown.

    `cancel` stops the process moving now between its chunks, and starts no other.
    """
    started = time.monotonic()
    sys_root = topology_reader.sys_root
    used_before = node_meminfo(sys_root, plan.node).get("MemUsed", 0)
    planned = [item for item in plan.items if item.plan is not None]
    total = sum(item.bytes_on_node for item in planned)
    results: list[MigrationResult] = []
    moved = 0
    stopped = False

    def report(current: int | None, moving_now: int = 0) -> None:
        if on_progress is not None:
            on_progress(
                DrainProgress(
                    time.monotonic() - started,
                    len(results),
                    len(planned),
                    min(total, moved + moving_now),
                    total,
                    current,
                )
            )

    report(None)
    for item in planned:
        if cancel is not None and cancel.is_set():
            stopped = True
            break

        def sample(progress: MigrationProgress, item: DrainItem = item) -> None:
            now = progress.node_bytes.get(plan.node, 0)  # a node not listed holds nothing
            report(item.pid, max(0, item.bytes_on_node - now))

        result = run_one(item, sample, cancel)
        results.append(result)
        moved += max(0, result.before.get(plan.node, 0) - result.after.get(plan.node, 0))
        report(None)
        if cancel is not None and cancel.is_set():
            stopped = True
            break
    after = node_meminfo(sys_root, plan.node)
    topology = topology_reader.read()
    if bytes_on_node_now is not None:
        items = []
        for item in plan.items:
            now = bytes_on_node_now(item.pid) if item.plan is None else None
            items.append(item if now is None else replace(item, bytes_on_node=now))
        left_plan = replace(plan, items=tuple(items))
    else:
        left_plan = plan
    return DrainReport(
        plan=plan,
        results=tuple(results),
        used_before=used_before,
        used_after=after.get("MemUsed", 0),
        leftovers=leftovers(left_plan, tuple(results), after, topology, stopped),
        elapsed_s=time.monotonic() - started,
        stopped=stopped,
    )


def leftovers(
    plan: DrainPlan,
    results: tuple[MigrationResult, ...],
    meminfo: dict[str, int],
    topology: Topology,
    stopped: bool = False,
) -> tuple[DrainLeftover, ...]:
    """What is still on the node that the drain did not move, by reason (bytes each)."""
    node = plan.node
    out: list[DrainLeftover] = []
    for result in results:
        stayed = result.after.get(node, 0)
        if stayed:
            why = "; ".join(result.explanations) or (
                result.error.message if result.error else "it faulted pages back in"
            )
            out.append(
                DrainLeftover(
                    "process",
                    stayed,
                    f"process {result.plan.pid} ({result.plan.process_name}): {why}",
                )
            )
    ran = {result.plan.pid for result in results}
    for item in plan.items:
        if item.plan is None and item.refusal is not None:
            out.append(DrainLeftover("not_planned", item.bytes_on_node, item.refusal.message))
        elif item.plan is not None and item.pid not in ran and stopped:
            out.append(
                DrainLeftover(
                    "not_planned",
                    item.bytes_on_node,
                    f"process {item.pid} ({item.name}): the drain was stopped before it",
                )
            )
    kernel = sum(meminfo.get(key, 0) for key in KERNEL_MEMINFO_KEYS)
    if kernel:
        out.append(
            DrainLeftover(
                "kernel",
                kernel,
                "kernel memory (slab, kernel stacks, page tables): the kernel's own, "
                "no process's pages to migrate",
            )
        )
    shmem = meminfo.get("Shmem", 0)
    cache = max(0, meminfo.get("FilePages", 0) - shmem)
    if cache:
        out.append(
            DrainLeftover(
                "page_cache",
                cache,
                "page cache (file pages): a process move takes only the file pages it "
                "maps; the rest is cached for files no moved process maps "
                "(drop it with: sync; echo 1 > /proc/sys/vm/drop_caches)",
            )
        )
    if shmem:
        out.append(
            DrainLeftover(
                "shmem",
                shmem,
                "shared memory and tmpfs pages: moved only where a process maps them "
                "(without CAP_SYS_NICE, not when shared with another process)",
            )
        )
    drained = topology.node(node)
    targets = sorted({item.target for item in plan.items if item.target is not None})
    if drained is not None:
        for pool in drained.hugepages:
            in_use = (pool.total - pool.free) * pool.size_bytes
            if not in_use:
                continue
            free_there = sum(
                p.free
                for n in targets
                if (target := topology.node(n)) is not None
                for p in target.hugepages
                if p.size_bytes == pool.size_bytes
            )
            out.append(
                DrainLeftover(
                    "hugetlb",
                    in_use,
                    f"{pool.total - pool.free} huge page(s) of {pool.size_bytes // 1024} kB in "
                    "use in the node's pool (reserved, or mapped by processes that did not "
                    f"move); the targets have {free_there} free of that size (to move a "
                    "hugetlb page the kernel needs a free one there, or room for a new one)",
                )
            )
    return tuple(out)
