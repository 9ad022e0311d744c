"""The typed snapshots every face of numatui sees.

Plain, immutable dataclasses: no I/O here and no Textual. The kernel layer
(`numatui.kernel`) builds them from /sys, /proc and syscalls; the CLI and the
screens only read them. Byte counts are always bytes (never pages or kB) so
no face has to know a page size.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

NodeBytes = Mapping[int, int]
"""Bytes per node id. Missing ids mean zero."""


def frozen_map(values: Mapping[int, int] | None = None) -> NodeBytes:
    """A read-only copy, so a snapshot cannot be changed behind a screen's back."""
    return MappingProxyType(dict(values or {}))


def total_bytes(values: NodeBytes) -> int:
    return sum(values.values())


# ---------------------------------------------------------------- topology


@dataclass(frozen=True)
class HugePagePool:
    """One huge page size on one node (counts are pages of `size_bytes`)."""

    size_bytes: int
    total: int
    free: int
    surplus: int = 0


@dataclass(frozen=True)
class NodeCounters:
    """`nodeN/numastat`: cumulative page counts since boot."""

    numa_hit: int = 0
    numa_miss: int = 0
    numa_foreign: int = 0
    interleave_hit: int = 0
    local_node: int = 0
    other_node: int = 0


@dataclass(frozen=True)
class Node:
    id: int
    online: bool
    has_cpu: bool
    has_memory: bool
    cpus: tuple[int, ...] = ()
    mem_total: int = 0
    mem_free: int = 0
    mem_used: int = 0
    file_bytes: int = 0
    anon_bytes: int = 0
    shmem_bytes: int = 0
    hugepages: tuple[HugePagePool, ...] = ()
    distances: Mapping[int, int] = field(default_factory=frozen_map)
    tier: int | None = None
    counters: NodeCounters | None = None

    @property
    def memory_only(self) -> bool:
        """CPU-less node with memory: how CXL expanders and PMEM appear."""
        return self.has_memory and not self.has_cpu


@dataclass(frozen=True)
class VmCounters:
    """The `/proc/vmstat` counters numatui charts and the scanner watches (cumulative).

    `pgmigrate_counted` is False when vmstat has no pgmigrate_success (no
    CONFIG_MIGRATION, or no vmstat at all): its 0 then means "not counted",
    not "nothing moved".
    """

    pgmigrate_success: int = 0
    pgmigrate_fail: int = 0
    numa_hit: int = 0
    numa_miss: int = 0
    numa_pages_migrated: int = 0
    thp_collapse_alloc: int = 0
    pgmigrate_counted: bool = False


@dataclass(frozen=True)
class Topology:
    """What the machine's NUMA layout is, read at one moment.

    `numa_available` is False on a kernel without NUMA or in a container with
    no /sys/devices/system/node; `unavailable_reason` then says why, and the
    faces still work with the single pseudo-node they are given.
    """

    nodes: tuple[Node, ...]
    possible: frozenset[int] = frozenset()
    numa_available: bool = True
    unavailable_reason: str = ""
    numa_balancing: bool | None = None
    vm: VmCounters = field(default_factory=VmCounters)
    page_size: int = 4096
    taken_at: float = 0.0

    def node(self, node_id: int) -> Node | None:
        for n in self.nodes:
            if n.id == node_id:
                return n
        return None

    @property
    def online(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.online)

    @property
    def with_memory(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.has_memory and n.online)

    @property
    def with_cpu(self) -> frozenset[int]:
        return frozenset(n.id for n in self.nodes if n.has_cpu and n.online)

    @property
    def can_migrate(self) -> bool:
        """Migration needs NUMA and at least two nodes with memory (`rules.machine_refusal`)."""
        from numatui.rules import machine_refusal  # the rules build on this module

        return machine_refusal(self) is None


# ---------------------------------------------------------------- processes


class MemoryKind(enum.StrEnum):
    """What a mapping holds, as numa_maps tells it apart."""

    ANON = "anon"
    FILE = "file"
    HEAP = "heap"
    STACK = "stack"
    SHMEM = "shmem"
    HUGE = "huge"  # hugetlbfs pages (not THP: a THP counts as its base pages)


