"""The Prometheus collector: every scrape is one topology read and one scanner refresh.

The scanner's steady-state refresh re-reads only the processes that changed
(see `numatui.kernel.scanner.ProcessScanner`), so a scrape of a machine with
thousands of idle processes costs a stat read per process. Nothing here
migrates or writes anything but the exposition.

Per-process series are bounded: only readable user processes with at least
`min_bytes` on NUMA nodes, the `top` largest of those; what is left out is
counted (`numatui_process_series_dropped`). Processes whose memory may not
be read are counted (`numatui_processes_unreadable`), never shown as zeros.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from numatui import __version__
from numatui.exporter.labels import CGROUP_LIMIT, COMM_LIMIT, USER_LIMIT, label_value
from numatui.kernel import audit, vmstat
from numatui.kernel.cgroups import ContainerNames, cgroup_numa_stat, describe, process_cgroup
from numatui.kernel.live import LiveSource
from numatui.model.memory import ProcessMemory, ProcessScan
from numatui.model.migration import MigrationOutcome
from numatui.model.topology import Topology

PROCESS_LABELS = ("pid", "comm", "user", "cgroup", "group")
GROUP_LABELS = ("cgroup", "group", "group_kind")
OTHER_OUTCOME = "other"  # an audit line with an outcome numatui does not write (hand edit)
STAGES = ("topology", "processes", "counters", "cgroups", "audit")


@dataclass(frozen=True)
class ExportLimits:
    """Which processes get their own series."""

    min_bytes: int = 8 * 1024 * 1024
    top: int = 50


@dataclass(frozen=True)
class _AuditTotals:
    key: tuple[int, int, int]  # inode, size, mtime: re-read only when the log changed
    by_outcome: dict[str, int]
    bytes_moved: int


def select_processes(scan: ProcessScan, limits: ExportLimits) -> tuple[list[ProcessMemory], int]:
    """The processes to export (largest first) and how many readable ones were left out."""
    candidates = [p for p in scan.processes if not p.is_kernel_thread and p.memory_readable]
    big = [p for p in candidates if p.numa_bytes >= limits.min_bytes]
    big.sort(key=lambda p: (-p.numa_bytes, p.pid))
    chosen = big[: limits.top]
    return chosen, len(candidates) - len(chosen)


def outcome_label(outcome: MigrationOutcome) -> str:
    """`all moved` -> `all_moved`: label values without spaces are easier to query."""
    return str(outcome).replace(" ", "_")


def _gauge(name: str, doc: str, labels: Iterable[str] = (), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit)


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


class NumaCollector(Collector):
    """Answers each scrape from `source`'s topology and its scanner's refresh.

    One scrape at a time (a lock): the scanner keeps the previous scan to
    refresh from, and two overlapping scrapes would only do the work twice.
    """

    def __init__(
        self,
        source: LiveSource,
        limits: ExportLimits | None = None,
        audit_path: Path | None = None,
        cgroup_root: Path | None = None,
    ) -> None:
        self.source = source
        self.limits = limits or ExportLimits()
        self.audit_path = audit_path
        self.cgroup_root = (
            cgroup_root if cgroup_root is not None else source.sys_root / "fs" / "cgroup"
        )
        self._lock = threading.Lock()
        self._previous: ProcessScan | None = None
        self._errors = dict.fromkeys(STAGES, 0)
        self._audit: _AuditTotals | None = None
        # The groups view's names (nginx.service, docker 3f2a9c1b4e5d web, pod 5d3b… (burstable)):
        # a dashboard can sum by service, container or pod without parsing cgroup paths.
        self._container_names = ContainerNames()

    def describe(self) -> list[Metric]:
        # Registering must not scan the machine (the registry calls collect() otherwise).
        return []

    def prime(self) -> None:
        """One scan ahead of the first scrape, so that scrape is a cheap refresh already."""
        with self._lock:
            self._scan(self.source.topology())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._collect()
        yield from families

    # ------------------------------------------------------------ reading

    def _scan(self, topology: Topology) -> ProcessScan | None:
        try:
            scan = self.source.scan(self._previous)
        except Exception:  # one bad read must not take the exporter down
            self._errors["processes"] += 1
            self._previous = None
            return None
        self._previous = scan
        return scan

    def _audit_totals(self) -> _AuditTotals | None:
        path = self.audit_path or audit.default_log_path()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return _AuditTotals((0, 0, 0), {}, 0)  # no migration recorded yet
        except OSError:
            self._errors["audit"] += 1
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._audit is not None and self._audit.key == key:
            return self._audit
        known = {str(o): outcome_label(o) for o in MigrationOutcome}
        by_outcome: dict[str, int] = {}
        moved = 0
        for entry in audit.read(path):
            outcome = known.get(entry.outcome, OTHER_OUTCOME)
            by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
            moved += max(0, entry.bytes_moved)
        self._audit = _AuditTotals(key, by_outcome, moved)
        return self._audit

    # ------------------------------------------------------------ families

    def _collect(self) -> list[Metric]:
        started = time.perf_counter()
        try:
            topology = self.source.topology()
        except Exception:
            self._errors["topology"] += 1
            topology = None
        families: list[Metric] = []
        info = InfoMetricFamily("numatui_exporter", "The numatui exporter's version")
        info.add_metric([], {"version": __version__})
        families.append(info)
        if topology is not None:
            families.extend(self._node_families(topology))
            families.extend(self._counter_families(topology))
            scan = self._scan(topology)
            if scan is not None:
                families.extend(self._process_families(topology, scan))
        families.extend(self._audit_families())
        errors = _counter(
            "numatui_scan_errors",
            "Reads that failed with an unexpected error, by stage (the scrape went on without it)",
            ["stage"],
        )
        for stage in STAGES:
            errors.add_metric([stage], self._errors[stage])
        families.append(errors)
        duration = _gauge(
            "numatui_scrape_duration_seconds",
            "Time this scrape spent reading the machine (topology, processes, cgroups, audit)",
        )
        duration.add_metric([], time.perf_counter() - started)
        families.append(duration)
        return families

    def _node_families(self, topo: Topology) -> list[Metric]:
        avail = _gauge("numatui_numa_available", "1 when the kernel exposes NUMA nodes")
        avail.add_metric([], 1 if topo.numa_available else 0)
        out: list[Metric] = [avail]
        if topo.numa_balancing is not None:
            bal = _gauge("numatui_numa_balancing_enabled", "1 when automatic NUMA balancing is on")
            bal.add_metric([], 1 if topo.numa_balancing else 0)
            out.append(bal)
        node = ["node"]
        total = _gauge("numatui_node_memory_total_bytes", "Memory of the node (MemTotal)", node)
        free = _gauge("numatui_node_memory_free_bytes", "Free memory of the node (MemFree)", node)
        used = _gauge("numatui_node_memory_used_bytes", "Used memory of the node (MemUsed)", node)
        kind = _gauge(
            "numatui_node_memory_kind_bytes",
            "Memory of the node by kind (anon: AnonPages, file: FilePages, shmem: Shmem)",
            ["node", "kind"],
        )
        huge_labels = ["node", "page_size_bytes"]
        huge_total = _gauge(
            "numatui_node_hugepages_bytes", "Huge page pool of the node, per page size", huge_labels
        )
        huge_free = _gauge(
            "numatui_node_hugepages_free_bytes",
            "Free huge pages of the node, per size",
            huge_labels,
        )
        huge_surplus = _gauge(
            "numatui_node_hugepages_surplus_bytes",
            "Surplus (overcommitted) huge pages of the node, per size",
            huge_labels,
        )
        online = _gauge("numatui_node_online", "1 when the node is online", node)
        has_cpu = _gauge("numatui_node_has_cpu", "1 when the node has CPUs", node)
        has_mem = _gauge("numatui_node_has_memory", "1 when the node has memory", node)
        mem_only = _gauge(
            "numatui_node_memory_only", "1 for a node with memory and no CPU (CXL, PMEM)", node
        )
        cpus = _gauge("numatui_node_cpus", "Number of CPUs of the node", node)
        tier = _gauge(
            "numatui_node_memory_tier", "Memory tier of the node (smaller is faster)", node
        )
        distance = _gauge(
            "numatui_node_distance", "ACPI SLIT distance from node to node", ["node", "to"]
        )
        numastat = {
            name: _counter(f"numatui_node_{name}", doc, node)
            for name, doc in (
                ("numa_hit", "Pages allocated on this node as intended (nodeN/numastat)"),
                ("numa_miss", "Pages allocated here although another node was preferred"),
                ("numa_foreign", "Pages meant for this node but allocated on another"),
                ("interleave_hit", "Interleaved pages allocated here as intended"),
                ("local_node", "Pages allocated here by a process running on this node"),
                ("other_node", "Pages allocated here by a process running on another node"),
            )
        }
        for n in topo.nodes:
            nid = str(n.id)
            total.add_metric([nid], n.mem_total)
            free.add_metric([nid], n.mem_free)
            used.add_metric([nid], n.mem_used)
            kind.add_metric([nid, "anon"], n.anon_bytes)
            kind.add_metric([nid, "file"], n.file_bytes)
            kind.add_metric([nid, "shmem"], n.shmem_bytes)
            for pool in n.hugepages:
                size = str(pool.size_bytes)
                huge_total.add_metric([nid, size], pool.total * pool.size_bytes)
                huge_free.add_metric([nid, size], pool.free * pool.size_bytes)
                huge_surplus.add_metric([nid, size], pool.surplus * pool.size_bytes)
            online.add_metric([nid], 1 if n.online else 0)
            has_cpu.add_metric([nid], 1 if n.has_cpu else 0)
            has_mem.add_metric([nid], 1 if n.has_memory else 0)
            mem_only.add_metric([nid], 1 if n.memory_only else 0)
            cpus.add_metric([nid], len(n.cpus))
            if n.tier is not None:
                tier.add_metric([nid], n.tier)
            for to, d in sorted(n.distances.items()):
                distance.add_metric([nid, str(to)], d)
            if n.counters is not None:
                for name, family in numastat.items():
                    family.add_metric([nid], getattr(n.counters, name))
        out += [total, free, used, kind, huge_total, huge_free, huge_surplus]
        out += [online, has_cpu, has_mem, mem_only, cpus, tier, distance, *numastat.values()]
        return out

    def _counter_families(self, topo: Topology) -> list[Metric]:
        out: list[Metric] = []
        try:
            machine = vmstat.machine_counters(self.source.proc_root)
            per_node = vmstat.node_counters([n.id for n in topo.nodes], self.source.sys_root)
        except Exception:
            self._errors["counters"] += 1
            return out
        for name, value in (machine or {}).items():
            family = _counter(f"numatui_vmstat_{name}", f"/proc/vmstat {name} (pages or events)")
            family.add_metric([], value)
            out.append(family)
        names = sorted({name for values in per_node.values() for name in values})
        for name in names:
            family = _counter(
                f"numatui_node_vmstat_{name}", f"nodeN/vmstat {name}, per node (pages)", ["node"]
            )
            for nid, values in sorted(per_node.items()):
                if name in values:
                    family.add_metric([str(nid)], values[name])
            out.append(family)
        return out

    def _process_families(self, topo: Topology, scan: ProcessScan) -> list[Metric]:
        user_procs = [p for p in scan.processes if not p.is_kernel_thread]
        chosen, left_out = select_processes(scan, self.limits)
        node_ids = sorted(topo.with_memory) or [n.id for n in topo.nodes]
        labels = list(PROCESS_LABELS)
        resident = _gauge(
            "numatui_process_resident_bytes",
            "Bytes of the process's pages present on the node (numa_maps)",
            [*labels, "node"],
        )
        locality = _gauge(
            "numatui_process_locality_ratio",
            "Share of the process's memory on the nodes its threads run on (0-1)",
            labels,
        )
        cgroups: dict[str, tuple[str, str, str]] = {}  # raw path -> GROUP_LABELS values
        for p in chosen:
            raw = process_cgroup(p.pid, self.source.proc_root) or ""
            if raw and raw not in cgroups:
                cgroups[raw] = self._group_labels(raw)
            cgroup, group, _ = cgroups.get(raw, ("", "", ""))
            values = [
                str(p.pid),
                label_value(p.name, COMM_LIMIT),
                label_value(p.user, USER_LIMIT),
                cgroup,
                group,
            ]
            for nid in node_ids:
                resident.add_metric([*values, str(nid)], p.node_bytes.get(nid, 0))
            if p.locality is not None:
                locality.add_metric(values, p.locality)
        series_per_process = len(node_ids) + 1
        scanned = _gauge(
            "numatui_processes_scanned", "User processes seen by the last scan (kernel threads out)"
        )
        scanned.add_metric([], len(user_procs))
        unreadable = _gauge(
            "numatui_processes_unreadable",
            "Processes whose memory this exporter may not read (other users, hidepid): not shown",
        )
        unreadable.add_metric([], scan.unreadable)
        vanished = _gauge(
            "numatui_processes_vanished", "Processes that exited while the last scan read them"
        )
        vanished.add_metric([], scan.vanished)
        reused = _gauge(
            "numatui_scan_reused_processes",
            "Processes the last scan did not re-read because nothing about them changed",
        )
        reused.add_metric([], scan.skipped_unchanged)
        exported = _gauge(
            "numatui_processes_exported", "Processes with their own series in this scrape"
        )
        exported.add_metric([], len(chosen))
        dropped = _gauge(
            "numatui_process_series_dropped",
            "Per-process series left out by --min-bytes and --top in this scrape",
        )
        dropped.add_metric([], left_out * series_per_process)
        scan_time = _gauge("numatui_scan_duration_seconds", "Time the last process scan took")
        scan_time.add_metric([], scan.duration_s)
        out: list[Metric] = [resident, locality, scanned, unreadable, vanished, reused]
        out += [exported, dropped, scan_time]
        out.append(self._cgroup_family(cgroups))
        return out

    def _group_labels(self, raw: str) -> tuple[str, str, str]:
        """The cgroup path, what it is called in the groups view, and its kind."""
        name = describe(raw, self._container_names)
        return label_value(raw, CGROUP_LIMIT), label_value(name.label, CGROUP_LIMIT), name.kind

    def _cgroup_family(self, cgroups: dict[str, tuple[str, str, str]]) -> Metric:
        family = _gauge(
            "numatui_cgroup_memory_bytes",
            "Bytes per node by kind of the exported processes' cgroups (memory.numa_stat)",
            [*GROUP_LABELS, "node", "kind"],
        )
        for raw, labels in sorted(cgroups.items()):
            try:
                stat = cgroup_numa_stat(raw, self.cgroup_root)
            except Exception:
                self._errors["cgroups"] += 1
                continue
            for kind, per_node in sorted((stat or {}).items()):
                for nid, value in sorted(per_node.items()):
                    family.add_metric([*labels, str(nid), kind], value)
        return family

    def _audit_families(self) -> list[Metric]:
        totals = self._audit_totals()
        if totals is None:
            return []
        attempts = _counter(
            "numatui_migrations",
            "Migrations attempted, by outcome (the audit log of the exporter's user)",
            ["outcome"],
        )
        for outcome in [*(outcome_label(o) for o in MigrationOutcome), OTHER_OUTCOME]:
            attempts.add_metric([outcome], totals.by_outcome.get(outcome, 0))
        moved = _counter("numatui_migrated_bytes", "Bytes moved by the migrations in the audit log")
        moved.add_metric([], totals.bytes_moved)
        return [attempts, moved]
