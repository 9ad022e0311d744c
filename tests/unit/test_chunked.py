"""Which pages the chunked mover asks about and where it sends them (the kernel's side is
proven in the guest: tests/kernel/guest/test_chunked_guest.py)."""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from numatui.kernel.chunked import (
    FIRST_CHUNK_PAGES,
    MAX_CHUNK_PAGES,
    ChunkPacer,
    move_in_chunks,
    parse_maps_ranges,
    plan_walk,
)
from numatui.kernel.numa_maps import region_pages
from numatui.model.memory import RegionPages
from numatui.model.migration import MigrationOutcome, MigrationPlan, Pacing
from tests.tooling.privileges import ROOT

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


def _regions(numa_maps: str) -> tuple[RegionPages, ...]:
    return region_pages(numa_maps.encode())


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
    maps = _regions(NUMA_MAPS)
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
    maps = _regions(NUMA_MAPS)
    start = 0x7F0000000000
    nodes = {start + i * PAGE: (0 if i < 3000 else 1) for i in range(4096)}
    recorder = Recorder(nodes)
    # Pairs 0->1 then 1->2: memory on 0 goes to 1 and then on to 2 (final_placement).
    move_in_chunks(42, plan_walk([(0, 1), (1, 2)], maps, MAPS), flags=4, move_pages=recorder)
    moved = sent(recorder)
    assert {moved[a] for a in nodes} == {2}
    assert all(flags == 4 for _, _, flags in recorder.moves)


def test_cancel_stops_between_chunks() -> None:
    maps = _regions(NUMA_MAPS)
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
    half = Observation({0: 64 << 20}, {0: 32 << 20, 1: 32 << 20}, None, cancelled=True)
    outcome, error, why = decide_outcome(plan, half, ROOT)
    assert outcome is MigrationOutcome.PARTLY_MOVED and error is not None
    assert "stopped by the user after 32.0 MiB of 64.0 MiB" in why[0]
    none = Observation({0: 64 << 20}, {0: 64 << 20}, None, cancelled=True)
    outcome, _, why = decide_outcome(plan, none, ROOT)
    assert outcome is MigrationOutcome.FAILED and "nothing was changed" in why[0]
    # Stopped after the last chunk: everything moved, and that is what it says.
    late = Observation({0: 64 << 20}, {1: 64 << 20}, None, cancelled=True)
    assert decide_outcome(plan, late, ROOT)[0] is MigrationOutcome.ALL_MOVED


def test_walk_counts_only_mappings_with_pages_on_a_source() -> None:
    maps = _regions(NUMA_MAPS)
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
        plan_walk([(0, 1)], _regions(BIG_NUMA_MAPS), BIG_MAPS),
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


# ---------------------------------------------------------------- large folios

HUGE = 512 * PAGE  # a PMD's span of 4 KiB pages


class FolioKernel:
    """move_pages(2) as do_pages_move in mm/migrate.c does it, over a model of folios.

    Each address is looked up in order (counted: each takes the mmap lock). A page whose
    folio is on the target answers the target; one whose folio was queued already in this
    call, or is busy, answers -EBUSY; absent, -ENOENT; else its folio is queued. Any
    answer but "queued" first migrates what is queued (so a later page of a folio that
    has moved finds it on the target), as does the end of the call.
    """

    def __init__(self, folios: dict[int, tuple[int, int]], busy: set[int] = frozenset()) -> None:
        # folio start address -> (pages, node); busy: folio starts that cannot be isolated
        self.folios = dict(folios)
        self.busy = set(busy)
        self.lookups = 0
        self.calls = 0

    def folio_of(self, address: int) -> int | None:
        for start, (pages, _) in self.folios.items():
            if start <= address < start + pages * PAGE:
                return start
        return None

    def __call__(
        self, pid: int, addresses: Sequence[int], targets: Sequence[int] | None, flags: int
    ) -> list[int]:
        self.calls += 1
        status: list[int] = []
        if targets is None:
            for address in addresses:
                self.lookups += 1
                folio = self.folio_of(address)
                status.append(-errno.ENOENT if folio is None else self.folios[folio][1])
            return status
        queued: list[tuple[int, int]] = []  # (index, folio)

        def flush(node: int) -> None:
            for index, folio in queued:
                pages, _ = self.folios[folio]
                self.folios[folio] = (pages, node)
                status[index] = node
            queued.clear()

        for index, (address, node) in enumerate(zip(addresses, targets, strict=True)):
            self.lookups += 1
            if queued and queued[0][1] is not None and targets[queued[0][0]] != node:
                flush(targets[queued[0][0]])
            folio = self.folio_of(address)
            status.append(0)
            if folio is None:
                status[index] = -errno.ENOENT
            elif self.folios[folio][1] == node:
                status[index] = node
            elif folio in self.busy or any(f == folio for _, f in queued):
                status[index] = -errno.EBUSY
            else:
                queued.append((index, folio))
                continue
            flush(node)
        if queued:
            flush(targets[queued[0][0]])
        return status


