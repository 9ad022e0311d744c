"""cgroups: their recognisable names, their memory, and a move of a whole group."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from numatui.model.migration import (
    MigrationError,
    MigrationOutcome,
    MigrationProgress,
    MigrationResult,
)
from numatui.model.node_bytes import NodeBytes, frozen_map, total_bytes


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
