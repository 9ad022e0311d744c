"""The migration job: validate a request, run migrate_pages(2), watch it, judge the result.

The kernel's answer alone cannot say what happened: it returns 0 when it
silently skipped shared pages, and a call that fails (ENOMEM, the process
exiting) may already have moved part. So the job reads the process's
per-node bytes before, while (for the progress display) and after the call,
and decides the outcome from those counts against the plan.

`migrate_pages` is a single call the kernel does not let us interrupt: once
it has started, a migration cannot be cancelled.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from numatui import rules
from numatui.errors import MigrationRefused, NumatuiError, ProcessGone, SyscallError
from numatui.kernel import syscalls
from numatui.kernel.chunked import (
    MAX_WALK_PAGES,
    MovePages,
    move_in_chunks,
    plan_walk,
    read_maps,
)
from numatui.kernel.nodemask import NodeMask, format_kernel_list, parse_kernel_list
from numatui.kernel.plan import effective_targets, kernel_pairs
from numatui.kernel.topology import TopologyReader, parse_meminfo
from numatui.model.findings import Finding
from numatui.model.memory import ProcessMemory, RegionPages
from numatui.model.migration import (
    MigrationError,
    MigrationOutcome,
    MigrationPlan,
    MigrationProgress,
    MigrationResult,
    Pacing,
    ProgressCallback,
    displaced_by_node,
    misplaced_by_node,
    planned_bytes,
)
from numatui.model.node_bytes import NodeBytes, frozen_map
from numatui.model.privileges import Privileges
from numatui.model.topology import Topology
from numatui.units import format_bytes

if TYPE_CHECKING:
    from numatui.kernel.scanner import ProcessScanner

# ---------------------------------------------------------------- validation


def read_caller_mems(proc_root: Path = Path("/proc")) -> frozenset[int] | None:
    """numatui's own cpuset mems (Mems_allowed_list), which bound where the kernel may put pages."""
    try:
        status = (proc_root / "self" / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Mems_allowed_list":
            return parse_kernel_list(value)
    return None


def _process_uid(pid: int, proc_root: Path) -> int | None:
    try:
        return (proc_root / str(pid)).stat().st_uid
    except OSError:
        return None  # gone: the rules refuse it as `process_gone` from the scan already


def _nodes(nodes: Iterable[int]) -> str:
    return format_kernel_list(frozenset(nodes)) or "none"


def refused(finding: Finding) -> MigrationRefused:
    """The exception a rules refusal becomes, carrying its code and errno."""
    return MigrationRefused(finding.message, code=str(finding.code), errno_name=finding.errno_name)


def validate(
    pid: int,
    from_nodes: Iterable[int],
    to_nodes: Iterable[int],
    topology: Topology,
    process: ProcessMemory | None,
    privileges: Privileges,
    *,
    stoppable: bool = False,
    pacing: Pacing | None = None,
    caller_mems: frozenset[int] | None = None,
    process_uid: int | None = None,
    proc_root: Path = Path("/proc"),
) -> MigrationPlan:
    """Check a request before any syscall (`numatui.rules`) and preview it in the kernel's order.

    Raises `MigrationRefused` with the rules' first refusal (its code and errno);
    nothing is changed then. An empty source set, or identical sets, is not an
    error: the plan has no pairs ("nothing to move"). `caller_mems` (numatui's
    cpuset mems) and `process_uid` are read from `proc_root` when not given.
    `stoppable` chooses the chunked move_pages mode for the plan's whole life, `pacing`
    its chunk sizing and rate cap (default: chunks of about 20 ms, no cap).
    """
    pacing = pacing or Pacing()
    sources = frozenset(from_nodes)
    targets = frozenset(to_nodes)
    needs_kernel_facts = process is not None and bool(sources) and sources != targets
    if needs_kernel_facts and process_uid is None:
        process_uid = _process_uid(pid, proc_root)
        if process_uid is None:
            process = None  # exited since the scan
    allowed_here = caller_mems
    if needs_kernel_facts and allowed_here is None:
        allowed_here = read_caller_mems(proc_root)
    refusal = rules.request_refusal(
        pid,
        sources,
        targets,
        topology,
        process,
        privileges,
        process_uid=process_uid,
        caller_mems=allowed_here,
    )
    if refusal is not None:
        raise refused(refusal)
    assert process is not None  # request_refusal refuses a missing process
    free_bytes = frozen_map({n.id: n.mem_free for n in topology.nodes if n.mem_total})
    if not sources or sources == targets:
        return MigrationPlan(
            pid=pid,
            from_nodes=sources,
            to_nodes=targets,
            pairs=(),
            process_name=process.name,
            process_start_time=process.start_time,
            stoppable=stoppable,
            free_bytes=free_bytes,
            pacing=pacing,
        )
    kernel_targets = (
        effective_targets(targets, allowed_here) if allowed_here is not None else targets
    )
    pairs = kernel_pairs(sources, kernel_targets)
    bytes_per_pair = tuple(process.node_bytes.get(source, 0) for source, _ in pairs)
    moving_sources = {source for source, _ in pairs}
    shared_staying = (
        0
        if privileges.cap_sys_nice
        else sum(process.shared_bytes.get(n, 0) for n in moving_sources)
    )
    warnings = rules.plan_warnings(
        process, topology, pairs, bytes_per_pair, targets, kernel_targets, shared_staying
    )
    return MigrationPlan(
        pid=pid,
        from_nodes=sources,
        to_nodes=targets,
        pairs=pairs,
        bytes_per_pair=bytes_per_pair,
        shared_bytes_staying=shared_staying,
        warnings=warnings,
        process_name=process.name,
        process_start_time=process.start_time,
        stoppable=stoppable,
        free_bytes=free_bytes,
        pacing=pacing,
    )


# ---------------------------------------------------------------- the outcome


def tolerance_bytes(planned: int, page_size: int) -> int:
    """How much may remain on the sources and still count as "all moved".

    A process that keeps running allocates or faults in pages on its usual
    nodes while the kernel works, behind the point the kernel has passed;
    those pages were not part of what was there to move. Half a percent of
    the planned bytes, and at least 32 pages, absorbs that without hiding a
    real partial migration.
    """
    return max(32 * page_size, planned // 200)


@dataclass(frozen=True)
class Observation:
    """What the job saw: the inputs `decide_outcome` judges (a pure function of them)."""

    before: NodeBytes
    after: NodeBytes
    pages_not_moved: int | None
    error: SyscallError | None = None
    process_exited: bool = False
    shared_on_sources_after: int = 0
    target_free_after: Mapping[int, int] = field(default_factory=frozen_map)
    target_total: Mapping[int, int] = field(default_factory=frozen_map)
    numa_balancing: bool | None = None
    # Bytes left on the sources in mappings whose memory policy names none of the
    # targets (the process's own mbind/set_mempolicy), and those policies as printed.
    policy_held_on_sources: int = 0
    holding_policies: tuple[str, ...] = ()
    cancelled: bool = False  # the user stopped a chunked migration part way
    retries: int = 0  # further migrate_pages calls for pages an earlier call could not move


def decide_outcome(
    plan: MigrationPlan,
    seen: Observation,
    privileges: Privileges,
    page_size: int = 4096,
) -> tuple[MigrationOutcome, MigrationError | None, tuple[str, ...]]:
    """Judge a migration from per-node counts, not from the syscall's return value alone.

    Every node's bytes after are compared with where the kernel's pairs, applied in
    its order, put the bytes before (`model.expected_after`): a node that is both a
    source and a target (`0-1` → `1-2`) ends holding what another node had. Only
    bytes beyond what the pairs leave on a node count as not moved.

    Bytes can also be missing from where the pairs put them while a node no pair
    names grew (`model.displaced_by_node`): pages moved again after the migration
    placed them (by the kernel or the process), or freed there while memory was
    allocated elsewhere. Counts cannot tell those apart; either way the pairs' end
    state is not what the process has, so beyond the tolerance that is never "all
    moved", and it is said as what it is, not as bytes that stayed.
    """
    moving_sources = sorted({source for source, _ in plan.pairs})
    planned = planned_bytes(seen.before, plan.pairs)
    misplaced = misplaced_by_node(seen.before, seen.after, plan.pairs)
    left = sum(misplaced.values())
    stayed_on = _nodes(misplaced) if misplaced else _nodes(moving_sources)
    moved = max(0, planned - left)
    tolerance = tolerance_bytes(planned, page_size)
    short, grown = displaced_by_node(seen.before, seen.after, plan.pairs)
    elsewhere = min(sum(short.values()), sum(grown.values()))
    error = (
        MigrationError(seen.error.errno_name, seen.error.message)
        if seen.error is not None
        else None
    )
    explanations: list[str] = []

    if seen.process_exited:
        error = error or MigrationError("ESRCH", str(ProcessGone(plan.pid)))
        if moved > 0:
            explanations.append(
                f"the process exited during the migration; {format_bytes(moved)} had left "
                f"node {_nodes(moving_sources)} at the last look (what happened after is unknown)"
            )
            return MigrationOutcome.PARTLY_MOVED, error, tuple(explanations)
        explanations.append("the process exited before any of its memory was seen to move")
        return MigrationOutcome.FAILED, error, tuple(explanations)

    if seen.error is not None and moved <= tolerance:
        return MigrationOutcome.FAILED, error, ("nothing was moved",)
    if seen.cancelled and left > tolerance:
        stopped = MigrationError("", "stopped by the user")
        if moved <= tolerance:
            return (
                MigrationOutcome.FAILED,
                stopped,
                ("stopped before any page moved: nothing was changed",),
            )
        return (
            MigrationOutcome.PARTLY_MOVED,
            stopped,
            (
                f"stopped by the user after {format_bytes(moved)} of {format_bytes(planned)} "
                f"had moved; {format_bytes(left)} is still on node {stayed_on}",
            ),
        )
    if planned == 0 and seen.error is None:
        return (
            MigrationOutcome.NOTHING_TO_MOVE,
            None,
            (f"the process had no memory on node {_nodes(moving_sources)}",),
        )
    if (
        left <= tolerance
        and elsewhere <= tolerance
        and not seen.pages_not_moved
        and seen.error is None
    ):
        if left:
            explanations.append(
                f"{format_bytes(left)} more than planned is on node {stayed_on} after the "
                "migration: "
                f"pages the process touched while it ran (within the tolerance of "
                f"{format_bytes(tolerance)})"
            )
        if sum(grown.values()) > tolerance:
            explanations.append(
                f"node {_nodes(grown)}, which no pair names, holds "
                f"{format_bytes(sum(grown.values()))} more than before: memory the process "
                "allocated there while it ran, not moved pages"
            )
        if sum(short.values()) > tolerance:
            explanations.append(
                f"node {_nodes(short)} holds {format_bytes(sum(short.values()))} less than "
                "the pairs leave there: memory the process freed (or the kernel reclaimed) "
                "while it ran"
            )
        return MigrationOutcome.ALL_MOVED, None, tuple(explanations)

    # Some memory is not where the pairs put it: say why, most specific cause first.
    if left > tolerance or elsewhere <= tolerance:
        explanations.append(
            f"{format_bytes(left)} of {format_bytes(planned)} stayed on node {stayed_on}"
        )
    if elsewhere > tolerance:
        explanations.append(
            f"{format_bytes(elsewhere)} is not on node {_nodes(short)} where the pairs put "
            f"it, and node {_nodes(grown)}, which no pair names, holds "
            f"{format_bytes(sum(grown.values()))} more than before: pages moved on after "
            "the migration placed them (the kernel or the process moved them: THP "
            "collapse, memory-tier demotion, its own mbind/move_pages), or memory freed "
            f"on node {_nodes(short)} while memory was allocated on node {_nodes(grown)}"
        )
    if seen.error is not None:
        explanations.append(
            f"the kernel stopped with {seen.error.errno_name} after moving "
            f"{format_bytes(moved)}: {seen.error.message}"
        )
    explained = 0
    if seen.shared_on_sources_after and not privileges.cap_sys_nice:
        explained += seen.shared_on_sources_after
        explanations.append(
            f"{format_bytes(seen.shared_on_sources_after)} is shared with other processes: "
            "without CAP_SYS_NICE the kernel moves only pages this process maps alone "
            "(run numatui as root to move them)"
        )
    destinations = sorted({dest for _, dest in plan.pairs})
    for dest in destinations:
        free = seen.target_free_after.get(dest)
        total = seen.target_total.get(dest, 0)
        # The kernel keeps a reserve (watermarks) it will not hand to migration.
        if free is not None and free < max(left - explained, 0) + total // 25:
            explained = left
            explanations.append(
                f"node {dest} is full ({format_bytes(free)} free of {format_bytes(total)}): "
                "pages that did not fit stayed; free memory there, or pick another node"
            )
    if seen.policy_held_on_sources and left > explained:
        explained += seen.policy_held_on_sources
        explanations.append(
            f"{format_bytes(seen.policy_held_on_sources)} on node {stayed_on} is in "
            f"mappings whose memory policy ({', '.join(seen.holding_policies)}) puts pages "
            "there: pages the process allocated or moved itself during the migration (mbind, "
            "set_mempolicy) follow its policy, not the migration; change the policy "
            "(numactl --membind) to keep them on the target"
        )
    if seen.pages_not_moved:
        tried = f" (after {seen.retries} retries)" if seen.retries else ""
        explanations.append(
            f"the kernel reported {seen.pages_not_moved} page(s) it could not move{tried}: "
            "pinned (I/O, RDMA, mlock under pressure), busy at that instant, or without room "
            "on the target; retrying later may move some"
        )
        explained = left
    if seen.numa_balancing and left > explained:
        explanations.append(
            "automatic NUMA balancing is on: the kernel may have moved pages back toward the "
            "CPUs that use them (sysctl kernel.numa_balancing=0, or numactl --membind)"
        )
    elif left > explained + tolerance and seen.error is None:
        explanations.append("the kernel did not say why (it returned 0)")
    return MigrationOutcome.PARTLY_MOVED, error, tuple(explanations)


# ---------------------------------------------------------------- the job


def _node_meminfo(sys_root: Path, node: int) -> tuple[int, int] | None:
    """(MemFree, MemTotal) in bytes of one node, or None if unreadable."""
    try:
        text = (sys_root / "devices/system/node" / f"node{node}" / "meminfo").read_text()
    except OSError:
        return None
    values = parse_meminfo(text)
    if "MemFree" not in values:
        return None
    return values["MemFree"], values.get("MemTotal", 0)


def _policy_nodes(policy: str) -> frozenset[int]:
    """The nodes a numa_maps policy names (`bind:0-1`, `prefer=static:2`); empty for none."""
    _, sep, nodes = policy.rpartition(":")
    if not sep:
        return frozenset()
    try:
        return parse_kernel_list(nodes)
    except ValueError:
        return frozenset()


MIGRATE_RETRY_PAUSES_S = (0.05, 0.25)
"""Pauses before migrate_pages is called again for pages it could not move. A page busy
at one instant (held for a moment by a fault in flight or by another reader of the
process's memory, such as /proc/PID/cmdline) usually moves a moment later; a pinned page
never does, and two retries bound what finding that out costs."""

MAX_SAMPLE_PAUSE_S = 2.0
"""Longest pause between progress samples, however costly one was: the view never freezes
for longer (a guest under load once measured a 24 s sample and waited 481 s for the next)."""


class MigrationJob:
    """One migration: snapshot, migrate_pages in a thread, samples, snapshot, verdict.

    Sampling reads /proc/PID/numa_maps, which walks the page tables under the
    mmap read lock the kernel also holds while it migrates; the pause between
    samples grows with the cost of a sample (`sample_cost_ratio`) so watching
    takes a small, bounded share of a CPU however large the process is.
    """

    def __init__(
        self,
        plan: MigrationPlan,
        *,
        scanner: ProcessScanner,
        privileges: Privileges,
        topology_reader: TopologyReader,
        sample_interval_s: float = 0.25,
        sample_cost_ratio: float = 20.0,
        page_size: int | None = None,
        migrate: Callable[[int, NodeMask, NodeMask], int] = syscalls.migrate_pages,
        move_pages: MovePages = syscalls.move_pages,
        retry_pauses_s: Sequence[float] = MIGRATE_RETRY_PAUSES_S,
    ) -> None:
        """Everything the job reads the machine with is handed in (the live source's own
        scanner, privileges and topology reader), so what the source was told is what
        the job acts on: `privileges` choose MPOL_MF_MOVE_ALL and explain the verdict."""
        self.plan = plan
        self.scanner = scanner
        self.privileges = privileges
        self.topology_reader = topology_reader
        self.proc_root = scanner.proc_root
        self.sys_root = topology_reader.sys_root
        self.sample_interval_s = sample_interval_s
        self.sample_cost_ratio = sample_cost_ratio
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self._migrate = migrate
        self._move_pages = move_pages
        self.retry_pauses_s = tuple(retry_pauses_s)
        self.retries = 0
        """How many times the single call was repeated for pages it could not move."""
        # migrate_pages(2) is one kernel call nothing can stop once started; a stoppable
        # plan moves with move_pages (numatui/kernel/chunked.py), checking `cancel`
        # between chunks.
        self.cancellable = plan.stoppable
        self.unstoppable_because: str | None = None
        """Why a chunked job made the one uninterruptible call after all (see chunked.py)."""
        self.chunk_times: list[tuple[int, float, bool]] = []
        """(pages, seconds, full) of each chunk a stoppable job moved, in order: `full`
        when it had the pacer's size, not the shorter tail of a mapping."""

    @property
    def move_flags(self) -> int:
        """MPOL_MF_MOVE_ALL (shared pages too) only with CAP_SYS_NICE, as the kernel decides
        for migrate_pages; move_pages would refuse it (EPERM) without."""
        return syscalls.MPOL_MF_MOVE_ALL if self.privileges.cap_sys_nice else syscalls.MPOL_MF_MOVE

    def _migrate_with_retries(self, cancel: threading.Event | None) -> int:
        """migrate_pages, then again for pages it could not move, up to
        `MIGRATE_RETRY_PAUSES_S`: the count the last call returned.

        The kernel skips pages already on a target, so a retry walks the address space
        and moves only what the earlier call left.
        """
        pid, old, new = self.plan.pid, NodeMask(self.plan.from_nodes), NodeMask(self.plan.to_nodes)
        left = self._migrate(pid, old, new)
        for pause in self.retry_pauses_s:
            if left <= 0 or (cancel is not None and cancel.is_set()):
                break
            time.sleep(pause)
            left = self._migrate(pid, old, new)
            self.retries += 1
        return left

    def _snapshot(self) -> NodeBytes:
        return frozen_map(self.scanner.node_pages(self.plan.pid))

    def run(
        self,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        plan = self.plan
        regions: tuple[RegionPages, ...] = ()
        try:
            if self.cancellable:
                # The walk's map of the address space comes from the same read: a second
                # read walked the page tables again (0.2 s of a 4 s paced move of 10,000
                # mappings in the guest).
                node_pages, regions = self.scanner.node_and_region_pages(plan.pid)
                before = frozen_map(node_pages)
            else:
                before = self._snapshot()
        except ProcessGone as exc:
            return MigrationResult.unchanged(plan, MigrationError("ESRCH", str(exc)))
        except PermissionError:
            # Without seeing the counts no outcome could be judged: do not start.
            error = MigrationError(
                "EACCES",
                f"cannot read /proc/{plan.pid}/numa_maps (another user's or a non-dumpable "
                "process): run numatui as root; nothing was changed",
            )
            return MigrationResult.unchanged(plan, error)
        if plan.is_noop:
            return MigrationResult(
                plan,
                MigrationOutcome.NOTHING_TO_MOVE,
                before,
                before,
                0,
                0.0,
                explanations=("the source and target nodes leave nothing to move",),
            )
        if cancel is not None and cancel.is_set():
            cancelled = MigrationError(
                "", "cancelled before the migration started; nothing changed"
            )
            return MigrationResult.unchanged(plan, cancelled, before)

        outcome: list[int | NumatuiError] = []
        stopped: list[bool] = []

        def call_kernel() -> None:
            try:
                if self.cancellable:
                    was_stopped = self._move_in_chunks(regions, cancel)
                    if was_stopped is not None:
                        # Chunks give no count of pages left: numa_maps afterwards says.
                        stopped.append(was_stopped)
                        return
                outcome.append(self._migrate_with_retries(cancel))
            except NumatuiError as exc:  # SyscallError, UnsupportedArchitecture, ProcessGone
                outcome.append(exc)

        samples: list[MigrationProgress] = []
        last_seen = before
        process_exited = False
        worker = threading.Thread(target=call_kernel, name=f"migrate-{plan.pid}", daemon=True)
        call_started = time.monotonic()
        worker.start()
        pause = self.sample_interval_s
        try:
            while True:
                worker.join(pause)
                if not worker.is_alive():
                    break
                # The CPU a sample costs, not its wall time: a read of numa_maps can wait
                # behind the mmap lock the migration holds, and waiting costs nothing.
                sample_started = time.thread_time()
                try:
                    last_seen = self._snapshot()
                except ProcessGone:
                    process_exited = True
                    continue
                cost = time.thread_time() - sample_started
                pause = min(
                    MAX_SAMPLE_PAUSE_S,
                    max(self.sample_interval_s, cost * self.sample_cost_ratio),
                )
                progress = MigrationProgress(
                    time.monotonic() - call_started,
                    last_seen,
                    stoppable=self.cancellable and self.unstoppable_because is None,
                )
                samples.append(progress)
                if on_progress is not None:
                    on_progress(progress)
        finally:
            worker.join()
        elapsed = time.monotonic() - call_started

        result = outcome[0] if outcome else None
        if isinstance(result, NumatuiError) and not isinstance(result, SyscallError):
            # No syscall was made (unknown architecture): nothing changed.
            error = MigrationError("", str(result))
            return MigrationResult.unchanged(plan, error, before, elapsed, tuple(samples))
        failure = result if isinstance(result, SyscallError) else None
        pages_not_moved = result if isinstance(result, int) else None
        if failure is not None and failure.errno_name == "ESRCH":
            process_exited = True
        after = last_seen
        if not process_exited:
            try:
                after = self._snapshot()
            except ProcessGone:
                process_exited = True

        final = MigrationProgress(elapsed, after, stoppable=False)  # it is over
        samples.append(final)
        if on_progress is not None:
            on_progress(final)

        seen = self._observe(
            before, after, pages_not_moved, failure, process_exited, cancelled=any(stopped)
        )
        verdict, migration_error, explanations = decide_outcome(
            plan, seen, self.privileges, self.page_size
        )
        return MigrationResult(
            plan=plan,
            outcome=verdict,
            before=before,
            after=after,
            pages_not_moved=pages_not_moved,
            elapsed_s=elapsed,
            error=migration_error,
            explanations=explanations
            + ((self.unstoppable_because,) if self.unstoppable_because else ()),
            samples=tuple(samples),
        )

    def _observe(
        self,
        before: NodeBytes,
        after: NodeBytes,
        pages_not_moved: int | None,
        error: SyscallError | None,
        process_exited: bool,
        cancelled: bool = False,
    ) -> Observation:
        """Gather, only when memory stayed, what the verdict needs to explain why."""
        # The nodes holding more than the pairs leave there: where memory stayed.
        moving_sources = set(misplaced_by_node(before, after, self.plan.pairs))
        left = bool(moving_sources)
        shared = 0
        held = 0
        policies: set[str] = set()
        free: dict[int, int] = {}
        total: dict[int, int] = {}
        if left and not process_exited:
            targets = {dest for _, dest in self.plan.pairs}
            try:
                maps = self.scanner.numa_maps(self.plan.pid)
            except (ProcessGone, PermissionError):
                maps = None
            if maps is not None:
                if not self.privileges.cap_sys_nice:
                    shared = sum(maps.shared_bytes.get(n, 0) for n in moving_sources)
                for region in maps.mappings:
                    policy_nodes = _policy_nodes(region.policy)
                    on_sources = sum(
                        region.node_pages.get(n, 0) * region.page_size for n in moving_sources
                    )
                    if on_sources and policy_nodes and not policy_nodes & targets:
                        held += on_sources
                        policies.add(region.policy)
            for dest in {dest for _, dest in self.plan.pairs}:
                info = _node_meminfo(self.sys_root, dest)
                if info is not None:
                    free[dest], total[dest] = info
        return Observation(
            before=before,
            after=after,
            pages_not_moved=pages_not_moved,
            error=error,
            process_exited=process_exited,
            shared_on_sources_after=shared,
            target_free_after=frozen_map(free),
            target_total=frozen_map(total),
            numa_balancing=self.topology_reader.numa_balancing(),
            policy_held_on_sources=held,
            holding_policies=tuple(sorted(policies)),
            cancelled=cancelled,
            retries=self.retries,
        )

    def _move_in_chunks(
        self, regions: tuple[RegionPages, ...], cancel: threading.Event | None
    ) -> bool | None:
        """Move the pages `regions` (read with the snapshot before) place on the sources;
        whether `cancel` stopped the chunks; None: too sparse to walk, nothing moved."""

        pid = self.plan.pid
        try:
            maps_text = read_maps(pid, self.proc_root)
        except (FileNotFoundError, ProcessLookupError) as exc:
            raise ProcessGone(pid) from exc
        except OSError as exc:
            raise MigrationRefused(
                f"cannot read /proc/{pid}/maps ({exc.strerror}): nothing was changed"
            ) from exc
        walk = plan_walk(self.plan.pairs, regions, maps_text)
        if walk.pages > MAX_WALK_PAGES:
            self.unstoppable_because = (
                f"moved in one migrate_pages call, which cannot be stopped: the mappings "
                f"to walk span {format_bytes(walk.pages * self.page_size)} of address space, "
                "too sparse to go through in chunks"
            )
            return None
        return move_in_chunks(
            pid,
            walk,
            flags=self.move_flags,
            cancel=cancel,
            move_pages=self._move_pages,
            pacing=self.plan.pacing,
            on_chunk=lambda pages, seconds, full: self.chunk_times.append((pages, seconds, full)),
        )


def run_migration(
    plan: MigrationPlan,
    on_progress: ProgressCallback | None = None,
    *,
    scanner: ProcessScanner,
    privileges: Privileges,
    topology_reader: TopologyReader,
    cancel: threading.Event | None = None,
) -> MigrationResult:
    """Run a validated plan to completion (blocking); kernel errors come back in the result.

    A `plan.stoppable` plan moves with move_pages a chunk at a time, so `cancel` can
    stop it part way.
    """
    job = MigrationJob(
        plan, scanner=scanner, privileges=privileges, topology_reader=topology_reader
    )
    return job.run(on_progress, cancel)
