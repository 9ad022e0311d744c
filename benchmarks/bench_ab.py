"""Two checkouts of numatui against each other and numastat, whole commands, interleaved.

    python3 benchmarks/bench_ab.py OTHER_CHECKOUT [--procs 2000] [--mappings 300] [--rounds 5]

For a change to the scan: `git worktree add /tmp/before <commit>` (or a clone), then
this command from the new checkout. N idle processes (benchmarks/workers.py); each
round runs `numastat -p PIDS` and `numatui ps [--json] --pid PIDS` from both
checkouts, the order reversed every other round; medians of wall and CPU
(`os.wait4`) and their ratios to numastat. Both checkouts are byte-compiled first,
as pip installs them.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workers import idle_processes  # noqa: E402


def numatui(root: Path, *args: str) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "from numatui.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code, *args]


def run(command: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole command."""
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{command[:4]}... exited with status {status}")
    return time.monotonic() - started, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("other", type=Path, help="the other checkout (its root directory)")
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--mappings", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    this, other = HERE.parent, args.other.resolve()
    for root in (this, other):
        compileall.compile_dir(str(root / "numatui"), quiet=1)
    with idle_processes(args.procs, args.mappings) as pids:
        words = [str(p) for p in pids]
        commands = {"numastat -p PIDS": ["numastat", "-p", *words]}
        for label, root in (("other", other), ("this", this)):
            commands[f"ps --pid PIDS ({label})"] = numatui(root, "ps", "--pid", *words)
            commands[f"ps --json --pid PIDS ({label})"] = numatui(
                root, "ps", "--json", "--pid", *words
            )
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        time.sleep(2)  # the workers' start settles
        for round_number in range(args.rounds):
            names = list(commands)
            for name in names if round_number % 2 == 0 else names[::-1]:
                times[name].append(run(commands[name]))
    wall_base = statistics.median(w for w, _ in times["numastat -p PIDS"])
    cpu_base = statistics.median(c for _, c in times["numastat -p PIDS"])
    print(f"{args.procs} processes, {args.rounds} rounds; this: {this}, other: {other}")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"  {name:34s} wall {wall * 1000:8.0f} ms {wall / wall_base:5.2f}x"
            f"   CPU {cpu * 1000:8.0f} ms {cpu / cpu_base:5.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
