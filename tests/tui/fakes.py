"""A hand-made `DataSource` for screen tests: model objects, scripted migration.

Topologies: 1, 2, 4 (two memory-only, optionally sparse ids 0,1,4,5), 16 nodes
and a container without NUMA. Processes are generated from a fixed seed, so
every run (and every snapshot) sees the same machine. `migrate` is scripted:
it reports a series of samples and returns a result; it never touches a
kernel, so nothing here is evidence that migration works.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from numatui import rules
from numatui.errors import MigrationRefused, ProcessGone
from numatui.kernel.cgroups import describe
from numatui.kernel.drain import leftovers
from numatui.kernel.live import LiveSource
from numatui.kernel.migration import validate
from numatui.model.drain import DrainItem, DrainPlan, DrainProgress, DrainReport
from numatui.model.groups import (
    CgroupSupport,
    Group,
    GroupMember,
    GroupMigrationResult,
    GroupProgress,
    GroupProgressCallback,
    GroupScan,
    MemberStatus,
)
from numatui.model.memory import MappedRegion, MemoryKind, NumaMaps, ProcessMemory, ProcessScan
from numatui.model.migration import (
    MigrationError,
    MigrationOutcome,
    MigrationPlan,
    MigrationProgress,
    MigrationResult,
    Pacing,
)
from numatui.model.node_bytes import frozen_map
from numatui.model.topology import Node, NodeCounters, Topology, VmCounters
from numatui.rules import group_verdict
from numatui.source import Privileges, ProgressCallback
from tests.tooling.privileges import ROOT

GiB = 1024**3
MiB = 1024**2
PAGE = 4096


def _distances(ids: Sequence[int], memory_only: set[int]) -> dict[int, dict[int, int]]:
    out: dict[int, dict[int, int]] = {}
    for a in ids:
        row: dict[int, int] = {}
        for b in ids:
            if a == b:
                row[b] = 10
            elif a in memory_only or b in memory_only:
                row[b] = 30
            else:
                row[b] = 20 + 2 * abs(ids.index(a) - ids.index(b))
        out[a] = row
    return out


def make_topology(
    node_ids: Sequence[int],
    memory_only: Iterable[int] = (),
    *,
    cpus_per_node: int = 4,
    mem_per_node: int = 8 * GiB,
    offline: Iterable[int] = (),
    cpu_only: Iterable[int] = (),
    tick: int = 0,
) -> Topology:
    """A topology whose usage and counters move a little with each `tick`."""
    memory_only_set = set(memory_only)
    offline_set = set(offline)
    cpu_only_set = set(cpu_only)
    distances = _distances(node_ids, memory_only_set)
    nodes: list[Node] = []
    cpu = 0
    for index, node_id in enumerate(node_ids):
        has_cpu = node_id not in memory_only_set
        has_memory = node_id not in cpu_only_set
        cpus = tuple(range(cpu, cpu + cpus_per_node)) if has_cpu else ()
        cpu += len(cpus)
        total = mem_per_node if has_memory else 0
        used = (total * (30 + 7 * index + (tick * 3 + index * 5) % 11)) // 100 if total else 0
        nodes.append(
            Node(
                id=node_id,
                online=node_id not in offline_set,
                has_cpu=has_cpu,
                has_memory=has_memory,
                cpus=cpus,
                mem_total=total,
                mem_free=total - used,
                mem_used=used,
                file_bytes=used // 3,
                anon_bytes=used // 2,
                shmem_bytes=used // 20,
                distances=MappingProxyType(distances[node_id]),
                tier=(4 if has_cpu else 22) if has_memory else None,
                counters=NodeCounters(
                    numa_hit=1_000_000 + tick * (5000 + 700 * index),
                    numa_miss=1_000 + tick * (40 + 25 * index),
                    local_node=900_000 + tick * 4000,
                    other_node=2_000 + tick * 60,
                ),
            )
        )
    return Topology(
        nodes=tuple(nodes),
        possible=frozenset(node_ids),
        numa_available=True,
        numa_balancing=False,
        vm=VmCounters(
            pgmigrate_success=10_000 + tick * tick * 150,
            pgmigrate_fail=tick * 3,
            numa_hit=1_000_000 + tick * 9000,
            numa_miss=1_000 + tick * 90,
        ),
        page_size=PAGE,
        taken_at=1_000.0 + 2.0 * tick,
    )


def two_nodes(tick: int = 0) -> Topology:
    return make_topology([0, 1], tick=tick)


def four_nodes(tick: int = 0, sparse: bool = False) -> Topology:
    ids = [0, 1, 4, 5] if sparse else [0, 1, 2, 3]
    return make_topology(ids, memory_only=ids[2:], tick=tick)


def sixteen_nodes(tick: int = 0) -> Topology:
    return make_topology(list(range(16)), cpus_per_node=2, mem_per_node=4 * GiB, tick=tick)


def single_node(tick: int = 0) -> Topology:
    return make_topology([0], tick=tick)


def no_numa(tick: int = 0) -> Topology:
    base = make_topology([0], tick=tick)
    return replace(
        base,
        numa_available=False,
        unavailable_reason="no /sys/devices/system/node (a container without node information?)",
    )


NAMES = (
    "postgres",
    "redis-server",
    "java",
    "nginx",
    "python3",
    "memcached",
    "mysqld",
    "node",
    "envoy",
    "chronyd",
    "sshd",
    "systemd",
    "bash",
    "qemu-system-x86",
    "clickhouse",
    "etcd",
    "containerd",
    "kubelet",
    "prometheus",
    "grafana",
)
USERS = ("root", "postgres", "alice", "bob", "www-data")


def make_processes(topology: Topology, count: int = 30, seed: int = 7) -> list[ProcessMemory]:
    """`count` processes spread over the memory nodes, some of them misplaced."""
    rng = random.Random(seed)
    memory_ids = sorted(n.id for n in topology.nodes if n.has_memory)
    cpu_ids = sorted(n.id for n in topology.nodes if n.has_cpu) or memory_ids
    out: list[ProcessMemory] = []
    for index in range(count):
        pid = 100 + index * 37
        name = NAMES[index % len(NAMES)] + ("" if index < len(NAMES) else f"-{index}")
        home = cpu_ids[index % len(cpu_ids)]
        size = rng.choice((2 * MiB, 48 * MiB, 300 * MiB, 1200 * MiB, 3 * GiB // 2))
        node_bytes: dict[int, int] = {}
        if index % 5 == 3 and len(memory_ids) > 1:
            # Misplaced: most of its memory on another node than its CPUs.
            away = [n for n in memory_ids if n != home]
            node_bytes[away[index % len(away)]] = size * 3 // 4 // PAGE * PAGE
            node_bytes[home] = size // 4 // PAGE * PAGE
        else:
            node_bytes[home] = size * 9 // 10 // PAGE * PAGE
            others = [n for n in memory_ids if n != home]
            if others:
                node_bytes[others[index % len(others)]] = size // 10 // PAGE * PAGE
        anon = {n: b * 7 // 10 // PAGE * PAGE for n, b in node_bytes.items()}
        file_ = {n: b - anon[n] for n, b in node_bytes.items()}
        shared = {n: b // 10 // PAGE * PAGE for n, b in file_.items()}
        out.append(
            ProcessMemory(
                pid=pid,
                name=name,
                user=USERS[index % len(USERS)],
                cmdline=f"/usr/bin/{name} --worker {index}",
                rss_bytes=sum(node_bytes.values()) + 4 * MiB,
                threads=1 + index % 8,
                node_bytes=frozen_map(node_bytes),
                kind_bytes=MappingProxyType(
                    {MemoryKind.ANON: frozen_map(anon), MemoryKind.FILE: frozen_map(file_)}
                ),
                shared_bytes=frozen_map(shared),
                mems_allowed=frozenset(memory_ids),
                cpu_nodes=frozenset({home}),
                mapping_count=10 + index,
                start_time=1_000.0 + index,
            )
        )
    out.append(
        ProcessMemory(
            pid=2,
            name="kthreadd",
            user="root",
            cmdline="",
            rss_bytes=0,
            threads=1,
            node_bytes=frozen_map(),
            is_kernel_thread=True,
        )
    )
    return out


@dataclass
class MigrationScript:
    """How the fake migration goes: samples, final outcome, or an exception."""

    steps: int = 5
    step_s: float = 0.5
    fraction_moved: float = 1.0
    explanations: tuple[str, ...] = ()
    error: MigrationError | None = None
    raise_message: str | None = None
    block: threading.Event | None = None  # migrate waits on it (ignoring cancel)
    # After its first sample, migrate waits on it: a test sees progress without racing the end.
    hold_after_first: threading.Event | None = None
    sleep_s: float = 0.0  # real time between samples, so tests can watch it move
    stoppable: bool = True  # what the samples say (False: one uninterruptible kernel call)


@dataclass
class FakeSource:
    """Implements `numatui.source.DataSource` over generated model objects."""

    topology_factory: object = two_nodes
    process_count: int = 30
    privileges_value: Privileges = ROOT
    script: MigrationScript = field(default_factory=MigrationScript)
    fail_scan: str | None = None
    fail_numa_maps: str | None = None
    group_paths: tuple[str, ...] = (
        "/system.slice/nginx.service",
        "/system.slice/docker-" + "3f2a9c1b4e5d" + "a" * 52 + ".scope",
        "/user.slice/user-1000.slice/user@1000.service",
    )
    group_stat_missing: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tick = 0
        self.calls: list[str] = []
        self.migrations: list[MigrationPlan] = []
        base = self._topology(0)
        self.processes: dict[int, ProcessMemory] = {
            p.pid: p for p in make_processes(base, self.process_count)
        }
        self.lock = threading.Lock()

    def _topology(self, tick: int) -> Topology:
        factory = self.topology_factory
        assert callable(factory)
        topology = factory(tick)
        assert isinstance(topology, Topology)
        return topology

    # ---------------------------------------------------------------- protocol

    def topology(self) -> Topology:
        self.calls.append("topology")
        with self.lock:
            self.tick += 1
            return self._topology(self.tick)

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        self.calls.append("scan nodes" if nodes_only else "scan")
        if self.fail_scan:
            raise PermissionError(self.fail_scan)
        with self.lock:
            processes = tuple(self.processes[pid] for pid in sorted(self.processes))
        if nodes_only:  # as the scanner leaves them: no kinds or shared bytes read
            processes = tuple(
                replace(p, kind_bytes={}, shared_bytes={}, kinds_read=False) for p in processes
            )
        return ProcessScan(processes=processes, taken_at=1_000.0 + 2.0 * self.tick, unreadable=3)

    def numa_maps(self, pid: int) -> NumaMaps:
        self.calls.append(f"numa_maps {pid}")
        if self.fail_numa_maps:
            raise PermissionError(self.fail_numa_maps)
        process = self.processes.get(pid)
        if process is None:
            raise ProcessGone(pid)
        regions: list[MappedRegion] = []
        start = 0x55_0000_0000
        for index, (node_id, size) in enumerate(sorted(process.node_bytes.items())):
            for part, kind in enumerate((MemoryKind.HEAP, MemoryKind.ANON, MemoryKind.FILE)):
                pages = size // PAGE // (2 + part)
                regions.append(
                    MappedRegion(
                        start=start,
                        policy="default",
                        kind=kind,
                        path=f"/usr/lib/lib{index}{part}.so" if kind is MemoryKind.FILE else None,
                        node_pages=MappingProxyType({node_id: pages}),
                        page_size=PAGE,
                        anon=pages if kind is not MemoryKind.FILE else 0,
                        mapmax=3 if kind is MemoryKind.FILE else 1,
                    )
                )
                start += 0x10_0000 * (1 + pages // 256)
        return NumaMaps(tuple(regions))

    def privileges(self) -> Privileges:
        self.calls.append("privileges")
        return self.privileges_value

    def plan(
        self,
        pid: int,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        *,
        stoppable: bool = False,
        pacing: Pacing | None = None,
    ) -> MigrationPlan:
        """The real rules and preview (`validate`) over the fake machine's snapshots."""
        self.calls.append("plan")
        privileges = self.privileges_value
        topology = self._topology(self.tick)
        return validate(
            pid,
            from_nodes,
            to_nodes,
            topology,
            self.processes.get(pid),
            privileges,
            stoppable=stoppable,
            pacing=pacing,
            caller_mems=topology.with_memory,
            process_uid=privileges.uid,
        )

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        self.calls.append("migrate")
        self.migrations.append(plan)
        process = self.processes[plan.pid]
        result = scripted_migration(
            self.script, plan, dict(process.node_bytes), on_progress, cancel
        )
        with self.lock:
            self.processes[plan.pid] = replace(process, node_bytes=result.after)
        return result

    def groups(self, scan: ProcessScan | None = None) -> GroupScan:
        """The processes dealt round-robin into `group_paths`; each group's memory.numa_stat
        is its members' bytes as anon plus 1 MiB of page cache per node, except where
        `group_stat_missing` names a reason (the kernel gives none)."""
        self.calls.append("groups")
        scan = scan if scan is not None else self.scan()
        members: dict[str, list[ProcessMemory]] = {}
        user = [p for p in scan.processes if not p.is_kernel_thread]
        for index, process in enumerate(user):
            path = self.group_paths[index % len(self.group_paths)]
            members.setdefault(path, []).append(process)
        groups = []
        for path, processes in members.items():
            nodes: dict[int, int] = {}
            for process in processes:
                for node, value in process.node_bytes.items():
                    nodes[node] = nodes.get(node, 0) + value
            missing = self.group_stat_missing.get(path, "")
            stat = (
                None
                if missing
                else {
                    "anon": frozen_map(nodes),
                    "file": frozen_map({n: MiB for n in nodes}),
                }
            )
            groups.append(
                Group(
                    path,
                    describe(path),
                    tuple(p.pid for p in processes),
                    frozen_map(nodes),
                    stat,
                    missing,
                )
            )
        return GroupScan(tuple(groups), CgroupSupport(True, True), scan.taken_at)

    def migrate_group(
        self,
        path: str,
        from_nodes: Iterable[int],
        to_nodes: Iterable[int],
        on_progress: GroupProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        stoppable: bool = False,
    ) -> GroupMigrationResult:
        """Each member through the real rules (`plan`) and the scripted move; the real
        group verdict. Moves nothing anywhere: evidence only of what the screens show."""
        self.calls.append(f"migrate_group {path}")
        group = next(g for g in self.groups().groups if g.path == path)
        members: list[GroupMember] = []
        moved = 0
        for index, pid in enumerate(group.pids):
            if cancel is not None and cancel.is_set():
                members.append(GroupMember(pid, "", MemberStatus.SKIPPED, message="stopped"))
                continue
            try:
                plan = self.plan(pid, from_nodes, to_nodes)
            except MigrationRefused as exc:
                members.append(
                    GroupMember(pid, "", MemberStatus.REFUSED, message=str(exc), code=exc.code)
                )
                continue

            def forward(
                sample: MigrationProgress, pid: int = pid, done: int = index, moved: int = moved
            ) -> None:
                if on_progress is not None:
                    on_progress(
                        GroupProgress(sample.elapsed_s, pid, done, len(group.pids), moved, sample)
                    )

            result = self.migrate(plan, forward, None)
            moved += result.bytes_moved
            members.append(GroupMember(pid, self.processes[pid].name, MemberStatus.MOVED, result))
        outcome, why = group_verdict(
            tuple(members), frozenset(from_nodes), None, None, None, "fake", self.privileges_value
        )
        return GroupMigrationResult(
            path,
            group.name,
            frozenset(from_nodes),
            frozenset(to_nodes),
            outcome,
            tuple(members),
            0.5,
            explanations=why,
            rounds=1,
        )

    def plan_drain(self, node: int, pacing: Pacing | None = None) -> DrainPlan:
        """The real rules' choice of targets and `validate` over the fake machine."""
        self.calls.append("plan_drain")
        topology = self._topology(self.tick)
        refusal = rules.drain_refusal(node, topology)
        if refusal is not None:
            return DrainPlan(node, refusal=refusal)
        free = {n.id: n.mem_free for n in topology.nodes}
        items: list[DrainItem] = []
        for pid in sorted(self.processes):
            process = self.processes[pid]
            size = process.node_bytes.get(node, 0)
            if not size or process.is_kernel_thread:
                continue
            candidates = rules.drain_targets(node, topology, process, self.privileges_value)
            target, why = rules.pick_drain_target(node, process, candidates, free)
            if target is None:
                items.append(DrainItem(pid, process.name, size, None, None, why))
                continue
            plan = self.plan(pid, {node}, {target}, stoppable=True, pacing=pacing)
            free[target] = free.get(target, 0) - size
            items.append(DrainItem(pid, process.name, size, target, plan))
        return DrainPlan(node, tuple(items))

    def drain(
        self,
        plan: DrainPlan,
        on_progress: Callable[[DrainProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DrainReport:
        self.calls.append("drain")
        results = []
        planned = [item for item in plan.items if item.plan is not None]
        for item in planned:
            if cancel is not None and cancel.is_set():
                break
            assert item.plan is not None
            results.append(self.migrate(item.plan, None, cancel))
            if on_progress is not None:
                on_progress(DrainProgress(0.1, len(results), len(planned), 0, plan.bytes_to_move))
        return DrainReport(
            plan, tuple(results), 0, 0, leftovers(plan, tuple(results), {}, self._topology(0)), 0.1
        )

    # ---------------------------------------------------------------- test helpers

    def exit_process(self, pid: int) -> None:
        with self.lock:
            del self.processes[pid]


def scripted_migration(
    script: MigrationScript,
    plan: MigrationPlan,
    before: dict[int, int],
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> MigrationResult:
    """Pages "move" along the plan's pairs in `script.steps` samples; no kernel involved."""
    if script.block is not None:
        script.block.wait()
    if script.raise_message:
        raise OSError(script.raise_message)
    if script.error is not None:
        return MigrationResult(
            plan=plan,
            outcome=MigrationOutcome.FAILED,
            before=frozen_map(before),
            after=frozen_map(before),
            pages_not_moved=None,
            elapsed_s=0.01,
            error=script.error,
            explanations=script.explanations,
        )
    samples: list[MigrationProgress] = []
    after = dict(before)
    for step in range(1, script.steps + 1):
        if cancel is not None and cancel.is_set():
            break
        share = script.fraction_moved * step / script.steps
        current = dict(before)
        for (src, dst), size in zip(plan.pairs, plan.bytes_per_pair, strict=False):
            moving = int(size * share) // PAGE * PAGE
            current[src] = current.get(src, 0) - moving
            current[dst] = current.get(dst, 0) + moving
        sample = MigrationProgress(
            step * script.step_s, frozen_map(current), stoppable=script.stoppable
        )
        samples.append(sample)
        after = current
        if on_progress is not None:
            on_progress(sample)
        if step == 1 and script.hold_after_first is not None:
            script.hold_after_first.wait()
        if script.sleep_s:
            threading.Event().wait(script.sleep_s)
    left = sum(after.get(s, 0) for s, _ in plan.pairs)
    return MigrationResult(
        plan=plan,
        outcome=MigrationOutcome.ALL_MOVED if left == 0 else MigrationOutcome.PARTLY_MOVED,
        before=frozen_map(before),
        after=frozen_map(after),
        pages_not_moved=left // PAGE,
        elapsed_s=script.steps * script.step_s,
        explanations=script.explanations,
        samples=tuple(samples),
    )


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class RecordedSource(LiveSource):
    """The real readers and validation over a recorded /sys + /proc; migration scripted.

    Screens are tested over the real parsers this way; only `migrate` is a
    script (a recorded tree cannot be migrated, and the real migration is
    proven in the guest by the kernel tier).
    """

    def __init__(
        self,
        machine: str,
        privileges: Privileges = ROOT,
        script: MigrationScript | None = None,
    ) -> None:
        root = FIXTURES / machine
        super().__init__(sys_root=root / "sys", proc_root=root / "proc", privileges=privileges)
        self.script = script or MigrationScript()
        self.migrations: list[MigrationPlan] = []

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        self.migrations.append(plan)
        process = self._scanner.read_process(plan.pid, topology=self.topology())
        return scripted_migration(self.script, plan, dict(process.node_bytes), on_progress, cancel)


def listed(source: FakeSource) -> int:
    """How many rows the process table shows by default: kernel threads are hidden."""
    return sum(1 for p in source.processes.values() if not p.is_kernel_thread)