@dataclass(frozen=True)
class MappedRegion:
    """One line of /proc/PID/numa_maps: one VMA."""

    start: int
    policy: str
    kind: MemoryKind
    path: str | None
    node_pages: Mapping[int, int]
    page_size: int
    anon: int = 0
    dirty: int = 0
    mapped: int = 0
    mapmax: int = 0
    swapcache: int = 0

    @property
    def node_bytes(self) -> NodeBytes:
        return frozen_map({n: p * self.page_size for n, p in self.node_pages.items()})

    @property
    def shared(self) -> bool:
        """Mapped by other processes too: migrate_pages leaves these without CAP_SYS_NICE."""
        return self.mapmax > 1


@dataclass(frozen=True)
class NumaMaps:
    """A process's whole numa_maps, summed per node and per kind."""

    mappings: tuple[MappedRegion, ...]

    @property
    def node_bytes(self) -> NodeBytes:
        out: dict[int, int] = {}
        for m in self.mappings:
            for n, p in m.node_pages.items():
                out[n] = out.get(n, 0) + p * m.page_size
        return frozen_map(out)

    @property
    def kind_bytes(self) -> Mapping[MemoryKind, NodeBytes]:
        out: dict[MemoryKind, dict[int, int]] = {}
        for m in self.mappings:
            d = out.setdefault(m.kind, {})
            for n, p in m.node_pages.items():
                d[n] = d.get(n, 0) + p * m.page_size
        return MappingProxyType({k: frozen_map(v) for k, v in out.items()})

    @property
    def shared_bytes(self) -> NodeBytes:
        out: dict[int, int] = {}
        for m in self.mappings:
            if m.shared:
                for n, p in m.node_pages.items():
                    out[n] = out.get(n, 0) + p * m.page_size
        return frozen_map(out)


@dataclass(frozen=True)
class ProcessMemory:
    """One process's identity and where its memory lives, at one scan.

    `node_bytes` counts pages present in RAM per node (numa_maps), which is
    what migration moves; `rss_bytes` is psutil's resident size for context.
    `kind_bytes` splits `node_bytes` by `MemoryKind`.
    """

    pid: int
    name: str
    user: str
    cmdline: str
    rss_bytes: int
    threads: int
    node_bytes: NodeBytes
    kind_bytes: Mapping[MemoryKind, NodeBytes] = field(default_factory=lambda: MappingProxyType({}))
    shared_bytes: NodeBytes = field(default_factory=frozen_map)
    mems_allowed: frozenset[int] = frozenset()
    cpu_nodes: frozenset[int] = frozenset()
    mapping_count: int = 0
    start_time: float = 0.0
    is_kernel_thread: bool = False
    memory_readable: bool = True  # False: numa_maps denied (other user, hidepid); bytes unknown
    kinds_read: bool = True
    """False: read for a list, bytes per node only; `kind_bytes` and `shared_bytes`
    were not read (empty, not zero)."""

    @property
    def numa_bytes(self) -> int:
        return total_bytes(self.node_bytes)

    @property
    def locality(self) -> float | None:
        """Share of the memory on nodes where the threads run; None when unknown."""
        total = self.numa_bytes
        if total == 0 or not self.cpu_nodes:
            return None
        local = sum(b for n, b in self.node_bytes.items() if n in self.cpu_nodes)
        return local / total


@dataclass(frozen=True)
class ProcessScan:
    """The result of one scan of all processes."""

    processes: tuple[ProcessMemory, ...]
    taken_at: float
    duration_s: float = 0.0
    skipped_unchanged: int = 0
    unreadable: int = 0  # processes whose numa_maps we may not read (other users, hidepid)
    vanished: int = 0  # processes that exited while we read them


# ---------------------------------------------------------------- privileges


@dataclass(frozen=True)
class Privileges:
    """What the running user may do, so faces can explain refusals up front."""

    uid: int
    is_root: bool
    cap_sys_nice: bool  # move shared pages, targets outside a process's cpuset
    cap_sys_ptrace: bool  # read/migrate other users' processes
    processes_hidden: bool = False
    """/proc is mounted with hidepid and we may not see past it: others' processes are missing."""


# ---------------------------------------------------------------- migration rules