def _walk_of(start: int, end: int) -> tuple[str, str]:
    pages = (end - start) // PAGE
    numa = f"{start:x} default anon={pages} dirty={pages} N0={pages} kernelpagesize_kB=4\n"
    return numa, f"{start:x}-{end:x} rw-p 00000000 00:00 0\n"


def _move_all(kernel: FolioKernel, start: int, end: int, pacing: Pacing | None = None) -> None:
    numa, maps = _walk_of(start, end)
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2,
        move_pages=kernel, pacing=pacing,
    )  # fmt: skip


def test_a_huge_page_is_moved_by_two_of_its_addresses() -> None:
    start = 0x7F0000000000
    folios = {start + i * HUGE: (512, 0) for i in range(64)}  # 128 MiB of THP
    kernel = FolioKernel(folios)
    _move_all(kernel, start, start + 64 * HUGE, Pacing(stall_s=10.0))  # one chunk's worth
    assert all(node == 1 for _, node in kernel.folios.values())
    # First and last page of each, then its middle page asked: 3 lookups, not 512, from
    # the first chunk on (the pacer's first chunks are smaller than a huge page).
    assert kernel.lookups == 3 * 64, kernel.lookups


def test_chunks_smaller_than_a_huge_page_still_move_it_by_two_addresses() -> None:
    """A slow kernel makes the pacer's chunks smaller than a huge page; the folio moves
    whole anyway, so the chunk reaches to its end instead of looking up moved pages."""
    start = 0x7F0000000000
    kernel = FolioKernel({start + i * HUGE: (512, 0) for i in range(8)})
    clock = [0.0]

    def slow(pid: int, a: Sequence[int], t: Sequence[int] | None, f: int) -> list[int]:
        clock[0] += 0.05  # every call over the budget: the pacer keeps its smallest chunks
        return kernel(pid, a, t, f)

    numa, maps = _walk_of(start, start + 8 * HUGE)
    chunks: list[int] = []
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=slow,
        pacing=Pacing(stall_s=0.02), clock=lambda: clock[0],
        on_chunk=lambda pages, _s, _f: chunks.append(pages),
    )  # fmt: skip
    assert all(node == 1 for _, node in kernel.folios.values())
    assert chunks == [512] * 8 and kernel.lookups == 3 * 8, (chunks, kernel.lookups)


def test_base_pages_and_small_folios_in_a_huge_range_get_every_address() -> None:
    start = 0x7F0000000000
    folios: dict[int, tuple[int, int]] = {}
    for i in range(512):  # range 0: base pages
        folios[start + i * PAGE] = (1, 0)
    for i in range(0, 512, 16):  # range 1: 64 KiB folios
        folios[start + HUGE + i * PAGE] = (16, 0)
    folios[start + 2 * HUGE] = (512, 0)  # range 2: a THP
    kernel = FolioKernel(folios)
    _move_all(kernel, start, start + 3 * HUGE)
    assert {node for _, node in kernel.folios.values()} == {1}


def test_a_busy_last_page_is_not_taken_for_a_huge_page() -> None:
    start = 0x7F0000000000
    folios = {start + i * PAGE: (1, 0) for i in range(4 * 512)}
    # In the fourth huge range: the pacer's first chunks (smaller than a huge page) go
    # page by page, whole huge ranges come after them.
    last = start + 4 * HUGE - PAGE
    kernel = FolioKernel(folios, busy={last})
    _move_all(kernel, start, start + 4 * HUGE, Pacing(stall_s=10.0))
    # The last page answers -EBUSY as a THP's would; the middle page still on node 0
    # gives it away, and every other page moves.
    assert [a for a, (_, node) in kernel.folios.items() if node != 1] == [last]


