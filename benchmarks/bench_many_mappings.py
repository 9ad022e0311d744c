"""Moving a process of many small mappings: numatui paced and single call against migratepages.

    python3 benchmarks/bench_many_mappings.py [--mappings 10000] [--rounds 3] [--json]

Run on the host, it boots the 2-node QEMU guest (virtme-ng, see
scripts/provision-vm.sh) and runs itself inside with `--inside`. There a workload
process maps `--mappings` regions of four pages each on node 0, split into that
many VMAs by alternating protections (tests/tooling/mappings.py), as a JVM, a
database or a malloc arena-heavy server has thousands. Each round moves it
0 -> 1 and back with each method, the order alternating:

  - numactl's `migratepages PID 0 1`  (one migrate_pages call)
  - numatui's single call (the MigrationJob as `numatui migrate` runs it)
  - numatui paced (`numatui migrate --stall-ms 20`: move_pages in chunks)

Reported per method: the move's wall time (median) and its ratio to
migratepages, and for the paced mover its move_pages calls per move. Every move
is checked: the workload's pages all on the target afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from guest import guest_main, guest_options  # noqa: E402

WORKLOAD = """
import sys
sys.path.insert(0, {root!r})
from numatui.kernel.nodemask import NodeMask
from tests.tooling.mappings import many_mappings
from tests.tooling.mempolicy import MPOL_BIND, MPOL_DEFAULT, set_mempolicy
set_mempolicy(MPOL_BIND, NodeMask({{0}}))
region = many_mappings({count})
set_mempolicy(MPOL_DEFAULT)
print(len(region), flush=True)
sys.stdin.read()
"""


def _inside(mappings: int, rounds: int) -> dict[str, Any]:
    from numatui.kernel import migration, syscalls
    from numatui.kernel.live import LiveSource
    from numatui.kernel.scanner import ProcessScanner
    from numatui.kernel.topology import TopologyReader

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    script = WORKLOAD.format(root=str(ROOT), count=mappings)
    work = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert work.stdout is not None and work.stdin is not None
    size = int(work.stdout.readline())
    pid = work.pid
    scanner = ProcessScanner()
    source = LiveSource(audit_path=Path("/tmp/numatui-bench-audit.jsonl"))
    privileges = source.privileges()
    topology_reader = TopologyReader()
    vmas = sum(1 for _ in Path(f"/proc/{pid}/maps").read_text().splitlines())
    calls: list[int] = []

    def counted_move_pages(
        p: int, addresses: Any, nodes: Any, flags: int
    ) -> list[int]:  # the kernel's call, counted
        calls[-1] += 1
        return syscalls.move_pages(p, addresses, nodes, flags)

    def job(stoppable: bool) -> Callable[[int, int], None]:
        def run(src: int, dst: int) -> None:
            plan = source.plan(pid, {src}, {dst}, stoppable=stoppable)
            calls.append(0)
            migration.MigrationJob(
                plan,
                scanner=scanner,
                privileges=privileges,
                topology_reader=topology_reader,
                move_pages=counted_move_pages,
            ).run(lambda _sample: None)

        return run

    def migratepages(src: int, dst: int) -> None:
        tool = shutil.which("migratepages") or "migratepages"
        subprocess.run([tool, str(pid), str(src), str(dst)], check=True)

    methods: dict[str, Callable[[int, int], None]] = {
        "migratepages": migratepages,
        "numatui_single_call": job(False),
        "numatui_paced": job(True),
    }
    walls: dict[str, list[float]] = {name: [] for name in methods}
    paced_calls: list[int] = []
    try:
        names = list(methods)
        for r in range(rounds + 1):  # round 0 warms the guest's memory, not counted
            for name in names if r % 2 else names[::-1]:
                for src, dst in ((0, 1), (1, 0)):
                    t0 = time.perf_counter()
                    methods[name](src, dst)
                    wall = time.perf_counter() - t0
                    left = {n: b for n, b in scanner.node_pages(pid).items() if n != dst and b}
                    if sum(left.values()) > 64 * 4096:  # the interpreter may fault a few back
                        raise SystemExit(f"{name} left {left} off node {dst}")
                    if r:
                        walls[name].append(wall)
                        if name == "numatui_paced":
                            paced_calls.append(calls[-1])
    finally:
        work.stdin.close()
        work.wait(timeout=60)
    peer = statistics.median(walls["migratepages"])
    return {
        "mappings": mappings,
        "vmas": vmas,
        "bytes": size,
        "moves_per_method": 2 * rounds,
        "wall_s_median": {k: round(statistics.median(v), 3) for k, v in walls.items()},
        "ratio_to_migratepages": {
            k: round(peer / statistics.median(v), 3) for k, v in walls.items()
        },
        "per_move_s": {k: [round(t, 3) for t in v] for k, v in walls.items()},
        "paced_move_pages_calls_per_move": statistics.median(paced_calls),
    }


def _report(result: dict[str, Any]) -> None:
    print(
        f"{result['mappings']:,} mappings of 4 pages ({result['vmas']:,} VMAs in all), "
        f"2-node guest (TCG), {result['moves_per_method']} moves a method"
    )
    walls = result["wall_s_median"]
    ratios = result["ratio_to_migratepages"]
    for name, wall in walls.items():
        print(f"  {name:<20} wall {wall:7.3f} s   throughput {ratios[name]:.2f}x migratepages")
    print(f"  paced: {result['paced_move_pages_calls_per_move']} move_pages calls a move")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mappings", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = guest_options(ap).parse_args()
    return guest_main(args, Path(__file__), lambda a: _inside(a.mappings, a.rounds), _report)


if __name__ == "__main__":
    raise SystemExit(main())
