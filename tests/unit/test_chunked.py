"""Which pages the chunked mover asks about and where it sends them (the kernel's side is
proven in the guest: tests/kernel/guest/test_chunked_guest.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from numatui.kernel.chunked import (
    FIRST_CHUNK_PAGES,
    MAX_CHUNK_PAGES,
    ChunkPacer,
    move_in_chunks,
    parse_maps_ranges,
    plan_walk,
)
from numatui.kernel.numa_maps import parse_numa_maps
from numatui.model import MigrationOutcome, MigrationPlan, Pacing
from numatui.source import Privileges

PAGE = 4096
MAPS = """\
00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon
7f0000000000-7f0001000000 rw-p 00000000 00:00 0
7f0002000000-7f0002400000 rw-p 00000000 00:00 0
7f0003000000-7f0003004000 rw-p 00000000 00:00 0
garbage line
"""
NUMA_MAPS = """\
00400000 default file=/usr/bin/dbus-daemon mapped=8 N0=8 kernelpagesize_kB=4
7f0000000000 default anon=4096 dirty=4096 N0=3000 N1=1096 kernelpagesize_kB=4
7f0002000000 default anon=1024 dirty=1024 N0=512 N2=512 kernelpagesize_kB=4
7f0003000000 default anon=4 dirty=4 N1=4 kernelpagesize_kB=4
"""


class Recorder:
    """Stands in for move_pages(2): answers queries from a page->node map, records moves."""

    def __init__(self, nodes: dict[int, int]) -> None:
        self.nodes = nodes
        self.queries = 0
        self.moves: list[tuple[list[int], list[int], int]] = []

    def __call__(
        self, pid: int, addresses: Sequence[int], targets: Sequence[int] | None, flags: int
    ) -> list[int]:
        if targets is None:
            self.queries += 1
            return [self.nodes.get(a, -2) for a in addresses]
        self.moves.append((list(addresses), list(targets), flags))
        return list(targets)


def sent(recorder: Recorder) -> dict[int, int]:
    """Each moved address and the node it was sent to."""
    out: dict[int, int] = {}
    for addresses, targets, _ in recorder.moves:
        out.update(zip(addresses, targets, strict=True))
    return out


def test_maps_ranges() -> None:
    ranges = parse_maps_ranges(MAPS)
    assert ranges[0x7F0000000000] == 0x7F0001000000 and len(ranges) == 4


@given(st.text())
def test_maps_parser_never_raises(text: str) -> None:
    for start, end in parse_maps_ranges(text).items():
        assert isinstance(start, int) and isinstance(end, int)


def test_single_target_sends_without_asking_where_pages_may_only_be_on_sources() -> None:
    maps = parse_numa_maps(NUMA_MAPS)
    recorder = Recorder({0x7F0002000000 + i * PAGE: (0 if i % 2 else 2) for i in range(1024)})
    stopped = move_in_chunks(42, plan_walk([(0, 1)], maps, MAPS), flags=2, move_pages=recorder)
    assert stopped is False
    moved = sent(recorder)
    # The file mapping and the 4096-page anon mapping hold only nodes 0 and 1: every page
    # goes to 1 without a query. The third mapping also has pages on node 2, which must
    # stay: it is asked about, and only its node-0 pages move. The last has none on 0.
    assert all(moved[0x400000 + i * PAGE] == 1 for i in range(0x52))
    assert all(moved[0x7F0000000000 + i * PAGE] == 1 for i in range(4096))
    third = [a for a in moved if 0x7F0002000000 <= a < 0x7F0002400000]
    assert len(third) == 512 and all(((a - 0x7F0002000000) // PAGE) % 2 for a in third)
    assert not any(a >= 0x7F0003000000 for a in moved)
    assert recorder.queries == 1
    assert all(len(addresses) <= MAX_CHUNK_PAGES for addresses, _, _ in recorder.moves)


def test_many_to_many_sends_each_page_where_the_kernel_pairs_would() -> None:
    maps = parse_numa_maps(NUMA_MAPS)
    start = 0x7F0000000000
    nodes = {start + i * PAGE: (0 if i < 3000 else 1) for i in range(4096)}
    recorder = Recorder(nodes)
    # Pairs 0->1 then 1->2: memory on 0 goes to 1 and then on to 2 (final_placement).
    move_in_chunks(42, plan_walk([(0, 1), (1, 2)], maps, MAPS), flags=4, move_pages=recorder)
    moved = sent(recorder)
    assert {moved[a] for a in nodes} == {2}
    assert all(flags == 4 for _, _, flags in recorder.moves)


def test_cancel_stops_between_chunks() -> None:
    maps = parse_numa_maps(NUMA_MAPS)
    cancel = threading.Event()

    class StopAfterFirst(Recorder):
        def __call__(
            self, pid: int, addresses: Sequence[int], targets: Sequence[int] | None, flags: int
        ) -> list[int]:
            out = super().__call__(pid, addresses, targets, flags)
            if targets is not None:
                cancel.set()
            return out

    recorder = StopAfterFirst({})
    assert move_in_chunks(
        42, plan_walk([(0, 1)], maps, MAPS), flags=2, cancel=cancel, move_pages=recorder
    )
    assert len(recorder.moves) == 1


def test_a_stopped_migration_is_judged_from_the_counts() -> None:
    from numatui.kernel.migration import Observation, decide_outcome

    plan = MigrationPlan(42, frozenset({0}), frozenset({1}), ((0, 1),), (64 << 20,))
    root = Privileges(uid=0, is_root=True, cap_sys_nice=True, cap_sys_ptrace=True)
    half = Observation({0: 64 << 20}, {0: 32 << 20, 1: 32 << 20}, None, cancelled=True)
    outcome, error, why = decide_outcome(plan, half, root)
    assert outcome is MigrationOutcome.PARTLY_MOVED and error is not None
    assert "stopped by the user after 32.0 MiB of 64.0 MiB" in why[0]
    none = Observation({0: 64 << 20}, {0: 64 << 20}, None, cancelled=True)
    outcome, _, why = decide_outcome(plan, none, root)
    assert outcome is MigrationOutcome.FAILED and "nothing was changed" in why[0]
    # Stopped after the last chunk: everything moved, and that is what it says.
    late = Observation({0: 64 << 20}, {1: 64 << 20}, None, cancelled=True)
    assert decide_outcome(plan, late, root)[0] is MigrationOutcome.ALL_MOVED


def test_walk_counts_only_mappings_with_pages_on_a_source() -> None:
    maps = parse_numa_maps(NUMA_MAPS)
    # Sources 0: the file mapping (0x52 pages), 4096 and 1024 pages; the last has none.
    assert plan_walk([(0, 1)], maps, MAPS).pages == 0x52 + 4096 + 1024
    assert plan_walk([(1, 0)], maps, MAPS).pages == 4096 + 4
    assert plan_walk([(0, 0)], maps, MAPS).pages == 0


class TimedKernel(Recorder):
    """A move_pages whose calls cost `seconds_per_page` of a fake clock (queries a tenth)."""

    def __init__(self, seconds_per_page: float) -> None:
        super().__init__({})
        self.now = 0.0
        self.seconds_per_page = seconds_per_page

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(
        self, pid: int, addresses: Sequence[int], targets: Sequence[int] | None, flags: int
    ) -> list[int]:
        share = 1.0 if targets is not None else 0.1
        self.now += len(addresses) * self.seconds_per_page * share
        return super().__call__(pid, addresses, targets, flags)


BIG_NUMA_MAPS = "7f0000000000 default anon=262144 dirty=262144 N0=262144 kernelpagesize_kB=4\n"
BIG_MAPS = "7f0000000000-7f0040000000 rw-p 00000000 00:00 0\n"


def _paced(kernel: TimedKernel, pacing: Pacing) -> list[tuple[int, float]]:
    chunks: list[tuple[int, float]] = []
    move_in_chunks(
        42,
        plan_walk([(0, 1)], parse_numa_maps(BIG_NUMA_MAPS), BIG_MAPS),
        flags=2,
        move_pages=kernel,
        pacing=pacing,
        on_chunk=lambda pages, seconds, _full: chunks.append((pages, seconds)),
        clock=kernel.clock,
        sleep=kernel.sleep,
    )
    return chunks


@given(st.sampled_from([2e-6, 1e-5, 5e-5]), st.sampled_from([0.005, 0.02, 0.05]))
def test_chunks_are_sized_to_the_stall_budget(seconds_per_page: float, budget: float) -> None:
    kernel = TimedKernel(seconds_per_page)
    chunks = _paced(kernel, Pacing(stall_s=budget))
    assert chunks[0][0] == FIRST_CHUNK_PAGES
    assert sum(pages for pages, _ in chunks) == 262144  # every page of the mapping, once
    settled = chunks[6:-1]  # after the first few (sizes grow at most 4x a step), but the tail
    assert settled, chunks
    for pages, seconds in settled:
        if pages < MAX_CHUNK_PAGES:
            assert 0.8 * budget <= seconds <= 1.2 * budget, (pages, seconds)
    # Only the first chunk, before any call was timed, may exceed the budget.
    assert max(seconds for _, seconds in chunks[1:]) <= 1.2 * budget


def test_a_slow_chunk_shrinks_the_next_at_once() -> None:
    pacer = ChunkPacer(Pacing(stall_s=0.02))
    for _ in range(5):
        pacer.record(pacer.pages, PAGE, pacer.pages * 1e-6)  # fast: grows
    grown = pacer.pages
    pacer.record(grown, PAGE, grown * 1e-4)  # the kernel became 100x slower
    assert pacer.pages <= int(0.02 / 1e-4) + 1 < grown


def test_the_rate_cap_holds() -> None:
    kernel = TimedKernel(1e-6)
    cap = 64 * 1024 * 1024.0  # 64 MiB/s for 1 GiB: at least 16 s
    chunks = _paced(kernel, Pacing(max_rate_bytes_s=cap))
    assert sum(pages for pages, _ in chunks) * PAGE / kernel.now <= cap * 1.01
    assert kernel.now >= 16.0 * 0.99


def test_pacing_refuses_nonsense() -> None:
    for bad in (0.0, -1.0):
        try:
            Pacing(stall_s=bad)
        except ValueError:
            continue
        raise AssertionError(f"stall {bad} accepted")
    try:
        Pacing(max_rate_bytes_s=0.0)
    except ValueError:
        return
    raise AssertionError("a zero rate cap accepted")