@st.composite
def folio_layouts(draw: st.DrawFn) -> tuple[int, int, dict[int, tuple[int, int]], set[int]]:
    """Naturally aligned folios of 1-512 pages (some absent, some busy, some on the target
    already) over a mapping that may start and end anywhere."""
    base = 0x7F0000000000
    total = draw(st.integers(1, 8)) * 512
    kinds = st.sampled_from(["source", "source", "source", "absent", "target", "busy"])
    pieces = draw(st.lists(st.tuples(st.sampled_from([0, 2, 4, 9, 9]), kinds), max_size=40))
    folios: dict[int, tuple[int, int]] = {}
    busy: set[int] = set()
    page = 0
    for order, kind in pieces:
        size = 1 << order
        page = -(-page // size) * size  # naturally aligned: skip to the next boundary
        if page + size > total:
            break
        if kind != "absent":
            folios[base + page * PAGE] = (size, 1 if kind == "target" else 0)
            if kind == "busy":
                busy.add(base + page * PAGE)
        page += size
    low = draw(st.integers(0, total - 1))
    high = draw(st.integers(low + 1, total))
    # Folios partly outside [low, high) belong to other mappings: drop them.
    kept = {
        start: folio
        for start, folio in folios.items()
        if base + low * PAGE <= start and start + folio[0] * PAGE <= base + high * PAGE
    }
    return base + low * PAGE, base + high * PAGE, kept, busy & set(kept)


@given(folio_layouts(), st.sampled_from([0.0005, 0.02, 0.2]))
def test_every_folio_that_can_move_moves(
    layout: tuple[int, int, dict[int, tuple[int, int]], set[int]], budget: float
) -> None:
    start, end, folios, busy = layout
    kernel = FolioKernel(folios, busy)
    clock = [0.0]

    def timed(pid: int, a: Sequence[int], t: Sequence[int] | None, f: int) -> list[int]:
        clock[0] += len(a) * 1e-5
        return kernel(pid, a, t, f)

    numa, maps = _walk_of(start, end)
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=timed,
        pacing=Pacing(stall_s=budget), clock=lambda: clock[0],
    )  # fmt: skip
    stayed = {a for a, (_, node) in kernel.folios.items() if node != 1}
    assert stayed == busy


# ---------------------------------------------------------------- many small mappings


def _small_mappings(count: int, pages: int, *, gap: int = 1) -> tuple[str, str, list[int]]:
    """numa_maps and maps of `count` anonymous mappings of `pages` pages on node 0, `gap`
    pages apart (unmapped); and every page address in them."""
    numa, maps, addresses = [], [], []
    start = 0x7F0000000000
    for _ in range(count):
        end = start + pages * PAGE
        numa.append(f"{start:x} default anon={pages} dirty={pages} N0={pages} kernelpagesize_kB=4")
        maps.append(f"{start:x}-{end:x} rw-p 00000000 00:00 0")
        addresses.extend(range(start, end, PAGE))
        start = end + gap * PAGE
    return "\n".join(numa) + "\n", "\n".join(maps) + "\n", addresses


def test_small_mappings_share_a_call_within_the_budget() -> None:
    """10,000 mappings of 4 pages made at least 10,000 calls, one or more a mapping."""
    kernel = TimedKernel(1e-5)  # 40,000 pages at 10 us: 0.4 s in 20 ms chunks
    numa, maps, addresses = _small_mappings(10_000, 4)
    chunks: list[tuple[int, float]] = []
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=kernel,
        on_chunk=lambda pages, seconds, _full: chunks.append((pages, seconds)),
        clock=kernel.clock, sleep=kernel.sleep,
    )  # fmt: skip
    moved = [a for sent_addresses, _, _ in kernel.moves for a in sent_addresses]
    assert sorted(moved) == addresses  # every page once, none from the gaps between
    assert set(sent(kernel).values()) == {1}
    assert len(kernel.moves) <= 40, len(kernel.moves)  # ~20 chunks of the budget, a few small
    assert sum(pages for pages, _ in chunks) == len(addresses)
    # Each call stays within the budget once the pacer has measured one.
    assert max(seconds for _, seconds in chunks[1:]) <= 1.2 * 0.02


def test_a_chunk_that_ends_inside_a_mapping_goes_on_from_there() -> None:
    kernel = TimedKernel(1e-5)
    numa, maps, addresses = _small_mappings(3, 100)  # FIRST_CHUNK_PAGES 64: cut inside each
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=kernel,
        pacing=Pacing(stall_s=1e-9), clock=kernel.clock, sleep=kernel.sleep,
    )  # fmt: skip
    moved = [a for sent_addresses, _, _ in kernel.moves for a in sent_addresses]
    assert sorted(moved) == addresses
    # The smallest chunks (16 pages) after the first: no call larger than the pacer's.
    assert all(len(a) <= FIRST_CHUNK_PAGES for a, _, _ in kernel.moves)