class RuleCode(enum.StrEnum):
    """Stable names of the migration rules' answers (`numatui.rules`), for scripts and tests."""

    NUMA_UNAVAILABLE = "numa_unavailable"
    SINGLE_MEMORY_NODE = "single_memory_node"
    PROCESS_GONE = "process_gone"
    KERNEL_THREAD = "kernel_thread"
    NO_PAGES = "no_pages"
    NO_TARGET = "no_target"
    NODE_MISSING = "node_missing"
    TARGET_OFFLINE = "target_offline"
    TARGET_NO_MEMORY = "target_no_memory"
    TARGET_NO_FREE_MEMORY = "target_no_free_memory"
    OTHER_USER = "other_user"
    TARGET_OUTSIDE_CPUSET = "target_outside_cpuset"
    TARGET_OUTSIDE_NUMATUI_CPUSET = "target_outside_numatui_cpuset"
    SHARED_PAGES_STAY = "shared_pages_stay"
    TARGET_TOO_FULL = "target_too_full"
    HUGETLB_NO_FREE_PAGE = "hugetlb_no_free_page"
    NUMA_BALANCING = "numa_balancing"
    DRAIN_NO_MEMORY = "drain_no_memory"
    DRAIN_NO_TARGET = "drain_no_target"


@dataclass(frozen=True)
class Finding:
    """One answer of the migration rules: a refusal or a warning, with a stable code.

    `errno_name` is what the kernel would answer for the same request ("EPERM",
    "ESRCH", "EINVAL"), or "" when numatui refuses for a reason of its own.
    `short` is the few words a list of targets shows next to a disabled node.
    """

    code: RuleCode
    message: str
    errno_name: str = ""
    short: str = ""


# ---------------------------------------------------------------- migration


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


# ---------------------------------------------------------------- where pages should end


# ---------------------------------------------------------------- draining a node


@dataclass(frozen=True)
class DrainItem:
    """One process with memory on the drained node: where it goes, or why it does not."""

    pid: int
    name: str
    bytes_on_node: int
    target: int | None
    plan: MigrationPlan | None
    refusal: Finding | None = None


@dataclass(frozen=True)
class DrainPlan:
    """Every process with memory on `node`, each with its target (the dry run's answer).

    `refusal` set: the drain as a whole is refused (no such node, the only memory
    node, a node without memory) and nothing is to be done.
    """

    node: int
    items: tuple[DrainItem, ...] = ()
    refusal: Finding | None = None
    unreadable: int = 0  # processes whose memory this user may not read (not planned)

    @property
    def bytes_to_move(self) -> int:
        return sum(item.bytes_on_node for item in self.items if item.plan is not None)

    @property
    def bytes_staying(self) -> int:
        return sum(item.bytes_on_node for item in self.items if item.plan is None)


@dataclass(frozen=True)
class DrainProgress:
    """The whole drain so far: processes done, bytes moved off the node, the one moving now."""

    elapsed_s: float
    processes_done: int
    processes_total: int
    bytes_moved: int
    bytes_total: int
    current_pid: int | None = None


@dataclass(frozen=True)
class DrainLeftover:
    """Memory still on the drained node that numatui did not move, and why."""

    reason: str  # stable: kernel, page_cache, hugetlb, process, not_planned, other
    bytes: int
    detail: str


@dataclass(frozen=True)
class DrainReport:
    plan: DrainPlan
    results: tuple[MigrationResult, ...]
    used_before: int  # the node's MemUsed (its meminfo), bytes
    used_after: int
    leftovers: tuple[DrainLeftover, ...]
    elapsed_s: float
    stopped: bool = False

    @property
    def bytes_moved(self) -> int:
        return sum(
            max(0, r.before.get(self.plan.node, 0) - r.after.get(self.plan.node, 0))
            for r in self.results
        )


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


# ---------------------------------------------------------------- groups (cgroups)


class GroupKind(enum.StrEnum):
    """What a cgroup is, as its path tells (`numatui.kernel.cgroups.describe`)."""

    ROOT = "root"
    SERVICE = "service"  # a systemd unit: nginx.service, user@1000.service
    SCOPE = "scope"  # a systemd scope (session-2.scope): processes started elsewhere
    SLICE = "slice"
    CONTAINER = "container"  # docker, containerd, podman, CRI-O
    POD = "pod"  # a Kubernetes pod's own cgroup (its containers are CONTAINER)
    OTHER = "other"


