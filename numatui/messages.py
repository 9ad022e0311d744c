"""Messages that carry results from thread workers to the screens.

Each is a small frozen payload: workers build them from the data source's
immutable snapshots and `post_message` them (thread-safe); only handlers on the
UI thread touch widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from numatui.model.memory import NumaMaps, ProcessScan
from numatui.model.migration import MigrationPlan, MigrationProgress, MigrationResult
from numatui.model.topology import Topology
from numatui.source import Privileges


@dataclass
class Refreshed(Message):
    """One refresh cycle finished: the topology and process scan read together."""

    topology: Topology
    scan: ProcessScan
    privileges: Privileges


@dataclass
class TopologyRead(Message):
    """The first refresh read the nodes; its process scan is still running."""

    topology: Topology
    privileges: Privileges


@dataclass
class SourceFailed(Message):
    """The data source raised; `what` names the call, `message` is for the user."""

    what: str
    message: str


@dataclass
class NumaMapsFetched(Message):
    """A process's mappings for the detail screen."""

    pid: int
    maps: NumaMaps


@dataclass
class PlanPreviewed(Message):
    """`source.plan` accepted the choice; `plan` is what the kernel would do."""

    plan: MigrationPlan


@dataclass
class PlanRefused(Message):
    """`source.plan` refused the choice; `reason` says why (nothing changed)."""

    from_nodes: frozenset[int]
    to_nodes: frozenset[int]
    reason: str


@dataclass
class MigrationSampled(Message):
    """A progress sample taken while the kernel moves pages."""

    progress: MigrationProgress


@dataclass
class MigrationFinished(Message):
    """The migrate call returned; `result` says what moved and what did not."""

    result: MigrationResult


@dataclass
class MigrationCrashed(Message):
    """The migrate call raised instead of returning a result."""

    message: str
