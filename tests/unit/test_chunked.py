"""Which pages the chunked mover asks about and where it sends them (the kernel's side is
proven in the guest: tests/kernel/guest/test_chunked_guest.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from numatui.kernel.chunked import CHUNK_PAGES, move_in_chunks, parse_maps_ranges, plan_walk
from numatui.kernel.numa_maps import parse_numa_maps
from numatui.model import MigrationOutcome, MigrationPlan
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
    assert all(len(addresses) <= CHUNK_PAGES for addresses, _, _ in recorder.moves)


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
