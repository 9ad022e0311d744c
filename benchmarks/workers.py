"""Spawn many idle processes with a few hundred mappings each, for the scan benchmarks.

One Python parent maps `mappings` small regions with alternating protections
(so the kernel cannot merge them into one VMA), touches them, then forks:
children share the parent's pages copy-on-write and only pause, so 2,000 of
them cost little memory while each has a realistic numa_maps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # tests.tooling, for the benchmarks that do not add it

from tests.tooling.mappings import many_mappings  # noqa: E402


def pages_per_mapping(count: int) -> int:
    """Pages a mapping when a process has `count` mappings: four, or one for very many
    (100,000 of them: 400 MB, not 1.6 GB)."""
    return 4 if count <= 10_000 else 1


@contextlib.contextmanager
def idle_processes(count: int, mappings: int = 300) -> Iterator[list[int]]:
    """Yield the pids of `count` paused children, each with about `mappings` VMAs."""
    region = many_mappings(mappings, pages_per_mapping(mappings))
    pids: list[int] = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:  # child: wait to be killed, touch nothing
                try:
                    signal.pause()
                finally:
                    os._exit(0)
            pids.append(pid)
        time.sleep(0.2)
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        del region  # still exported to ctypes, so it cannot be closed early; freed at exit