def test_mappings_that_must_be_asked_are_asked_together_and_sent_apart() -> None:
    """Pages on node 2 stay (the plan moves 0 -> 1 only): mappings that hold some are asked
    page by page, in one query for several, and never batched with the blind ones."""
    numa_lines = []
    maps_lines = []
    nodes: dict[int, int] = {}
    start = 0x7F0000000000
    for i in range(6):
        end = start + 8 * PAGE
        mixed = i % 3 == 2
        counts = "N0=4 N2=4" if mixed else "N0=8"
        numa_lines.append(f"{start:x} default anon=8 dirty=8 {counts} kernelpagesize_kB=4")
        maps_lines.append(f"{start:x}-{end:x} rw-p 00000000 00:00 0")
        for j, address in enumerate(range(start, end, PAGE)):
            nodes[address] = 2 if mixed and j % 2 else 0
        start = end + PAGE
    recorder = Recorder(nodes)
    walk = plan_walk([(0, 1)], _regions("\n".join(numa_lines)), "\n".join(maps_lines))
    move_in_chunks(42, walk, flags=2, move_pages=recorder, pacing=Pacing(stall_s=10.0))
    moved = sent(recorder)
    assert moved == {a: 1 for a, node in nodes.items() if node == 0}
    # Blind runs (mappings 0-1, 3-4) and asked ones (2, 5) alternate: one call each, the
    # asked ones a query and a move.
    assert recorder.queries == 2 and len(recorder.moves) == 4


def test_a_hugetlb_mapping_between_small_ones_gets_calls_of_its_own_page_size() -> None:
    numa = (
        "7f0000000000 default anon=4 dirty=4 N0=4 kernelpagesize_kB=4\n"
        "7f0000200000 default huge anon=2 dirty=2 N0=2 kernelpagesize_kB=2048\n"
        "7f0000800000 default anon=4 dirty=4 N0=4 kernelpagesize_kB=4\n"
    )
    maps = (
        "7f0000000000-7f0000004000 rw-p 00000000 00:00 0\n"
        "7f0000200000-7f0000600000 rw-p 00000000 00:0f 1234 /anon_hugepage (deleted)\n"
        "7f0000800000-7f0000804000 rw-p 00000000 00:00 0\n"
    )
    recorder = Recorder({})
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=recorder,
        pacing=Pacing(stall_s=10.0),
    )  # fmt: skip
    calls = [addresses for addresses, _, _ in recorder.moves]
    base = [0x7F0000000000 + i * PAGE for i in range(4)]
    assert calls == [
        base,
        [0x7F0000200000, 0x7F0000400000],
        [0x7F0000800000 + i * PAGE for i in range(4)],
    ]


@st.composite
def mapping_layouts(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, int]], dict[int, tuple[int, int]], set[int]]:
    """Several mappings, each a folio layout of its own (`folio_layouts`), a gap apart."""
    spans: list[tuple[int, int]] = []
    folios: dict[int, tuple[int, int]] = {}
    busy: set[int] = set()
    offset = 0
    for _ in range(draw(st.integers(1, 5))):
        start, end, some, some_busy = draw(folio_layouts())
        shift = offset * HUGE
        spans.append((start + shift, end + shift))
        folios.update({a + shift: f for a, f in some.items()})
        busy |= {a + shift for a in some_busy}
        offset += (end - 0x7F0000000000) // HUGE + 1 + draw(st.integers(0, 1))
    return spans, folios, busy


@settings(deadline=None)  # ~10 ms an example; a loaded CI machine must not make it fail
@given(mapping_layouts(), st.sampled_from([0.0005, 0.02, 0.2]))
def test_every_folio_of_every_mapping_that_can_move_moves(
    layout: tuple[list[tuple[int, int]], dict[int, tuple[int, int]], set[int]], budget: float
) -> None:
    spans, folios, busy = layout
    kernel = FolioKernel(folios, busy)
    clock = [0.0]
    looked_up: list[int] = []

    def timed(pid: int, a: Sequence[int], t: Sequence[int] | None, f: int) -> list[int]:
        clock[0] += len(a) * 1e-5
        looked_up.extend(a)
        return kernel(pid, a, t, f)

    numa = "".join(_walk_of(start, end)[0] for start, end in spans)
    maps = "".join(_walk_of(start, end)[1] for start, end in spans)
    move_in_chunks(
        42, plan_walk([(0, 1)], _regions(numa), maps), flags=2, move_pages=timed,
        pacing=Pacing(stall_s=budget), clock=lambda: clock[0],
    )  # fmt: skip
    stayed = {a for a, (_, node) in kernel.folios.items() if node != 1}
    assert stayed == busy
    assert all(any(start <= a < end for start, end in spans) for a in looked_up)
