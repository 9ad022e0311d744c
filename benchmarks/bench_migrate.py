"""Migration benchmark: numatui against numactl's `migratepages` on the same workload.

    python3 benchmarks/bench_migrate.py [--size-mib 512] [--rounds 4] [--methods NAME ...]

Run on the host, it boots the 2-node QEMU guest (virtme-ng, see
scripts/provision-vm.sh) and runs itself inside with `--inside`. In the guest
one workload holds `--size-mib` of private anonymous memory; each round moves
it 0 -> 1 and back with each method, alternating which goes first:

  - `migratepages PID 0 1`                      (numactl, C)
  - `numatui migrate PID 0 1 --yes --json`      (our CLI, whole command)
  - numatui's MigrationJob in-process, progress sampling on (what the CLI runs
    once confirmed: snapshot, migrate_pages with samples, snapshot, verdict)
  - the same job moving in stoppable chunks with move_pages (what the app runs)
  - the bare migrate_pages syscall, no sampling (the floor)

Every move is checked: all pages must be on the target afterwards.
Reported: medians and ratios to migratepages. The guest is TCG-emulated (no
KVM here), so absolute times are slow and noisy; ratios are what to read.
"""

from __future__ import annotations

import argparse
import os
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

from guest import guest_main, guest_options  # noqa: E402

sys.path.insert(0, str(ROOT))


def _guest_main(size_mib: int, rounds: int, only: list[str] | None) -> dict[str, object]:
    from numatui.kernel import migration, syscalls
    from numatui.kernel.live import LiveSource
    from numatui.kernel.nodemask import NodeMask
    from numatui.kernel.scanner import ProcessScanner
    from numatui.kernel.topology import TopologyReader
    from tests.tooling.workload import Workload

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    scanner = ProcessScanner()
    # What the live source hands its job.
    source = LiveSource(audit_path=Path("/tmp/numatui-bench-audit.jsonl"))
    handed: dict[str, Any] = {
        "scanner": scanner,
        "privileges": source.privileges(),
        "topology_reader": TopologyReader(),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": "/tmp"}

    def on_node(pid: int, node: int) -> bool:
        placed = scanner.node_pages(pid)
        other = sum(b for n, b in placed.items() if n != node)
        return other <= 64 * 4096  # the interpreter's own few pages may move back by faults

    with Workload.start(kind="private", size_mib=size_mib, node=0) as w:
        pid = w.pid

        def cmd(args: list[str]) -> Callable[[int, int], None]:
            def run(src: int, dst: int) -> None:  # whole command: start-up included
                subprocess.run(
                    [a.format(pid=pid, src=src, dst=dst) for a in args],
                    check=False,
                    stdout=subprocess.DEVNULL,
                    env=env,
                )

            return run

        def job(src: int, dst: int) -> float:
            # The plan is made before the user confirms; the clock starts at "go".
            plan = source.plan(pid, {src}, {dst})
            t0 = time.perf_counter()
            migration.run_migration(plan, on_progress=lambda _s: None, **handed)
            return time.perf_counter() - t0

        def job_chunked(src: int, dst: int) -> float:
            # What the app runs: stoppable, move_pages a chunk at a time.
            plan = source.plan(pid, {src}, {dst}, stoppable=True)
            t0 = time.perf_counter()
            migration.run_migration(plan, on_progress=lambda _s: None, **handed)
            return time.perf_counter() - t0

        def bare(src: int, dst: int) -> None:
            syscalls.migrate_pages(pid, NodeMask({src}), NodeMask({dst}))

        methods: dict[str, Callable[[int, int], float | None]] = {
            "migratepages": cmd(
                [shutil.which("migratepages") or "migratepages", "{pid}", "{src}", "{dst}"]
            ),
            "numatui_cli": cmd(
                [
                    sys.executable,
                    "-m",
                    "numatui",
                    "migrate",
                    "{pid}",
                    "{src}",
                    "{dst}",
                    "--yes",
                    "--json",
                ]
            ),
            "numatui_job": job,
            "numatui_job_chunked": job_chunked,
            "bare_syscall": bare,
        }
        # Fixed costs of any Python command, to read the CLI figure against.
        startup = {
            "python_startup": cmd([sys.executable, "-c", "pass"]),
            "numatui_import": cmd([sys.executable, "-c", "import numatui.cli"]),
        }
        fixed: dict[str, list[float]] = {name: [] for name in startup}
        for _ in range(3):
            for name, run in startup.items():
                t0 = time.perf_counter()
                run(0, 0)
                fixed[name].append(time.perf_counter() - t0)
        if only:
            methods = {k: v for k, v in methods.items() if k in only or k == "migratepages"}
        times: dict[str, list[float]] = {name: [] for name in methods}
        names = list(methods)
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                for src, dst in ((0, 1), (1, 0)):
                    t0 = time.perf_counter()
                    own_clock = methods[name](src, dst)
                    wall = time.perf_counter() - t0
                    times[name].append(own_clock if own_clock is not None else wall)
                    if not on_node(pid, dst):
                        raise SystemExit(f"{name} did not move the pages {src} -> {dst}")
        checksum_ok = w.checksum() == w.info["checksum"]
    med = {k: statistics.median(v) for k, v in times.items()}
    peer = med["migratepages"]
    # Each move against migratepages' move of the same direction in the same round
    # (run back to back): slow drifts of the emulated machine cancel out of these.
    paired = {
        k: statistics.median(a / b for a, b in zip(v, times["migratepages"], strict=True))
        for k, v in times.items()
    }
    return {
        "size_mib": size_mib,
        "moves_per_method": 2 * rounds,
        "median_s": med,
        "ratio_to_migratepages": {k: v / peer for k, v in med.items()},
        "paired_ratio_median": paired,
        "per_move_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "checksum_unchanged": checksum_ok,
        "fixed_costs_s": {k: statistics.median(v) for k, v in fixed.items()},
    }


def _report(result: dict[str, Any]) -> None:
    print(
        f"{result['size_mib']} MiB private anonymous, 2-node guest (TCG), "
        f"{result['moves_per_method']} moves per method"
    )
    med = result["median_s"]
    ratios = result["ratio_to_migratepages"]
    paired = result["paired_ratio_median"]
    print("  method          median    ratio of medians   median of paired ratios")
    for name in med:
        print(f"  {name:<14} {med[name]:7.3f} s   {ratios[name]:5.2f}x   {paired[name]:5.2f}x")
    print(f"  data checksum unchanged: {result['checksum_unchanged']}")
    for name, seconds in result["fixed_costs_s"].items():
        print(f"  fixed cost: {name:<15} {seconds:7.3f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument(
        "--methods",
        nargs="+",
        help="only these (migratepages always runs): numatui_cli numatui_job "
        "numatui_job_chunked bare_syscall",
    )
    args = guest_options(ap).parse_args()
    return guest_main(
        args, Path(__file__), lambda a: _guest_main(a.size_mib, a.rounds, a.methods), _report
    )


if __name__ == "__main__":
    raise SystemExit(main())
