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


def make_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_full_collections_wait_for_a_quiet_moment_and_settings_come_back() -> None:
    before = gc.get_threshold()
    collector = QuietCollector(quiet_s=0.2, longest_wait_s=60.0)
    collector.start()
    try:
        assert gc.get_threshold()[2] == NEVER and gc.get_freeze_count() > 0
        garbage = make_cycle()
        collector.saw_input()
        assert collector.tick() is False  # a key just came: not now
        time.sleep(0.25)
        assert collector.tick() is True and collector.full_collections == 1
        assert garbage() is None  # the cycle is gone
        # Keys keep coming: the collection still runs once it is overdue.
        collector.longest_wait_s = 0.0
        collector.saw_input()
        assert collector.tick() is True
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert collector.tick() is False  # stopped: does nothing


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
