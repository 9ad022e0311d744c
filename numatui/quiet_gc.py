"""Full garbage collections at moments the user is not typing.

CPython's cyclic collector now and then walks every tracked object (a
generation-2 collection). With 2,000 processes on screen that is ~150,000
objects and up to ~95 ms on the UI thread (measured: benchmarks/bench_ui.py,
13 such pauses in 30 s while a full scan ran continuously), long enough to be
the slowest key presses. Generations 0 and 1 stay automatic (a few ms each).
The full collection is taken off the automatic schedule and run from the
app's timer once no key or click came for a while, and objects that live as
long as the app (modules, the widget tree) are frozen out of it, so each run
walks only what the refreshes created since.

A quiet moment alone is no reason to collect: an idle app with 500 processes
spent ~0.5 % of a CPU on a full collection every 10 s that found nothing. As
CPython's own rule does, a full collection runs only once the oldest generation
grew by a quarter since the last one (`growth_share`; the automatic rule counts
objects promoted into it, this one its net size, which also rises when cyclic
garbage piles up there) and enough younger collections ran to have promoted
anything (`gc.get_count()[2]`, a free check that skips counting the objects).
"""

from __future__ import annotations

import gc
import time

NEVER = 1_000_000
"""A generation-2 threshold no run reaches: gen-1 collections between full ones."""


class QuietCollector:
    """Owns the process's collector settings between `start()` and `stop()`."""

    def __init__(
        self,
        quiet_s: float = 1.0,
        longest_wait_s: float = 120.0,
        growth_share: float = 0.25,
        min_growth: int = 10_000,
        min_young_collections: int = 10,
    ) -> None:
        self.quiet_s = quiet_s
        """No input for this long: a full collection will not be noticed."""
        self.longest_wait_s = longest_wait_s
        """A full collection that is due runs after this long even while keys keep coming."""
        self.growth_share = growth_share
        self.min_growth = min_growth
        """Objects the oldest generation must gain, and at least `growth_share` of its
        size after the last full collection, before another one is due."""
        self.min_young_collections = min_young_collections
        """Generation-1 collections (each may promote objects) before growth is counted:
        CPython's default generation-2 threshold."""
        self._survivors = 0  # the oldest generation's size after the last full collection
        self.last_input = time.monotonic()
        self.last_full = time.monotonic()
        self.full_collections = 0
        self._saved: tuple[int, int, int] | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is not None:
            return
        self._saved = gc.get_threshold()
        gc.collect()  # nothing already garbage gets frozen
        gc.freeze()
        first, second, _ = self._saved
        gc.set_threshold(first, second, NEVER)
        self.last_full = time.monotonic()
        self._survivors = len(gc.get_objects(generation=2))

    def stop(self) -> None:
        """Give the process its collector back (tests run many apps in one process)."""
        if self._saved is None:
            return
        gc.unfreeze()
        gc.set_threshold(*self._saved)
        self._saved = None

    def saw_input(self) -> None:
        self.last_input = time.monotonic()

    def due(self) -> bool:
        """The oldest generation grew enough since the last full collection to walk it."""
        if gc.get_count()[2] < self.min_young_collections:
            return False
        grown = len(gc.get_objects(generation=2)) - self._survivors
        return grown >= max(self.min_growth, self._survivors * self.growth_share)

    def tick(self) -> bool:
        """Called from a timer: run the full collection if now is a good moment."""
        if self._saved is None:
            return False
        now = time.monotonic()
        quiet = now - self.last_input >= self.quiet_s
        overdue = now - self.last_full >= self.longest_wait_s
        if not (quiet or overdue) or not self.due():
            return False
        gc.collect()
        self.last_full = time.monotonic()
        self._survivors = len(gc.get_objects(generation=2))
        self.full_collections += 1
        return True