@dataclass(frozen=True)
class GroupName:
    """A cgroup path turned into what an operator recognises.

    `label` is the short text a table shows (`nginx.service`, `docker 3f2a9c1b4e5d web`,
    `pod 5d3b…`); the other fields are the parts a script may want on their own.
    All of them come from paths and files other users may create: untrusted text.
    """

    kind: GroupKind
    label: str
    unit: str = ""  # the systemd unit, slice or scope the path ends in
    runtime: str = ""  # "docker", "containerd", "podman", "cri-o"
    container_id: str = ""  # the runtime's short id (12 hex digits)
    container_name: str = ""  # where the runtime leaves a name on the machine
    pod_uid: str = ""
    qos: str = ""  # Kubernetes QoS class: guaranteed, burstable, besteffort


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine's cgroups let numatui show.

    `unified`: cgroup v2 (a `0::` line in /proc/PID/cgroup and a cgroup2 mount);
    `memory`: the v2 memory controller is there, so groups have `memory.numa_stat`.
    `missing` says in words what is not there (empty when both are).
    """

    unified: bool
    memory: bool
    missing: str = ""


@dataclass(frozen=True)
class Group:
    """One cgroup with processes in it, at one scan.

    `node_bytes` sums the members' numa_maps (what a process-level move can move);
    `numa_stat` is the cgroup's own `memory.numa_stat` by kind (anon, file, shmem,
    kernel), which also counts page cache that no member maps. It is None when the
    kernel does not give it, and `numa_stat_missing` then says why (never zeros).
    """

    path: str
    name: GroupName
    pids: tuple[int, ...]
    node_bytes: NodeBytes
    numa_stat: Mapping[str, NodeBytes] | None = None
    numa_stat_missing: str = ""
    unreadable: int = 0  # members whose memory this user may not read

    @property
    def numa_bytes(self) -> int:
        return total_bytes(self.node_bytes)

    @property
    def stat_node_bytes(self) -> NodeBytes | None:
        """anon + file + shmem + kernel per node from memory.numa_stat, or None."""
        if self.numa_stat is None:
            return None
        out: dict[int, int] = {}
        for kind in GROUP_STAT_KINDS:
            for node, value in self.numa_stat.get(kind, {}).items():
                out[node] = out.get(node, 0) + value
        return frozen_map(out)


GROUP_STAT_KINDS = ("anon", "file", "shmem", "kernel")
"""The kinds of `memory.numa_stat` numatui shows. `shmem` is also counted in `file` by
the kernel; the kernel's own lines name no `kernel` total (kernel_stack, pagetables and
slab summed into it by the reader)."""


@dataclass(frozen=True)
class GroupScan:
    groups: tuple[Group, ...]
    support: CgroupSupport
    taken_at: float = 0.0


class MemberStatus(enum.StrEnum):
    """How one process of a group move ended."""

    MOVED = "moved"  # its own job ran: the result says how much moved
    REFUSED = "refused"  # the rules refused it before any syscall (reason in `message`)
    EXITED = "exited"  # gone before its turn came: nothing of it to move
    SKIPPED = "skipped"  # stopped by the user before its turn


@dataclass(frozen=True)
class GroupMember:
    """One process's part in a group move, with its own job's verdict when it ran."""

    pid: int
    name: str
    status: MemberStatus
    result: MigrationResult | None = None
    message: str = ""
    code: str = ""  # the rules' code of a refusal
    joined_during_move: bool = False  # found by a later read of cgroup.procs


@dataclass(frozen=True)
class GroupMigrationResult:
    """One move of a whole cgroup: one verdict over the per-process outcomes under it.

    `stat_before`/`stat_after` are the group's memory.numa_stat (None: not available,
    see `numa_stat_missing`): what a process-level move cannot move (page cache no member
    maps) shows there.
    """

    path: str
    name: GroupName
    from_nodes: frozenset[int]
    to_nodes: frozenset[int]
    outcome: MigrationOutcome
    members: tuple[GroupMember, ...]
    elapsed_s: float
    stat_before: Mapping[str, NodeBytes] | None = None
    stat_after: Mapping[str, NodeBytes] | None = None
    numa_stat_missing: str = ""
    error: MigrationError | None = None
    explanations: tuple[str, ...] = ()
    rounds: int = 0  # reads of cgroup.procs
    error_code: str = ""
    """Stable name of a refusal of the whole group (`cgroup_not_found`, `cgroup_unsafe_path`,
    `cgroup_removed`, ...), for scripts."""

    @property
    def bytes_moved(self) -> int:
        return sum(m.result.bytes_moved for m in self.members if m.result is not None)


@dataclass(frozen=True)
class GroupProgress:
    """Where a group move is: which member is moving, and that member's latest sample."""

    elapsed_s: float
    pid: int
    done: int  # members finished
    known: int  # members found so far (more may join)
    bytes_moved: int  # by the finished members
    sample: MigrationProgress | None = None
    stoppable: bool = True


GroupProgressCallback = Callable[[GroupProgress], None]
