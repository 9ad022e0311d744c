"""The periodic refresh reads at a lower CPU priority than the UI; what a user waits for not."""

from __future__ import annotations

import os
import threading

from numatui.blocking import BACKGROUND_NICE
from numatui.model.memory import NumaMaps, ProcessScan

from .conftest import quiet_app, settle
from .fakes import FakeSource


def this_threads_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class NiceRecordingSource(FakeSource):
    def __init__(self) -> None:
        super().__init__()
        self.scan_nice: list[tuple[int, int]] = []  # (the call's thread, a thread it starts)
        self.numa_maps_nice: list[int] = []

    def scan(self, previous: ProcessScan | None = None, *, nodes_only: bool = False) -> ProcessScan:
        started: list[int] = []
        reader = threading.Thread(target=lambda: started.append(this_threads_nice()))
        reader.start()
        reader.join()
        self.scan_nice.append((this_threads_nice(), started[0]))
        return super().scan(previous, nodes_only=nodes_only)

    def numa_maps(self, pid: int) -> NumaMaps:
        self.numa_maps_nice.append(this_threads_nice())
        return super().numa_maps(pid)


async def test_refresh_reads_run_niced_and_a_detail_read_does_not() -> None:
    base = this_threads_nice()
    expected = min(19, base + BACKGROUND_NICE)  # raising it is always allowed
    source = NiceRecordingSource()
    app = quiet_app(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.select_pid(211)
        await pilot.press("enter")  # the detail view reads numa_maps: the user waits
        await settle(pilot)
    assert source.scan_nice and all(n == (expected, expected) for n in source.scan_nice)
    assert source.numa_maps_nice and set(source.numa_maps_nice) == {base}
    assert this_threads_nice() == base  # the UI thread is untouched
