"""A migration that can be stopped: move_pages(2) over the address space, a chunk at a time.

migrate_pages(2) is one call that nothing can interrupt. A stoppable plan
(`MigrationPlan.stoppable`) moves the same pages with move_pages(2) instead,
a chunk at a time, checking between chunks whether to go on. Chunks are
sized to a stall budget (`ChunkPacer`): migrate_pages holds the process's
mmap lock for the whole move, so a thread of it that maps or unmaps memory
waits for all of it; move_pages takes that lock while it looks each page up,
and a call of about 20 ms keeps such a thread waiting about that long at
most (benchmarks/bench_stall.py measures it). Each page
is sent where the plan's kernel pairs would have taken the memory of the
node it is on (`plan.final_placement`), so the end state is the one the
preview showed. Only mappings that numa_maps says have pages on a source node
are walked; there the node of every page is asked first (one more call per
chunk) unless the mapping's pages can only be on sources or the single
target, where sending every page to the target is already right.

The cost grows with the virtual size of those mappings (every page address
is passed to the kernel, present or not), where migrate_pages walks only
present pages: a sparse mapping of many GiB costs seconds more.

Transparent huge pages: the kernel moves a large folio whole from any one of
its addresses, but it still takes the mmap lock and looks up every other
address passed (each answering -EBUSY, the folio being taken already), 511
lookups per 2 MiB for nothing, each one a chance for a thread of the process
that maps memory to wait. So where the moves go to one target, each whole
huge-page-sized range is first sent as its first and last page only: the last
answers -EBUSY exactly when it lies in the folio the first page's move has
taken, and folios are aligned and contiguous, so that folio is the whole
range (`_whole_folios`). A query of its middle page confirms it; every other
range (base pages, smaller folios, a page that was busy) then gets all its
addresses. Measured in the 2-node guest with a thread mapping and unmapping
beside it (benchmarks/bench_chunk_calls.py): 256 MiB of THP moved in 1.09 s
instead of 1.72 s, 384 addresses looked up instead of 65,536.
"""

from __future__ import annotations

import errno
import mmap
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from numatui.kernel import syscalls
from numatui.kernel.plan import final_placement
from numatui.model.memory import RegionPages
from numatui.model.migration import Pacing

FIRST_CHUNK_PAGES = 64
"""Pages in the first call of a paced move (256 KiB: a few ms even under emulation),
before the time of a call has been measured."""

MIN_CHUNK_PAGES = 16
MAX_CHUNK_PAGES = 1 << 16
"""Bounds of a chunk: at least a few pages per call (the call's own cost), at most 256 MiB
of base pages (the address and status arrays numatui builds)."""

MAX_WALK_PAGES = 1 << 24
"""Page addresses a chunked move may pass to the kernel (64 GiB of 4 KiB pages).

Beyond that (sanitizer shadow maps, huge reserved heaps holding a few pages)
walking the address space would take far longer than the migration:
the job makes the one migrate_pages call instead (see `ChunkWalk.pages`).
"""

ChunkListener = Callable[[int, float, bool], None]
"""Hears (pages, seconds, full) of each chunk moved."""

MovePages = Callable[[int, Sequence[int], Sequence[int] | None, int], list[int]]


