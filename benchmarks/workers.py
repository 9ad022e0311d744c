"""Spawn many idle processes with a few hundred mappings each, for the scan benchmarks.

One Python parent maps `mappings` small regions with alternating protections
(so the kernel cannot merge them into one VMA), touches them, then forks:
children share the parent's pages copy-on-write and only pause, so 2,000 of
them cost little memory while each has a realistic numa_maps.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import time
from collections.abc import Iterator


def _make_mappings(count: int) -> mmap.mmap:
    """One anonymous region split into `count` VMAs by alternating protections."""
    # Four pages a VMA; one for very many VMAs (100,000 of them: 400 MB, not 1.6 GB).
    chunk = mmap.PAGESIZE * (4 if count <= 10_000 else 1)
    # Private: fork copies the page tables of private anonymous memory, so every
    # child has these pages present too (a shared mapping's children fault them
    # in only when they touch them: their numa_maps would list no pages).
    region = mmap.mmap(
        -1,
        chunk * count,
        flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
        prot=mmap.PROT_READ | mmap.PROT_WRITE,
    )
    for offset in range(0, len(region), mmap.PAGESIZE):
        region[offset] = 0x78  # present pages, so numa_maps lists N<node>= fields
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    for i in range(1, count, 2):
        if libc.mprotect(base + i * chunk, chunk, mmap.PROT_READ) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    return region


@contextlib.contextmanager
def idle_processes(count: int, mappings: int = 300) -> Iterator[list[int]]:
    """Yield the pids of `count` paused children, each with about `mappings` VMAs."""
    region = _make_mappings(mappings)
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
