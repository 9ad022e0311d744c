"""Run a benchmark script inside the 2-node QEMU guest and read back its JSON line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_in_two_node_guest(script: Path, options: str) -> dict[str, object]:
    """`script --inside OPTIONS` in a 2-node guest (TCG); its last line starting with `{`."""
    kernels = sorted(Path("/boot").glob("vmlinuz-*-amd64"))
    kernel = os.environ.get("NUMATUI_KERNEL") or (str(kernels[-1]) if kernels else "")
    if not kernel or shutil.which("vng") is None:
        raise SystemExit("needs virtme-ng and a Debian kernel: run scripts/provision-vm.sh as root")
    # Byte-compiled as an installed package is (pip compiles on install): otherwise
    # every `numatui migrate` in the guest compiles numatui's sources first.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "numatui")], check=True)
    inner = (
        f"cd {ROOT} && PYTHONDONTWRITEBYTECODE=1 {sys.executable} {script.resolve()} "
        f"--inside {options}"
    )
    proc = subprocess.run(
        ["timeout", "1500", "vng", "--disable-kvm", "-r", kernel, "-m", "2G", "-p", "2",
         "--numa", "1G,cpus=0", "--numa", "1G,cpus=1", "--", inner],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise SystemExit(
        f"guest run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def guest_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options every guest benchmark has: `--json`, and the hidden `--inside`."""
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the guest's result as JSON")
    return parser


def guest_main(
    args: argparse.Namespace,
    script: Path,
    measure: Callable[[argparse.Namespace], Mapping[str, Any]],
    report: Callable[[dict[str, Any]], None],
) -> int:
    """The main of a benchmark measured in the 2-node guest (options from `guest_options`).

    On the host: boot the guest, run `script` there with this command's own options and
    `--inside`, then `report` the result it printed (with `--json`: print it as JSON).
    In the guest: `measure` and print the result as one JSON line.
    """
    if args.inside:
        print(json.dumps(measure(args)), flush=True)
        return 0
    # The options as typed: whatever the benchmark takes reaches its run in the guest.
    options = shlex.join(arg for arg in sys.argv[1:] if arg != "--json")
    result = run_in_two_node_guest(script, options)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0
