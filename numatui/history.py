"""Node usage over time: a bounded series of topology samples and their rates.

Pure Python (no Textual) so the nodes screen's charts are unit-tested without an
app. Counters in `/proc/vmstat` and `nodeN/numastat` are cumulative: a rate is
the delta between two consecutive samples divided by the time between them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from numatui.model.topology import Topology


@dataclass(frozen=True)
class Rates:
    """Per-second rates between two samples (pages/s for the kernel counters)."""

    numa_hit: float
    numa_miss: float
    pgmigrate_success: float
    pgmigrate_fail: float


class NodeHistory:
    """The last `capacity` topology samples, oldest first."""

    def __init__(self, capacity: int = 120) -> None:
        self.capacity = capacity
        self._samples: deque[Topology] = deque(maxlen=capacity)
        self._rates: deque[Rates] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, topology: Topology) -> None:
        if self._samples:
            previous = self._samples[-1]
            elapsed = topology.taken_at - previous.taken_at
            if elapsed <= 0:
                # Same moment read twice (or a clock step back): no rate to learn.
                self._samples[-1] = topology
                return
            self._rates.append(_rates_between(previous, topology, elapsed))
        self._samples.append(topology)

    @property
    def latest(self) -> Topology | None:
        return self._samples[-1] if self._samples else None

    def used_series(self, node_id: int) -> list[int]:
        """Used bytes of one node per sample (0 where the node was absent)."""
        out: list[int] = []
        for sample in self._samples:
            node = sample.node(node_id)
            out.append(node.mem_used if node is not None else 0)
        return out

    def rate_series(self, name: str) -> list[float]:
        """One `Rates` field over time: `numa_hit`, `numa_miss`, `pgmigrate_success`..."""
        return [float(getattr(r, name)) for r in self._rates]

    def node_rate_series(self, node_id: int, name: str) -> list[float]:
        """A per-node numastat counter (`numa_hit`, `numa_miss`...) as a rate over time."""
        out: list[float] = []
        for before, after in pairwise(self._samples):
            elapsed = after.taken_at - before.taken_at
            a, b = before.node(node_id), after.node(node_id)
            if a is None or b is None or a.counters is None or b.counters is None or elapsed <= 0:
                out.append(0.0)
                continue
            delta = getattr(b.counters, name) - getattr(a.counters, name)
            out.append(max(0.0, delta / elapsed))
        return out

    @property
    def latest_rates(self) -> Rates | None:
        return self._rates[-1] if self._rates else None


def _rates_between(before: Topology, after: Topology, elapsed: float) -> Rates:
    def rate(a: int, b: int) -> float:
        # A counter that went down was reset (or wrapped): report no rate, not a negative one.
        return max(0.0, (b - a) / elapsed)

    hit_before, miss_before = _numastat_totals(before)
    hit_after, miss_after = _numastat_totals(after)
    return Rates(
        numa_hit=rate(hit_before, hit_after),
        numa_miss=rate(miss_before, miss_after),
        pgmigrate_success=rate(before.vm.pgmigrate_success, after.vm.pgmigrate_success),
        pgmigrate_fail=rate(before.vm.pgmigrate_fail, after.vm.pgmigrate_fail),
    )


def _numastat_totals(topology: Topology) -> tuple[int, int]:
    """numa_hit/miss summed over nodes; falls back to /proc/vmstat when nodes lack numastat."""
    counters = [n.counters for n in topology.nodes if n.counters is not None]
    if not counters:
        return topology.vm.numa_hit, topology.vm.numa_miss
    return sum(c.numa_hit for c in counters), sum(c.numa_miss for c in counters)
