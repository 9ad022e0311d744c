"""Run a benchmark script inside the 2-node QEMU guest and read back its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
