"""The fixed cost of one move_pages(2) call, against the paced mover's 20 ms budget.

    python3 benchmarks/bench_call_cost.py [--calls 200]

Run on the host, it boots the 2-node QEMU guest and runs itself inside with
`--inside`. There it maps 32 MiB of base pages (MADV_NOHUGEPAGE) on node 0 and,
while a thread of the same process maps, touches and unmaps a page in a loop
(as in bench_stall.py), times:

  - `--calls` calls that each send one page to the node it is already on (the
    kernel's fixed cost per call: the mmap lock, LRU draining, one lookup);
  - `--calls` calls that each move one page to node 1;
  - one call that moves 4,000 pages to node 1 (the cost per page).

The paced mover makes one call per chunk of about 20 ms, so the fixed cost over
20 ms is what pacing adds to a move's time; every page is checked on node 1 after.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from guest import guest_main, guest_options  # noqa: E402

PAGE = mmap.PAGESIZE
SIZE = 32 * 1024 * 1024
BULK = 4000


def _inside(calls: int) -> dict[str, object]:
    from numatui.kernel import syscalls
    from numatui.kernel.nodemask import NodeMask
    from tests.tooling.mempolicy import MPOL_BIND, MPOL_DEFAULT, set_mempolicy

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    pid = os.getpid()
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            page = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            page[0] = 1
            page.close()

    set_mempolicy(MPOL_BIND, NodeMask({0}))
    memory = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    memory.madvise(mmap.MADV_NOHUGEPAGE)
    for offset in range(0, SIZE, PAGE):
        memory[offset] = 1
    set_mempolicy(MPOL_DEFAULT)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    pages = [base + offset for offset in range(0, SIZE, PAGE)]
    if len(pages) < calls + BULK:
        raise SystemExit(f"--calls at most {len(pages) - BULK}")
    flags = syscalls.MPOL_MF_MOVE_ALL
    threading.Thread(target=probe, daemon=True).start()

    def timed(addresses: list[int], node: int) -> float:
        t0 = time.perf_counter()
        status = syscalls.move_pages(pid, addresses, [node] * len(addresses), flags)
        elapsed = time.perf_counter() - t0
        if set(status) != {node}:
            raise SystemExit(f"pages not on node {node}: {sorted(set(status))}")
        return elapsed

    in_place = [timed([pages[-1]], 0) for _ in range(calls)]
    one_page = [timed([pages[i]], 1) for i in range(calls)]
    bulk = timed(pages[calls : calls + BULK], 1)
    stop.set()
    memory.close()
    fixed = statistics.median(in_place)
    return {
        "calls": calls,
        "in_place_ms_median": round(fixed * 1000, 3),
        "in_place_ms_p90": round(sorted(in_place)[len(in_place) * 9 // 10] * 1000, 3),
        "one_page_move_ms_median": round(statistics.median(one_page) * 1000, 3),
        "bulk_pages": BULK,
        "bulk_ms": round(bulk * 1000, 1),
        "us_per_page": round(bulk / BULK * 1e6, 1),
        "fixed_share_of_20ms": round(fixed / 0.020, 4),
    }


def _report(result: dict[str, Any]) -> None:
    print(
        f"2-node guest (TCG), a mapping thread beside: one call sending a page where it is "
        f"{result['in_place_ms_median']} ms (median of {result['calls']}; p90 "
        f"{result['in_place_ms_p90']} ms), moving one page {result['one_page_move_ms_median']}"
        f" ms, {result['bulk_pages']:,} pages in one call {result['bulk_ms']} ms "
        f"({result['us_per_page']} µs a page); the fixed cost is "
        f"{float(result['fixed_share_of_20ms']) * 100:.1f} % of a 20 ms chunk"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    args = guest_options(ap).parse_args()
    return guest_main(args, Path(__file__), lambda a: _inside(a.calls), _report)


if __name__ == "__main__":
    raise SystemExit(main())
