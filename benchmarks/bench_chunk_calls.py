"""What the paced mover's calls cost: numatui's chunked mover against every page address.

    python3 benchmarks/bench_chunk_calls.py [--size-mib 256] [--rounds 3]

Run on the host, it boots the 2-node QEMU guest and runs itself inside with
`--inside`. There it maps `--size-mib` on node 0 twice, once as transparent
huge pages and once as base pages only (MADV_NOHUGEPAGE), and moves each
0 -> 1 and back with two movers, interleaved, while a thread of the same
process maps, touches and unmaps a page in a loop (as in bench_stall.py):

  - every address: move_pages(2) given every 4 KiB page address of a chunk,
    chunks sized by numatui's pacer to 20 ms (what numatui did before);
  - numatui: `numatui.kernel.chunked.move_in_chunks`, which sends a huge
    page's first and last address only and every address of the rest.

Reported per page kind and mover: the move's wall time (median), the page
addresses the kernel looked up (each takes the mmap lock), and the probe's
p99 and longest iteration. Every move is checked: all pages on the target.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from guest import guest_main, guest_options  # noqa: E402

PAGE = mmap.PAGESIZE
HUGE = 2 * 1024 * 1024


def _inside(size_mib: int, rounds: int) -> dict[str, object]:
    from numatui.kernel import chunked, syscalls
    from numatui.kernel.nodemask import NodeMask
    from numatui.model.memory import MappedRegion, MemoryKind
    from numatui.model.migration import Pacing
    from tests.tooling.mempolicy import MPOL_BIND, MPOL_DEFAULT, set_mempolicy

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    pid, size = os.getpid(), size_mib * 1024 * 1024
    looked_up = [0]

    def counted(pid: int, a: Sequence[int], t: Sequence[int] | None, f: int) -> list[int]:
        looked_up[0] += len(a)
        return syscalls.move_pages(pid, a, t, f)

    def every_address(start: int, dst: int) -> None:
        pacer = chunked.ChunkPacer(Pacing())
        address = start
        while address < start + size:
            stop = min(start + size, address + pacer.pages * PAGE)
            began = time.monotonic()
            pages = range(address, stop, PAGE)
            counted(pid, pages, [dst] * len(pages), syscalls.MPOL_MF_MOVE_ALL)
            pacer.record(len(pages), PAGE, time.monotonic() - began, full=stop < start + size)
            address = stop

    def numatui(start: int, dst: int) -> None:
        region = MappedRegion(
            start, "default", MemoryKind.ANON, None, {1 - dst: size // PAGE}, PAGE
        )
        walk = chunked.ChunkWalk({1 - dst: dst}, ((region, start + size),))
        chunked.move_in_chunks(
            pid, walk, flags=syscalls.MPOL_MF_MOVE_ALL, move_pages=counted, pacing=Pacing()
        )

    movers: dict[str, Callable[[int, int], None]] = {
        "every_address": every_address,
        "numatui": numatui,
    }
    recording = threading.Event()
    iterations: list[float] = []

    def probe() -> None:
        while True:
            recording.wait()
            t0 = time.perf_counter()
            page = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            page[0] = 1
            page.close()
            iterations.append(time.perf_counter() - t0)

    threading.Thread(target=probe, daemon=True).start()
    out: dict[str, object] = {}
    for kind in ("thp", "base"):
        set_mempolicy(MPOL_BIND, NodeMask({0}))
        memory = mmap.mmap(-1, size + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        start = -(-base // HUGE) * HUGE
        advice = mmap.MADV_HUGEPAGE if kind == "thp" else mmap.MADV_NOHUGEPAGE
        memory.madvise(advice, start - base, size)
        for offset in range(start - base, start - base + size, PAGE):
            memory[offset] = 1
        set_mempolicy(MPOL_DEFAULT)
        walls: dict[str, list[float]] = {name: [] for name in movers}
        lookups: dict[str, list[int]] = {name: [] for name in movers}
        p99: dict[str, list[float]] = {name: [] for name in movers}
        worst: dict[str, list[float]] = {name: [] for name in movers}
        for r in range(rounds):
            for name in list(movers) if r % 2 == 0 else list(movers)[::-1]:
                for dst in (1, 0):
                    looked_up[0] = 0
                    iterations.clear()
                    recording.set()
                    t0 = time.perf_counter()
                    movers[name](start, dst)
                    walls[name].append(time.perf_counter() - t0)
                    recording.clear()
                    time.sleep(0.05)  # the probe's last iteration ends
                    lookups[name].append(looked_up[0])
                    probe_ms = sorted(x * 1000 for x in iterations) or [0.0]
                    p99[name].append(probe_ms[len(probe_ms) * 99 // 100])
                    worst[name].append(probe_ms[-1])
                    where = syscalls.move_pages(pid, range(start, start + size, PAGE))
                    if set(where) != {dst}:
                        raise SystemExit(f"{name} left pages behind on {kind}: {set(where)}")
        out[kind] = {
            name: {
                "wall_s_median": round(statistics.median(walls[name]), 3),
                "walls_s": [round(w, 3) for w in walls[name]],
                "addresses_looked_up": statistics.median(lookups[name]),
                "probe_p99_ms_median": round(statistics.median(p99[name]), 2),
                "probe_max_ms_worst": round(max(worst[name]), 1),
            }
            for name in movers
        }
        memory.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = guest_options(ap).parse_args()

    def report(result: dict[str, Any]) -> None:
        print(f"{args.size_mib} MiB, 2-node guest (TCG), {2 * args.rounds} moves per mover")
        for kind, movers in result.items():
            every = movers["every_address"]["wall_s_median"]
            for name, m in movers.items():
                print(
                    f"  {kind:4} {name:13} wall {m['wall_s_median']:6.3f} s "
                    f"({every / m['wall_s_median']:.2f}x every address)  "
                    f"addresses {m['addresses_looked_up']:>9,.0f}  "
                    f"probe p99 {m['probe_p99_ms_median']:5.2f} ms  "
                    f"max {m['probe_max_ms_worst']:6.1f} ms"
                )

    return guest_main(args, Path(__file__), lambda a: _inside(a.size_mib, a.rounds), report)


if __name__ == "__main__":
    raise SystemExit(main())
