"""The quiet collector: full collections only when no key came for a while."""

from __future__ import annotations

import gc
import time
import weakref

from numatui.quiet_gc import NEVER, QuietCollector

from .conftest import quiet_app, settle
from .fakes import FakeSource, four_nodes


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def old_garbage_cycle() -> weakref.ref[Node]:
    """A cycle that lived through a young collection (so it sits in the oldest
    generation, which only a full collection walks) and then became garbage."""
    ring = [Node() for _ in range(1_000)]  # enough to tell from other objects' churn
    for node, after in zip(ring, ring[1:] + ring[:1], strict=True):
        node.other = after
    a = ring[0]
    del ring
    gc.collect(1)  # survivors of generations 0 and 1 move to generation 2
    return weakref.ref(a)


def test_full_collections_wait_for_a_quiet_moment_and_settings_come_back() -> None:
    before = gc.get_threshold()
    collector = QuietCollector(
        quiet_s=0.2, longest_wait_s=60.0, growth_share=0.0, min_growth=500, min_young_collections=0
    )
    collector.start()
    try:
        assert gc.get_threshold()[2] == NEVER and gc.get_freeze_count() > 0
        garbage = old_garbage_cycle()
        assert garbage() is not None and collector.due()
        collector.saw_input()
        assert collector.tick() is False  # a key just came: not now
        time.sleep(0.25)
        assert collector.tick() is True and collector.full_collections == 1
        assert garbage() is None  # the cycle is gone
        # Keys keep coming: a due collection still runs once it is overdue.
        more_garbage = old_garbage_cycle()
        collector.longest_wait_s = 0.0
        collector.saw_input()
        assert collector.tick() is True
        assert more_garbage() is None
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert collector.tick() is False  # stopped: does nothing


def test_a_quiet_moment_without_growth_walks_nothing() -> None:
    # The defaults: 10,000 objects and a quarter more than the last full collection left.
    collector = QuietCollector(quiet_s=0.0)
    collector.start()
    try:
        old_garbage_cycle()  # a little growth, far below the threshold
        for _ in range(12):
            gc.collect(1)  # enough young collections that only growth decides
        assert gc.get_count()[2] >= collector.min_young_collections
        assert not collector.due()
        assert collector.tick() is False and collector.full_collections == 0
        keep = [[i] for i in range(20_000)]  # grows the oldest generation past both marks
        gc.collect(1)
        assert collector.due()
        assert collector.tick() is True and collector.full_collections == 1
        assert not collector.due()  # what survived is the new base
        del keep
    finally:
        collector.stop()


async def test_the_app_owns_the_collector_only_while_it_runs() -> None:
    before = gc.get_threshold()
    app = quiet_app(FakeSource(topology_factory=four_nodes, process_count=20))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.collector.active and gc.get_threshold()[2] == NEVER
        last = app.collector.last_input
        await pilot.press("down")
        assert app.collector.last_input > last
    assert not app.collector.active
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
