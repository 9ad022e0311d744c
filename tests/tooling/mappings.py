"""A process's memory as many small mappings: what a JVM, a database or a server with
many malloc arenas and thread stacks looks like to numa_maps and to a mover."""

from __future__ import annotations

import ctypes
import mmap


def address_of(region: mmap.mmap) -> int:
    """Where `region` starts in this process's address space."""
    return ctypes.addressof(ctypes.c_char.from_buffer(region))


def many_mappings(count: int, pages: int = 4) -> mmap.mmap:
    """One private anonymous region split into `count` mappings (VMAs) of `pages` pages,
    every page present and a base page.

    Every other mapping is read-only, so the kernel cannot merge neighbours into one.
    Each page begins with its own offset: a checksum of the region tells a page moved
    whole from one lost or swapped. Private, so a child forked after this has the pages
    present too (fork copies the page tables of private anonymous memory; a shared
    mapping's children would fault them in only when they touch them).
    """
    span = pages * mmap.PAGESIZE
    region = mmap.mmap(
        -1,
        span * count,
        flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
        prot=mmap.PROT_READ | mmap.PROT_WRITE,
    )
    # Before the first touch: a fault would otherwise fill a huge page, which the
    # protections below split again, and the mappings would not be base pages alone.
    region.madvise(mmap.MADV_NOHUGEPAGE)
    for offset in range(0, len(region), mmap.PAGESIZE):
        region[offset : offset + 8] = offset.to_bytes(8, "little")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    start = address_of(region)
    for i in range(1, count, 2):
        if libc.mprotect(start + i * span, span, mmap.PROT_READ) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    return region
