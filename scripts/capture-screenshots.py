"""README screenshots of the real app on a real multi-node kernel.

    python3 scripts/capture-screenshots.py

Boots the four-memory-node guest the kernel tests use (virtme-ng, see
scripts/provision-vm.sh), starts three workloads there (one misplaced: its
memory on node 0, its only CPU on node 1; one on a memory-only node; one
local), runs numatui over the live guest and saves, into assets/:
processes.svg (the table), migrate-dialog.svg (the preview of the kernel's
pairs) and migration.svg (the outcome after the real migrate_pages).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
SIZE = (120, 34)
GUEST = [
    "-m", "2G", "-p", "3",
    "--numa", "512M,cpus=0", "--numa", "512M,cpus=1",
    "--numa", "0,cpus=2", "--numa", "512M", "--numa", "512M",
]  # fmt: skip


async def _wait(pilot: Any, what: str, ready: Any, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await pilot.pause(0.2)


async def _capture(out: Path) -> None:
    from numatui.app import NumatuiApp
    from numatui.kernel.live import LiveSource
    from numatui.screens.migrate_dialog import MigrateDialog
    from numatui.screens.migration import MigrationScreen
    from numatui.screens.processes import ProcessesScreen
    from tests.tooling.workload import Workload

    Path("/proc/sys/kernel/numa_balancing").write_text("0")
    with (
        Workload.start(kind="private", size_mib=192, node=0, cpu=1) as misplaced,
        Workload.start(kind="private", size_mib=128, node=3, cpu=0),
        Workload.start(kind="private", size_mib=96, node=1, cpu=1),
    ):
        audit = Path(tempfile.mkdtemp()) / "audit.jsonl"
        app = NumatuiApp(LiveSource(audit_path=audit))
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, ProcessesScreen)
            await _wait(
                pilot,
                "the first scan",
                lambda: app.state is not None and screen.shown_state is app.state,
            )
            screen.select_pid(misplaced.pid)
            await pilot.pause(0.5)
            app.save_screenshot("processes.svg", str(out))
            await pilot.press("m")
            await _wait(pilot, "the migrate dialog", lambda: isinstance(app.screen, MigrateDialog))
            await pilot.pause(1.0)
            app.save_screenshot("migrate-dialog.svg", str(out))
            await pilot.press("enter")
            await _wait(
                pilot,
                "the migration's outcome",
                lambda: isinstance(app.screen, MigrationScreen) and app.screen.result is not None,
            )
            await pilot.pause(1.0)
            app.save_screenshot("migration.svg", str(out))


def _boot() -> None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*-amd64"))
    kernel = os.environ.get("NUMATUI_KERNEL") or (str(kernels[-1]) if kernels else "")
    if not kernel or shutil.which("vng") is None:
        raise SystemExit("needs virtme-ng and a Debian kernel: run scripts/provision-vm.sh as root")
    out = Path(tempfile.mkdtemp(prefix="numatui-shots-"))
    inner = (
        f"cd {ROOT} && PYTHONDONTWRITEBYTECODE=1 {sys.executable} {Path(__file__).resolve()} "
        f"--inside {out}"
    )
    command = ["timeout", "900", "vng", "--disable-kvm", "-r", kernel, *GUEST]
    proc = subprocess.run(
        [*command, "--rwdir", str(out), "--", inner], capture_output=True, text=True, check=False
    )
    shots = sorted(out.glob("*.svg"))
    if proc.returncode != 0 or len(shots) != 3:
        raise SystemExit(f"guest run failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    for shot in shots:
        shutil.copy(shot, ASSETS / shot.name)
        print(f"assets/{shot.name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        sys.path.insert(0, str(ROOT))
        asyncio.run(_capture(args.inside))
        return 0
    _boot()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
