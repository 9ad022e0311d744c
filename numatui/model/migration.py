"""One process's migration: its plan, its progress and its verdict, and the arithmetic of
the kernel's pairs (where memory ends after moves applied in order)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from numatui.model.findings import Finding
from numatui.model.node_bytes import NodeBytes, frozen_map

DEFAULT_STALL_S = 0.020
"""Target time of one move_pages call in a paced move (katalyst-core sized its chunks so)."""


@dataclass(frozen=True)
class Pacing:
    """How a chunked move paces itself: chunks sized so each move_pages call takes about
    `stall_s` (the longest the process's mmap lock is wanted at a stretch), and, when
    `max_rate_bytes_s` is set, pauses so the move never goes faster than that."""

    stall_s: float = DEFAULT_STALL_S
    max_rate_bytes_s: float | None = None

    def __post_init__(self) -> None:
        if not self.stall_s > 0:
            raise ValueError(f"the stall budget must be positive, not {self.stall_s}")
        if self.max_rate_bytes_s is not None and not self.max_rate_bytes_s > 0:
            raise ValueError(f"the rate cap must be positive, not {self.max_rate_bytes_s}")


@dataclass(frozen=True)
class MigrationPlan:
    """What `migrate_pages(pid, from, to)` will do, in the kernel's own order.

    `pairs` are (source, destination) node moves exactly as the kernel's
    `do_migrate_pages` performs them; `bytes_per_pair` is what the process
    has on each source now (an estimate: memory changes under us).
    """

    pid: int
    from_nodes: frozenset[int]
    to_nodes: frozenset[int]
    pairs: tuple[tuple[int, int], ...]
    bytes_per_pair: tuple[int, ...] = ()
    shared_bytes_staying: int = 0  # shared pages that stay without CAP_SYS_NICE
    warnings: tuple[Finding, ...] = ()
    process_name: str = ""
    process_start_time: float | None = None
    """When the planned process started: with `pid`, which process this plan is for
    (a pid reused by another process must not have its pages moved)."""
    stoppable: bool = False
    """Move with move_pages(2) a chunk at a time, so it can be stopped part way
    (slower than the one migrate_pages call: 1.3x in benchmarks/bench_migrate.py).
    Chosen when planning (`DataSource.plan(..., stoppable=True)`), never edited after."""
    free_bytes: NodeBytes = field(default_factory=frozen_map)
    """Each node's free memory as read for this plan: the number its warnings use, and
    the one the dialog shows next to each target (one "free" number, never two reads)."""
    pacing: Pacing = field(default_factory=Pacing)
    """Chunk sizing and rate cap of a stoppable plan (ignored by the one-call mode)."""

    @property
    def bytes_to_move(self) -> int:
        return sum(self.bytes_per_pair)

    @property
    def is_noop(self) -> bool:
        return not self.pairs


@dataclass(frozen=True)
class MigrationProgress:
    """A sample of the process's per-node bytes taken while the kernel works."""

    elapsed_s: float
    node_bytes: NodeBytes
    stoppable: bool = True
    """Whether setting the cancel event can still stop this migration part way."""


class MigrationOutcome(enum.StrEnum):
    ALL_MOVED = "all moved"
    PARTLY_MOVED = "partly moved"
    NOTHING_TO_MOVE = "nothing to move"
    FAILED = "failed"  # refused or failed with nothing changed


@dataclass(frozen=True)
class AuditStatus:
    """Whether a migration's audit entry was written, where, and if not, why."""

    path: str
    written: bool
    reason: str | None = None


@dataclass(frozen=True)
class MigrationError:
    """A refusal or failure, in words a user can act on."""

    errno_name: str  # "EPERM", "ESRCH", ... or "" when refused before the syscall
    message: str


@dataclass(frozen=True)
class MigrationResult:
    plan: MigrationPlan
    outcome: MigrationOutcome
    before: NodeBytes
    after: NodeBytes
    pages_not_moved: int | None  # the syscall's return value; None if it failed
    elapsed_s: float
    error: MigrationError | None = None
    explanations: tuple[str, ...] = ()
    samples: tuple[MigrationProgress, ...] = ()
    audit: AuditStatus | None = None
    """The audit trail's answer for this migration (None: not recorded by this source)."""

    @classmethod
    def unchanged(
        cls,
        plan: MigrationPlan,
        error: MigrationError,
        counts: NodeBytes | None = None,
        elapsed_s: float = 0.0,
        samples: tuple[MigrationProgress, ...] = (),
    ) -> MigrationResult:
        """A refusal or failure that moved nothing: `counts` stand as both before and after."""
        counts = counts if counts is not None else frozen_map()
        return cls(
            plan, MigrationOutcome.FAILED, counts, counts, None, elapsed_s, error, (), samples
        )

    @property
    def bytes_moved(self) -> int:
        """Bytes the plan moves that are where it puts them (per-node counts, not the
        return value): what was to move, less what is not where the pairs send it."""
        planned = planned_bytes(self.before, self.plan.pairs)
        return max(0, planned - misplaced_bytes(self.before, self.after, self.plan.pairs))

    @property
    def bytes_misplaced(self) -> int:
        """Bytes on a node beyond what the kernel's pairs, applied in order, leave there."""
        return misplaced_bytes(self.before, self.after, self.plan.pairs)

    @property
    def throughput_bytes_s(self) -> float:
        return self.bytes_moved / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressCallback = Callable[[MigrationProgress], None]


def expected_after(before: NodeBytes, pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Per-node bytes after the pairs, applied in the kernel's order, if every page moves.

    A move takes everything then on its source, including what an earlier move put
    there. Keys: every node in `before` and every node a pair names.
    """
    after = dict(before)
    for source, dest in pairs:
        moving = after.get(source, 0)
        after[source] = 0
        after[dest] = after.get(dest, 0) + moving
    return after


def final_placement(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Where the memory each touched node held before ends up after all moves, in order.

    A move takes everything then on its source, including memory an earlier move put
    there, so memory can travel more than once. Keys: every node any pair names.
    """
    pair_list = list(pairs)
    location = {node: node for pair in pair_list for node in pair}
    for source, dest in pair_list:
        for origin, now_on in location.items():
            if now_on == source:
                location[origin] = dest
    return location


def planned_bytes(before: NodeBytes, pairs: tuple[tuple[int, int], ...]) -> int:
    """Bytes the pairs move off the node they were on (memory that ends where it began,
    as in a cycle, counts as not moving)."""
    return sum(
        before.get(origin, 0) for origin, end in final_placement(pairs).items() if end != origin
    )


def misplaced_bytes(before: NodeBytes, after: NodeBytes, pairs: tuple[tuple[int, int], ...]) -> int:
    """Bytes that are not where the pairs put them: on each node the pairs name, what it
    holds beyond what they leave there. Zero for a plan that moved every page."""
    expected = expected_after(before, pairs)
    touched = {node for pair in pairs for node in pair}
    return sum(max(0, after.get(n, 0) - expected.get(n, 0)) for n in touched)


def displaced_by_node(
    before: NodeBytes, after: NodeBytes, pairs: tuple[tuple[int, int], ...]
) -> tuple[dict[int, int], dict[int, int]]:
    """What the counts show besides bytes left behind: (short, grown).

    `short`: on each node the pairs name, how much less it holds than they leave there
    (pages that were put there and are gone: moved on, or freed). `grown`: on each node
    no pair names, how much more it holds than before (pages that arrived there: moved
    there by someone else, or newly allocated). Only positive entries.
    """
    expected = expected_after(before, pairs)
    touched = {node for pair in pairs for node in pair}
    short = {n: expected.get(n, 0) - after.get(n, 0) for n in sorted(touched)}
    grown = {
        n: after.get(n, 0) - before.get(n, 0) for n in sorted((set(after) | set(before)) - touched)
    }
    return (
        {n: b for n, b in short.items() if b > 0},
        {n: b for n, b in grown.items() if b > 0},
    )


def misplaced_by_node(
    before: NodeBytes, after: NodeBytes, pairs: tuple[tuple[int, int], ...]
) -> dict[int, int]:
    """`misplaced_bytes` per node (only nodes holding more than the pairs leave there)."""
    expected = expected_after(before, pairs)
    touched = sorted({node for pair in pairs for node in pair})
    out = {n: after.get(n, 0) - expected.get(n, 0) for n in touched}
    return {n: extra for n, extra in out.items() if extra > 0}
