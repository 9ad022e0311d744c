"""What one TLB shootdown costs, on the host and in the 2-node guest (TCG).

    python3 benchmarks/bench_shootdown.py [--iterations 20000] [--pairs 3] [--json]

bench_stall.py counts about 5,000 TLB shootdown interrupts in the guest per paced
move of 512 MiB (one per migratepages move, which stops the workload's thread).
This prices one: `shootdown.c` (built here with gcc) maps, touches and unmaps a page
in a loop on CPU 0, alone and then with a spinning thread of the same process on
CPU 1, which makes every munmap interrupt CPU 1 (/proc/interrupts' TLB row counts
them). The extra time per iteration over the shootdowns per iteration is what one
costs the unmapping thread. Run on the host, then in the guest (`--inside`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guest import run_in_two_node_guest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(__file__).resolve().with_name("shootdown.c")


def _build(directory: Path) -> Path:
    binary = directory / "shootdown"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SystemExit("needs gcc (apt install gcc)")
    subprocess.run([compiler, "-O2", "-pthread", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def _measure(binary: Path, iterations: int, pairs: int) -> dict[str, object]:
    out = subprocess.run(
        [str(binary), str(iterations), str(pairs)], capture_output=True, text=True, check=True
    ).stdout
    phases = json.loads(out)["phases"]
    alone = [p["alone_us"] for p in phases]
    spinning = [p["spinning_us"] for p in phases]
    shootdowns = [p["spinning_shootdowns"] for p in phases]
    per = [
        (p["spinning_us"] - p["alone_us"]) / p["spinning_shootdowns"]
        for p in phases
        if p["spinning_shootdowns"] > 0.5  # the spinner ran: a clean pair
    ]
    return {
        "alone_us_per_iteration": statistics.median(alone),
        "spinning_us_per_iteration": statistics.median(spinning),
        "shootdowns_per_iteration_spinning": statistics.median(shootdowns),
        "us_per_shootdown": statistics.median(per) if per else None,
        "us_per_shootdown_each_pair": [round(x, 2) for x in per],
        "phases": phases,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--binary", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.inside:
        print(json.dumps(_measure(Path(args.binary), args.iterations, args.pairs)), flush=True)
        return 0
    # In the checkout: the guest sees the host's files, but has /tmp and /var/tmp of its own.
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".shootdown-") as tmp:
        binary = _build(Path(tmp))
        host = _measure(binary, args.iterations, args.pairs)
        options = f"--iterations {args.iterations} --pairs {args.pairs} --binary {binary}"
        guest = run_in_two_node_guest(Path(__file__), options)
    result = {"host": host, "guest_tcg": guest}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, m in result.items():
        per = m["us_per_shootdown"]
        print(
            f"{name:<10} map/touch/unmap alone {m['alone_us_per_iteration']:7.2f} us, "
            f"with a spinning thread on the other CPU {m['spinning_us_per_iteration']:7.2f} us "
            f"({m['shootdowns_per_iteration_spinning']:.2f} shootdowns an iteration): "
            + (f"{per:.1f} us a shootdown" if per is not None else "the spinner never ran")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
