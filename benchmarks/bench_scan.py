"""Scan benchmark: numatui's per-node scan against `numastat -p` on the same pids.

    python3 benchmarks/bench_scan.py [--procs 300 2000] [--mappings 300] [--rounds 7]

For each N it spawns N idle processes (each with about `--mappings` VMAs),
then times, interleaved in the same rounds so machine noise hits both alike:
  - `numastat -p PID...` (numactl's C tool, one run over all pids),
  - numatui's full scan of those pids (every numa_maps read and parsed),
  - numatui's steady-state refresh (the same scan given the previous one:
    unchanged processes are skipped).
It prints medians and the ratios to numastat; `--json` for machines.
Targets (issue 5): full <= 1.0x numastat, steady <= 0.3x.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers import idle_processes

from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader


def _time(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def bench(n: int, mappings: int, rounds: int) -> dict[str, float]:
    numastat = shutil.which("numastat")
    if numastat is None:
        raise SystemExit("numastat not found: apt-get install numactl")
    topology = TopologyReader().read()
    scanner = ProcessScanner()
    with idle_processes(n, mappings) as pids:
        cmd = [numastat, "-p", *map(str, pids)]
        full: list[float] = []
        steady: list[float] = []
        peer: list[float] = []
        scanner.scan(pids=pids, topology=topology)  # warm caches alike for both tools
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        for _ in range(rounds):
            peer.append(_time(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)))
            t0 = time.perf_counter()
            scan = scanner.scan(pids=pids, topology=topology)
            full.append(time.perf_counter() - t0)
            assert len(scan.processes) == n, (len(scan.processes), n)
            t0 = time.perf_counter()
            # The refresh a running app does: given the scan just made by this scanner.
            again = scanner.scan(scan, pids=pids, topology=topology)
            steady.append(time.perf_counter() - t0)
    med = {
        k: statistics.median(v) for k, v in (("numastat", peer), ("full", full), ("steady", steady))
    }
    return {
        "procs": n,
        "mappings": mappings,
        "numastat_s": med["numastat"],
        "full_s": med["full"],
        "steady_s": med["steady"],
        "full_ratio": med["full"] / med["numastat"],
        "steady_ratio": med["steady"] / med["numastat"],
        "skipped_last": again.skipped_unchanged,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[300, 2000])
    ap.add_argument("--mappings", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [bench(n, args.mappings, args.rounds) for n in args.procs]
    if args.json:
        print(json.dumps({"machine": platform.platform(), "results": rows}, indent=2))
        return 0
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    head = ("procs", "numastat", "full", "steady", "full/peer", "steady/peer")
    print("{:>6} {:>10} {:>10} {:>10} {:>10} {:>12}".format(*head))
    for r in rows:
        print(
            f"{r['procs']:>6} {r['numastat_s'] * 1000:>8.1f}ms {r['full_s'] * 1000:>8.1f}ms "
            f"{r['steady_s'] * 1000:>8.1f}ms {r['full_ratio']:>9.2f}x {r['steady_ratio']:>11.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
