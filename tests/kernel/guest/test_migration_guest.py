"""Every migration claim numatui makes, proven against a real multi-node kernel.

Each test moves a real workload's memory with numatui's job and then checks the
kernel's own accounts (/proc/PID/numa_maps, numastat, move_pages queries), never
numatui's word alone.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import mmap
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from other_user import NOBODY, run_as

from numatui.kernel import syscalls
from numatui.kernel.migration import MigrationJob, validate
from numatui.kernel.nodemask import NodeMask
from numatui.kernel.plan import (
    effective_targets,
    final_placement,
    kernel_pairs,
    predict_node_bytes,
)
from numatui.kernel.privileges import read_privileges
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.model.migration import (
    MigrationOutcome,
    MigrationPlan,
    MigrationProgress,
    MigrationResult,
)
from tests.tooling.workload import Workload

pytestmark = [pytest.mark.guest]

MIB = 1024 * 1024
PAGE = mmap.PAGESIZE
HUGE_2M = 2 * MIB
WorkloadFactory = Callable[..., Workload]
_NODE_FIELD = re.compile(r"N(\d+)=(\d+)")


# ---------------------------------------------------------------- the kernel's own accounts


def kernel_node_bytes(pid: int) -> tuple[dict[int, int], int]:
    """Per-node bytes of a whole process straight from numa_maps, and its mapping count."""
    out: dict[int, int] = {}
    lines = Path(f"/proc/{pid}/numa_maps").read_text().splitlines()
    for line in lines:
        page_kb = next(
            (int(f.split("=")[1]) for f in line.split() if f.startswith("kernelpagesize_kB=")), 4
        )
        for node, pages in _NODE_FIELD.findall(line):
            out[int(node)] = out.get(int(node), 0) + int(pages) * page_kb * 1024
    return out, len(lines)


def numastat_mib(pid: int) -> dict[int, float]:
    """numastat -p PID's Total row: MiB per node."""
    text = subprocess.run(
        ["numastat", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    header = next(line for line in text.splitlines() if "Node " in line)
    nodes = [int(n) for n in re.findall(r"Node (\d+)", header)]
    total = next(line for line in text.splitlines() if line.startswith("Total"))
    values = [float(v) for v in total.split()[1:]]
    return dict(zip(nodes, values, strict=False))


def assert_counts_agree(result: MigrationResult, pid: int) -> None:
    """numatui's after-counts = numa_maps = numastat, within one page per mapping."""
    kernel, mappings = kernel_node_bytes(pid)
    slack = mappings * PAGE
    for node in set(kernel) | set(result.after):
        assert abs(result.after.get(node, 0) - kernel.get(node, 0)) <= slack, (
            node,
            dict(result.after),
            kernel,
        )
    for node, mib in numastat_mib(pid).items():
        assert abs(mib * MIB - kernel.get(node, 0)) <= slack + 0.01 * MIB, (node, mib, kernel)


def page_nodes(pid: int, start: int, size: int) -> list[int]:
    """Where each 4 KiB page of [start, start+size) is, asked of the kernel (move_pages query)."""
    return syscalls.move_pages(pid, [start + i * PAGE for i in range(size // PAGE)])


def plan_for(
    pid: int, from_nodes: set[int], to_nodes: set[int], *, stoppable: bool = False
) -> MigrationPlan:
    topology = TopologyReader().read()
    process = ProcessScanner().read_process(pid)
    return validate(
        pid, from_nodes, to_nodes, topology, process, read_privileges(), stoppable=stoppable
    )


def job_for(plan: MigrationPlan, **options: Any) -> MigrationJob:
    """The job as the live source builds it: handed a scanner, privileges, topology reader."""
    return MigrationJob(
        plan,
        scanner=ProcessScanner(),
        privileges=read_privileges(),
        topology_reader=TopologyReader(),
        **options,
    )


def run_migration(
    plan: MigrationPlan,
    on_progress: Callable[[MigrationProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> MigrationResult:
    return job_for(plan).run(on_progress, cancel)


@contextlib.contextmanager
def huge_pages_on(nodes: dict[int, int]) -> Iterator[dict[int, int]]:
    """Reserve 2 MiB huge pages per node; yields what the kernel actually reserved."""
    paths = {
        n: Path(f"/sys/devices/system/node/node{n}/hugepages/hugepages-2048kB/nr_hugepages")
        for n in nodes
    }
    before = {n: p.read_text() for n, p in paths.items()}
    try:
        for n, count in nodes.items():
            paths[n].write_text(f"{count}\n")
        yield {n: int(p.read_text()) for n, p in paths.items()}
    finally:
        for n, p in paths.items():
            p.write_text(before[n])


def node_free(node: int) -> int:
    text = Path(f"/sys/devices/system/node/node{node}/meminfo").read_text()
    kb = re.search(r"MemFree:\s+(\d+) kB", text)
    assert kb is not None
    return int(kb[1]) * 1024


# ---------------------------------------------------------------- one node to another


@pytest.mark.two_nodes
@pytest.mark.parametrize("chunked", [False, True], ids=["migrate_pages", "stoppable"])
@pytest.mark.parametrize("kind", ["private", "base", "shared", "thp", "hugetlb"])
def test_each_kind_moves_from_node_0_to_1(
    kind: str,
    chunked: bool,
    workload: WorkloadFactory,
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    size_mib = 32
    reserve = {0: size_mib // 2 + 2, 1: size_mib // 2 + 2} if kind == "hugetlb" else {}
    with huge_pages_on(reserve):
        work = workload(kind=kind, size_mib=size_mib, node=0, cpu=0)
        start = work.info["start"]
        assert vma_bytes_per_node(work.pid, start) == {0: size_mib * MIB}
        plan = plan_for(work.pid, {0}, {1}, stoppable=chunked)
        assert plan.pairs == ((0, 1),)

        # Stoppable: move_pages in chunks, which must land where migrate_pages would.
        result = run_migration(plan)

        assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
        # Chunks give no count of pages left (numa_maps says); migrate_pages gives 0.
        assert result.pages_not_moved == (None if chunked else 0)
        assert vma_bytes_per_node(work.pid, start) == {1: size_mib * MIB}
        assert result.before.get(0, 0) >= size_mib * MIB
        assert result.after.get(0, 0) <= 32 * PAGE
        assert_counts_agree(result, work.pid)
        assert result.bytes_moved >= size_mib * MIB
        if kind == "thp":
            assert work.anon_huge_bytes() > 0, "the huge pages were split, not moved whole"
        assert work.checksum() == work.info["checksum"]


# ---------------------------------------------------------------- many to many


def spread_over(pid: int, start: int, size: int, nodes: list[int]) -> None:
    """Spread the region over `nodes` round-robin by aligned 2 MiB block (move_pages).

    Whole aligned 2 MiB blocks, not single pages: with THP on, the region may be backed
    by huge pages, and moving one base page of a huge page moves all of it.
    """
    addresses = [start + i * PAGE for i in range(size // PAGE)]
    targets = [nodes[a // HUGE_2M % len(nodes)] for a in addresses]
    status = syscalls.move_pages(pid, addresses, targets, syscalls.MPOL_MF_MOVE_ALL)
    # The other base pages of a huge page already queued report -EBUSY: it moves whole.
    assert all(s in (t, -errno.EBUSY) for s, t in zip(status, targets, strict=True))
    assert page_nodes(pid, start, size) == targets


@pytest.mark.four_nodes
@pytest.mark.parametrize("chunked", [False, True], ids=["migrate_pages", "stoppable"])
@pytest.mark.parametrize(
    ("from_nodes", "to_nodes"),
    [({0, 1}, {3, 4}), ({0, 1, 3, 4}, {1, 4}), ({0, 3}, {1})],
)
def test_many_to_many_does_what_the_preview_said(
    from_nodes: set[int], to_nodes: set[int], chunked: bool, workload: WorkloadFactory
) -> None:
    size = 32 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    start = work.info["start"]
    # Linux numbers nodes with CPUs first: the guest's memory-less node (a CPU, no
    # memory) is node 2, and the two memory-only nodes are 3 and 4.
    memory = sorted(TopologyReader().read().with_memory)
    assert memory == [0, 1, 3, 4]
    spread_over(work.pid, start, size, memory)
    before_pages = page_nodes(work.pid, start, size)
    assert sorted(set(before_pages)) == memory

    plan = plan_for(work.pid, from_nodes, to_nodes, stoppable=chunked)
    assert plan.pairs == kernel_pairs(from_nodes, effective_targets(to_nodes, set(memory)))
    result = run_migration(plan)

    # Page by page: every page went where the previewed pairs send its node.
    where = final_placement(plan.pairs)
    after_pages = page_nodes(work.pid, start, size)
    wrong = [
        (i, b, a)
        for i, (b, a) in enumerate(zip(before_pages, after_pages, strict=True))
        if where.get(b, b) != a
    ]
    assert not wrong, f"{len(wrong)} pages elsewhere than previewed, e.g. {wrong[:5]}"
    assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    predicted = predict_node_bytes(result.before, plan.pairs)
    for node in memory:
        assert abs(result.after.get(node, 0) - predicted.get(node, 0)) <= 32 * PAGE, (
            node,
            dict(result.after),
            predicted,
        )
    assert_counts_agree(result, work.pid)
    assert work.checksum() == work.info["checksum"]


# ---------------------------------------------------------------- partial migrations


@pytest.mark.two_nodes
def test_full_target_is_reported_as_partly_moved(
    workload: WorkloadFactory,
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    size = 128 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    # Fill node 1 with huge pages (an instant hog: no process has to write them) so only
    # about 48 MiB stays free there.
    hog_pages = max(0, node_free(1) - 48 * MIB) // HUGE_2M
    with huge_pages_on({1: hog_pages}) as reserved:
        assert reserved[1] > 0
        free_before = node_free(1)
        assert free_before < size
        plan = plan_for(work.pid, {0}, {1})
        assert any("node 1 has" in w for w in (f.message for f in plan.warnings)), plan.warnings
        result = run_migration(plan)

        region = vma_bytes_per_node(work.pid, work.info["start"])
        assert result.outcome is MigrationOutcome.PARTLY_MOVED, result
        assert 0 < region.get(1, 0) < size and region.get(0, 0) > 0, region
        assert region.get(0, 0) + region.get(1, 0) == size
        assert_counts_agree(result, work.pid)
        # What left node 0 is what arrived in the region on node 1 (the rest of the process
        # is small); more than was free can fit, as the kernel reclaims page cache there.
        assert result.bytes_moved >= region[1] - 64 * PAGE
        text = " ".join(result.explanations)
        assert "node 1 is full" in text or "ENOMEM" in text, result.explanations
        assert work.checksum() == work.info["checksum"]


def result_summary(result: MigrationResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "before": dict(result.before),
        "after": dict(result.after),
        "pages_not_moved": result.pages_not_moved,
        "explanations": list(result.explanations),
        "error": result.error.errno_name if result.error else None,
        "shared_bytes_staying": result.plan.shared_bytes_staying,
        "bytes_moved": result.bytes_moved,
    }


def migrate_as_nobody(pid: int) -> dict[str, Any]:
    """numatui's move of `pid` from node 0 to 1 by a user without CAP_SYS_NICE (run_as)."""
    return result_summary(run_migration(plan_for(pid, {0}, {1})))


@pytest.mark.two_nodes
def test_shared_pages_stay_for_a_non_root_user_and_that_is_reported(
    workload: WorkloadFactory,
    vma_bytes_per_node: Callable[[int, int], dict[int, int]],
) -> None:
    size = 16 * MIB
    work = workload(kind="file", size_mib=size // MIB, node=0, cpu=0, user=NOBODY)
    start = work.info["start"]
    # A second process (this one) maps the same file pages: now each is mapped twice.
    with (
        open(work.info["path"], "rb") as backing,
        mmap.mmap(backing.fileno(), size, prot=mmap.PROT_READ) as second,
    ):
        touched = sum(second[i] for i in range(0, size, PAGE))
        assert touched >= 0
        assert vma_bytes_per_node(work.pid, start) == {0: size}
        seen = run_as(NOBODY, migrate_as_nobody, pid=work.pid)
        region = vma_bytes_per_node(work.pid, start)
        assert region == {0: size}, "shared pages moved without CAP_SYS_NICE"
        assert seen["outcome"] == MigrationOutcome.PARTLY_MOVED.value, seen
        assert seen["pages_not_moved"] == 0  # the kernel's silence about skipped pages
        assert seen["shared_bytes_staying"] >= size
        assert any("CAP_SYS_NICE" in e for e in seen["explanations"]), seen
        kernel, mappings = kernel_node_bytes(work.pid)
        assert abs(seen["after"].get(0, 0) - kernel.get(0, 0)) <= mappings * PAGE
        assert seen["after"].get(0, 0) >= size
        assert seen["bytes_moved"] > 0  # its private pages did move

        # Root (CAP_SYS_NICE) moves the same shared pages.
        result = run_migration(plan_for(work.pid, {0}, {1}))
        assert vma_bytes_per_node(work.pid, start) == {1: size}
        assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    assert work.checksum() == work.info["checksum"]


# ---------------------------------------------------------------- progress and the GIL


@pytest.mark.two_nodes
def test_progress_samples_move_toward_the_target_and_end_at_the_result(
    workload: WorkloadFactory,
) -> None:
    # Large enough, and sampled densely enough, that even an idle host's guest (128 MiB
    # moved in 0.23 s) is caught several times half way.
    size = 384 * MIB
    work = workload(kind="private", size_mib=size // MIB, node=0, cpu=0)
    plan = plan_for(work.pid, {0}, {1})
    samples: list[MigrationProgress] = []
    job = job_for(plan, sample_interval_s=0.02, sample_cost_ratio=1.0)
    result = job.run(on_progress=samples.append)

    assert result.outcome is MigrationOutcome.ALL_MOVED, result.explanations
    assert samples == list(result.samples)
    assert len(samples) >= 3, f"only {len(samples)} samples in {result.elapsed_s:.2f} s"
    assert samples[-1].node_bytes == result.after
    slack = 16 * PAGE
    for earlier, later in itertools.pairwise(samples):
        assert later.elapsed_s >= earlier.elapsed_s
        assert later.node_bytes.get(0, 0) <= earlier.node_bytes.get(0, 0) + slack
        assert later.node_bytes.get(1, 0) >= earlier.node_bytes.get(1, 0) - slack
    middle = [s for s in samples[:-1] if s.node_bytes.get(1, 0) > result.before.get(1, 0)]
    assert middle, "no sample caught the migration half way"


@pytest.mark.two_nodes
def test_migrate_pages_releases_the_gil(workload: WorkloadFactory) -> None:
    # Large enough that the call lasts well over the ticker's period even when the
    # emulated machine is fast (128 MiB once took 0.195 s).
    work = workload(kind="private", size_mib=256, node=0, cpu=0)
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.05)
    began = time.monotonic()
    not_moved = syscalls.migrate_pages(work.pid, NodeMask([0]), NodeMask([1]))
    ended = time.monotonic()
    stop.set()
    thread.join()

    assert not_moved == 0
    duration = ended - began
    during = [t for t in ticks if began <= t <= ended]
    assert duration > 0.1, f"the call took only {duration:.3f} s: too short to tell"
    # With the GIL held, the ticker could not run at all during the call.
    gaps = [b - a for a, b in zip([began, *during], [*during, ended], strict=True)]
    assert len(during) >= duration / 0.05, (len(during), duration)
    assert max(gaps) < duration / 2, (max(gaps), duration)
