"""Progress samples keep coming however slow one sample was.

A read of numa_maps can wait behind the mmap lock a migration holds (wall time, no CPU), and
a big process costs real CPU per read: neither may stop the view for long. Run against a
real sleeping process on this host; the kernel call is a stand-in that only takes time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from numatui.kernel.migration import MAX_SAMPLE_PAUSE_S, MigrationJob
from numatui.kernel.nodemask import NodeMask
from numatui.kernel.scanner import ProcessScanner


class SlowScanner(ProcessScanner):
    """Each per-node read after the first costs `wait_s` of waiting and `spin_s` of CPU."""

    def __init__(self, wait_s: float, spin_s: float) -> None:
        super().__init__()
        self.wait_s, self.spin_s, self.reads = wait_s, spin_s, 0

    def node_pages(self, pid: int) -> dict[int, int]:
        self.reads += 1
        if self.reads > 1:
            time.sleep(self.wait_s)
            spin_until = time.thread_time() + self.spin_s
            while time.thread_time() < spin_until:
                pass
        return dict(super().node_pages(pid))


def _samples(make_job: Callable[..., MigrationJob], scanner: SlowScanner, call_s: float) -> int:
    def slow_call(pid: int, old: NodeMask, new: NodeMask) -> int:
        time.sleep(call_s)
        return 0

    job = make_job(scanner=scanner, migrate=slow_call, sample_interval_s=0.1)
    return len(job.run().samples)


def test_waiting_behind_the_mmap_lock_does_not_space_samples_out(
    job_on_sleeper: Callable[..., MigrationJob],
) -> None:
    # 0.4 s of waiting per sample: judged by wall time, the next would come 8 s later.
    assert _samples(job_on_sleeper, SlowScanner(wait_s=0.4, spin_s=0.0), call_s=3.0) >= 3


def test_a_costly_sample_spaces_samples_out_at_most_to_the_cap(
    job_on_sleeper: Callable[..., MigrationJob],
) -> None:
    # 0.15 s of CPU per sample x 20 = 3 s, capped to MAX_SAMPLE_PAUSE_S (2 s).
    assert MAX_SAMPLE_PAUSE_S == 2.0
    assert _samples(job_on_sleeper, SlowScanner(wait_s=0.0, spin_s=0.15), call_s=3.2) >= 2
