"""Fixtures for tests that run INSIDE a multi-node guest kernel (tests/kernel/harness.py).

Mark every test `two_nodes` and/or `four_nodes`, or `two_nodes_quiet` (a timing test:
a fresh 2-node guest of its own, tests/kernel/harness.py). Outside a guest (a single-node machine
without NUMATUI_IN_GUEST) every test here skips: the host reaches them through
tests/kernel/test_guests.py. Fixtures: `nodes` (online node ids), `memory_nodes`,
`cpu_nodes`, `no_numa_balancing` (autouse), `workload` (factory of tests.tooling.workload children),
`vma_bytes_per_node` (per-node bytes of one mapping, from /proc/PID/numa_maps).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from quiet import SYS_READ, thp_disabled_for_children, wait_until_blocked_in

from numatui.kernel.nodemask import parse_kernel_list
from tests.tooling.workload import Workload

NODE_SYSFS = Path("/sys/devices/system/node")
NUMA_BALANCING = Path("/proc/sys/kernel/numa_balancing")
# Fewest online nodes each topology marker needs.
MIN_NODES = {"two_nodes": 2, "two_nodes_quiet": 2, "four_nodes": 4}


def _node_list(name: str) -> list[int]:
    try:
        return sorted(parse_kernel_list((NODE_SYSFS / name).read_text()))
    except OSError:
        return [0]  # no NUMA support compiled in: one implicit node


def in_guest() -> bool:
    return bool(os.environ.get("NUMATUI_IN_GUEST")) or len(_node_list("online")) > 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    online = len(_node_list("online"))
    for item in items:
        if not in_guest():
            item.add_marker(
                pytest.mark.skip(
                    reason="needs a multi-node guest kernel: run `python3 -m pytest tests/kernel` "
                    "on the host (it boots QEMU guests), not tests/kernel/guest directly"
                )
            )
            continue
        needed = [MIN_NODES[m.name] for m in item.iter_markers() if m.name in MIN_NODES]
        if needed and online < min(needed):
            item.add_marker(
                pytest.mark.skip(reason=f"needs {min(needed)} NUMA nodes, {online} online")
            )


# Line-per-event progress for the host: survives a guest crash that loses junit.xml.
_PROGRESS = os.environ.get("NUMATUI_GUEST_RESULTS")
# Every test's limit (the harness passes it to pytest-timeout too) and how long after it the
# stack of every thread is written to stacks.txt beside the progress log: the host shows it
# if the test could not be stopped (pytest-timeout's SIGALRM only reaches Python code).
_TEST_TIMEOUT = float(os.environ.get("NUMATUI_TEST_TIMEOUT", "0") or 0)
_STACKS_GRACE = float(os.environ.get("NUMATUI_STACKS_GRACE", "30"))


def _limit(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return _TEST_TIMEOUT


def _record(payload: dict[str, Any]) -> None:
    if not _PROGRESS:
        return
    with open(_PROGRESS, "a") as out:
        out.write(json.dumps(payload) + "\n")
        out.flush()
        os.fsync(out.fileno())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Start record (with the test's limit) and, past that limit, every thread's stack."""
    limit = _limit(item)
    _record({"event": "start", "nodeid": item.nodeid, "limit": limit})
    stacks = None
    if _PROGRESS and limit > 0:
        # Emptied per test: it only ever holds the dump of the test that overran.
        stacks = open(Path(_PROGRESS).with_name("stacks.txt"), "w")  # noqa: SIM115
        stacks.write(f"--- {item.nodeid} (limit {limit:g} s), if it ran past it:\n")
        stacks.flush()
        faulthandler.dump_traceback_later(limit + _STACKS_GRACE, file=stacks)
    try:
        return (yield)
    finally:
        if stacks is not None:
            faulthandler.cancel_dump_traceback_later()
            stacks.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        text = report.longreprtext
        if report.skipped and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2])  # (path, line, "Skipped: reason")
        _record(
            {
                "event": "report",
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": report.outcome,
                "wasxfail": hasattr(report, "wasxfail"),
                "longrepr": text,
            }
        )


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _record({"event": "finish", "nodeid": nodeid})


@pytest.fixture
def nodes() -> list[int]:
    """Online node ids."""
    return _node_list("online")


@pytest.fixture
def memory_nodes() -> list[int]:
    """Nodes with memory (every node in our topologies; CXL-like nodes have no CPUs)."""
    return _node_list("has_memory")


@pytest.fixture
def cpu_nodes() -> list[int]:
    return _node_list("has_cpu")


@pytest.fixture(autouse=True)
def no_numa_balancing() -> Iterator[None]:
    """Automatic NUMA balancing moves default-policy pages on its own; exact counts need it off."""
    try:
        before = NUMA_BALANCING.read_text()
        NUMA_BALANCING.write_text("0\n")
    except OSError:
        yield  # no balancing in this kernel, or not root: nothing to turn off
        return
    try:
        yield
    finally:
        NUMA_BALANCING.write_text(before)


WorkloadFactory = Callable[..., Workload]


@pytest.fixture
def workload() -> Iterator[WorkloadFactory]:
    """`workload(kind="private", size_mib=64, node=None, cpu=None, file_dir=None, user=None)`
    starts a tests.tooling.workload child; all are stopped when the test ends.

    Every kind but "thp" runs with THP disabled: khugepaged would otherwise collapse the
    interpreter's own pages into huge pages, on whichever node, at any time, moving and
    adding pages behind the test's back (seen: 1.2 MiB moved off node 0 while a refused
    migration "moved nothing"). And each is handed over asleep on its stdin: it replies
    before it gets there, and faults pages in on the way.
    """
    started: list[Workload] = []

    def start(**kwargs: Any) -> Workload:
        with (
            contextlib.nullcontext() if kwargs.get("kind") == "thp" else thp_disabled_for_children()
        ):
            work = Workload.start(**kwargs)
        started.append(work)
        wait_until_blocked_in(work.pid, SYS_READ, fd=0)
        return work

    yield start
    for work in started:
        work.stop()


_NODE_FIELD = re.compile(r"N(\d+)=(\d+)")


def numa_maps_line(pid: int, start: int) -> str:
    """The /proc/PID/numa_maps line of the mapping that starts at `start`."""
    prefix = f"{start:x} "
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        if line.startswith(prefix):
            return line
    raise LookupError(f"pid {pid} has no mapping starting at {start:#x}")


def bytes_per_node(line: str) -> dict[int, int]:
    """Per-node bytes of one numa_maps line: N<node>=<pages> x kernelpagesize_kB."""
    fields = line.split()
    sizes = [int(f.split("=")[1]) for f in fields if f.startswith("kernelpagesize_kB=")]
    if not sizes:
        return {}  # no page of this mapping is present
    page_kb = sizes[0]
    out: dict[int, int] = {}
    for f in fields:
        match = _NODE_FIELD.fullmatch(f)
        if match:
            out[int(match[1])] = int(match[2]) * page_kb * 1024
    return out


@pytest.fixture
def vma_bytes_per_node() -> Callable[[int, int], dict[int, int]]:
    """`vma_bytes_per_node(pid, start)` -> {node: bytes present there} for one mapping."""
    return lambda pid, start: bytes_per_node(numa_maps_line(pid, start))