@dataclass(frozen=True)
class ChunkWalk:
    """What a chunked move goes through: each mapping with pages on a source node (and
    where it ends), and where the pages of each source node are to go."""

    placement: Mapping[int, int]
    regions: tuple[tuple[RegionPages, int], ...]

    @property
    def pages(self) -> int:
        """How many page addresses the walk passes to the kernel."""
        return sum((end - region.start) // region.page_size for region, end in self.regions)


def plan_walk(
    pairs: Sequence[tuple[int, int]], regions: Iterable[RegionPages], maps_text: str
) -> ChunkWalk:
    placement = {node: dest for node, dest in final_placement(pairs).items() if node != dest}
    ends = parse_maps_ranges(maps_text)
    walked = tuple(
        (region, ends[region.start])
        for region in regions
        # A mapping missing from maps was unmapped since numa_maps was read.
        if region.start in ends and any(region.node_pages.get(n, 0) for n in placement)
    )
    return ChunkWalk(placement, walked)


def parse_maps_ranges(text: str) -> dict[int, int]:
    """/proc/PID/maps: the end address of each mapping, by its start. Never raises."""
    ranges: dict[int, int] = {}
    for line in text.splitlines():
        span = line.split(" ", 1)[0]
        start, sep, end = span.partition("-")
        if not sep:
            continue
        try:
            ranges[int(start, 16)] = int(end, 16)
        except ValueError:
            continue
    return ranges


class ChunkPacer:
    """Sizes each chunk so its move_pages calls take about `pacing.stall_s`, and holds the
    move back to `pacing.max_rate_bytes_s`.

    The rate of the last calls (pages per second, smoothed) times the budget gives the
    next chunk's pages; a chunk of mostly absent pages is cheap, so the size follows what
    the kernel actually costs here rather than a fixed guess.
    """

    def __init__(
        self,
        pacing: Pacing,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_chunk: ChunkListener | None = None,
    ) -> None:
        self.pacing = pacing
        self.clock = clock
        self.on_chunk = on_chunk
        self.pages = FIRST_CHUNK_PAGES
        self._rate: float | None = None  # pages per second, smoothed
        self._started = clock()
        self._bytes = 0

    def record(self, pages: int, page_size: int, seconds: float, full: bool | None = None) -> None:
        """One chunk of `pages` took `seconds` (its query and move calls); `full`: it was
        not cut short by the end of its mapping (by default: it had the pacer's size)."""
        if full is None:
            full = pages >= self.pages
        if self.on_chunk is not None:
            self.on_chunk(pages, seconds, full)
        self._bytes += pages * page_size
        if not full and seconds < self.pacing.stall_s:
            # The tail of a small mapping: the call's fixed cost dominates, which says
            # little about the rate; a slow one still counts (see below).
            return
        rate = pages / max(seconds, 1e-5)
        # Smoothed, but a slow chunk counts at once: overshooting the budget is the harm.
        self._rate = rate if self._rate is None or rate < self._rate else (self._rate + rate) / 2
        wanted = int(self._rate * self.pacing.stall_s)
        # Grow at most fourfold a step: one lucky fast chunk must not make the next huge.
        self.pages = max(MIN_CHUNK_PAGES, min(MAX_CHUNK_PAGES, wanted, self.pages * 4))

    def pause(self) -> float:
        """Seconds to wait before the next chunk so the rate cap holds (0 without one)."""
        cap = self.pacing.max_rate_bytes_s
        if cap is None:
            return 0.0
        due = self._started + self._bytes / cap
        return max(0.0, due - self.clock())


BASE_PAGE = mmap.PAGESIZE


def folio_span(page_size: int) -> int:
    """Bytes a PMD maps, the largest folio of base pages: 512 x 4 KiB on x86-64 (page
    tables of 8-byte entries, one page each)."""
    return page_size * (page_size // 8)


def _next_stop(address: int, end: int, page_size: int, pages: int) -> int:
    """Where the chunk from `address` ends: about `pages` pages on.

    A chunk of at least a huge page's size ends on a huge-page boundary, so the huge
    pages inside it are whole (see `_move_by_folio`): a huge page split between two
    chunks would be looked up page by page in the second."""
    huge = folio_span(page_size)
    stop = min(end, address + pages * page_size)
    if stop < end and stop - address >= huge:
        # The nearest boundary, if it keeps the chunk within 15 % of the pacer's size:
        # a chunk over the budget is a longer stall, one well under it slows the move.
        nearest = (stop + huge // 2) // huge * huge
        if abs(nearest - stop) <= 0.15 * (stop - address) and nearest > address:
            stop = min(end, nearest)
    return stop


Span = tuple[int, int, int]
"""(low, high, end): the addresses [low, high) of one mapping that ends at `end`."""


def move_in_chunks(
    pid: int,
    walk: ChunkWalk,
    *,
    flags: int,
    cancel: threading.Event | None = None,
    move_pages: MovePages = syscalls.move_pages,
    pacing: Pacing | None = None,
    on_chunk: ChunkListener | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Move `pid`'s pages as the kernel pairs would; True if stopped by `cancel` between chunks.

    Per-page statuses are not counted: the base pages of a transparent huge
    page report -EBUSY though it moved whole, so what moved is judged from
    numa_maps afterwards, as for migrate_pages. Raises `SyscallError` when a
    whole call fails (the process exited: ESRCH; no permission: EPERM/EACCES),
    with the chunks before it moved.

    Chunks are sized by `ChunkPacer` to `pacing` (default: about 20 ms a chunk);
    `on_chunk(pages, seconds, full)` hears of each chunk's size and time, and whether
    it had the pacer's size (`full`) or was the shorter tail of a mapping.

    A chunk of base pages may span several mappings: the small mappings of a process
    (libraries, thread stacks, malloc arenas, a JVM's thousands) go to the kernel
    together, a chunk's worth a call, instead of one call or more each. Each call has a
    fixed cost (the mmap lock, draining the LRU lists: 0.36 ms in the emulated guest,
    README "A stall budget"), which 10,000 small mappings multiplied into seconds.
    """
    placement = walk.placement
    sources = set(placement)
    targets = set(placement.values())
    pacer = ChunkPacer(pacing or Pacing(), clock=clock, on_chunk=on_chunk)
    batch: list[Span] = []  # base pages of one or more mappings, for one chunk
    batch_target: int | None = None  # where the batch goes without asking (None: ask)
    batched = 0  # pages in the batch

    def may_go_on() -> bool:
        wait = pacer.pause()
        if wait > 0:
            if cancel is not None:
                cancel.wait(wait)
            else:
                sleep(wait)
        return cancel is None or not cancel.is_set()

    def send_batch() -> int | None:
        """Move the batch as one chunk; where its last span ended (None: stopped first)."""
        nonlocal batched
        if not may_go_on():
            return None
        started = clock()
        if batch_target is not None:
            stop = _move_by_folio(pid, batch, batch_target, flags, move_pages)
        else:
            addresses = [a for low, high, _ in batch for a in range(low, high, BASE_PAGE)]
            _ask_and_send(pid, addresses, placement, flags, move_pages)
            stop = batch[-1][1]
        _, last_high, last_end = batch[-1]
        pages = batched + (stop - last_high) // BASE_PAGE  # a huge page past the last span
        pacer.record(pages, BASE_PAGE, clock() - started, full=stop < last_end or None)
        batch.clear()
        batched = 0
        return stop

    for region, end in walk.regions:
        blind = _single_target_suffices(region, sources, targets)
        page_size = region.page_size
        low = region.start
        mixes = page_size != BASE_PAGE or blind != batch_target
        if batch and mixes and send_batch() is None:
            return True
        if page_size != BASE_PAGE:  # hugetlb: a chunk of its own pages at a time
            while low < end:
                high = _next_stop(low, end, page_size, pacer.pages)
                if not may_go_on():
                    return True
                started = clock()
                addresses = range(low, high, page_size)
                if blind is not None:
                    move_pages(pid, addresses, [blind] * len(addresses), flags)
                else:
                    _ask_and_send(pid, addresses, placement, flags, move_pages)
                pages = (high - low) // page_size
                pacer.record(pages, page_size, clock() - started, full=high < end or None)
                low = high
            continue
        batch_target = blind
        while low < end:
            high = _next_stop(low, end, BASE_PAGE, pacer.pages - batched)
            batch.append((low, high, end))
            batched += (high - low) // BASE_PAGE
            if high < end or batched >= pacer.pages:
                stop = send_batch()
                if stop is None:
                    return True
                low = stop
            else:
                low = high
    return bool(batch) and send_batch() is None


def _ask_and_send(
    pid: int,
    addresses: Sequence[int],
    placement: Mapping[int, int],
    flags: int,
    move_pages: MovePages,
) -> None:
    """Ask the node of each page, then send those on a source where its pair takes them."""
    where = move_pages(pid, addresses, None, 0)
    chosen, wanted = [], []
    for address, node in zip(addresses, where, strict=True):
        if node in placement:
            chosen.append(address)
            wanted.append(placement[node])
    if chosen:
        move_pages(pid, chosen, wanted, flags)


def _move_by_folio(
    pid: int, spans: Sequence[Span], target: int, flags: int, move_pages: MovePages
) -> int:
    """Send every page of the spans to `target` in one call, a huge page that starts in a
    span (and ends by its mapping's end) by two of its addresses; returns where the last
    span ended: its `high`, or the end of a huge page it moved whole that reaches past it.

    A chunk smaller than a huge page (the pacer's, when the kernel is slow) still sends a
    huge page starting in it whole: the kernel moves the folio whole from any address,
    so smaller chunks would only look up pages already moved."""
    huge = folio_span(BASE_PAGE)
    singles: list[int] = []  # addresses in no such huge page: sent one by one
    heads: list[int] = []
    highs: list[int] = []  # the `high` of each head's span
    for low, high, end in spans:
        first = -(-low // huge) * huge
        position = low
        for head in range(first, min(high, end - huge + 1), huge):
            singles.extend(range(position, head, BASE_PAGE))
            position = head + huge
            heads.append(head)
            highs.append(high)
        singles.extend(range(position, high, BASE_PAGE))
    pairs = [address for head in heads for address in (head, head + huge - BASE_PAGE)]
    sent = singles + pairs
    status = move_pages(pid, sent, [target] * len(sent), flags)
    last_high = spans[-1][1]
    if not heads:
        return last_high
    whole = _whole_folios(pid, heads, status[len(singles) :], target, move_pages)
    # The rest of a huge page not moved whole, within its span (its last page went already).
    rest = [
        address
        for head, high, is_whole in zip(heads, highs, whole, strict=True)
        if not is_whole
        for address in range(head + BASE_PAGE, min(head + huge - BASE_PAGE, high), BASE_PAGE)
    ]
    if rest:
        move_pages(pid, rest, [target] * len(rest), flags)
    last = heads[-1] + huge  # only the last span can be cut short of its mapping's end
    return last if whole[-1] and heads[-1] >= spans[-1][0] and last > last_high else last_high


def _whole_folios(
    pid: int, heads: Sequence[int], pair_status: Sequence[int], target: int, move_pages: MovePages
) -> list[bool]:
    """For each huge-page range sent as (first, last) page: did one folio, moved whole,
    hold all of it?

    The kernel queues the first page's folio, then meets the last page: in the same
    folio it cannot take it again (-EBUSY); a page of its own it queues or finds on the
    target. Folios are naturally aligned, so one holding both ends holds the range. A
    last page busy for another reason (pinned, being migrated by someone else) would
    look the same: the middle page, asked after the move, tells them apart."""
    maybe = [pair_status[2 * i + 1] == -errno.EBUSY for i in range(len(heads))]
    middles = [head + folio_span(BASE_PAGE) // 2 for head, m in zip(heads, maybe, strict=True) if m]
    if not middles:
        return maybe
    where = iter(move_pages(pid, middles, None, 0))
    # A middle page on the target moved with its folio; anywhere else (still on a source,
    # absent) the range gets every address.
    return [m and next(where) == target for m in maybe]


def _single_target_suffices(
    region: RegionPages, sources: set[int], targets: set[int]
) -> int | None:
    """The one target every page of `region` may be sent to without asking where it is."""
    if len(targets) != 1:
        return None
    (target,) = targets
    present = {n for n, pages in region.node_pages.items() if pages}
    return target if present <= sources | {target} else None


def read_maps(pid: int, proc_root: Path = Path("/proc")) -> str:
    return (proc_root / str(pid) / "maps").read_text(errors="replace")
