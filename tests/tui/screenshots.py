"""Regenerate the README screenshots: `python -m tests.tui.screenshots` from the repo root.

Same fake machine as the snapshot tests (4 nodes, two memory-only, sparse ids),
so the pictures are reproducible.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.tui.conftest import quiet_app, settle
from tests.tui.fakes import FakeSource, MigrationScript, four_nodes

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SIZE = (120, 34)
PID = 396  # envoy: most of its memory on memory-only node 5, its CPUs on node 0


async def shoot() -> None:
    script = MigrationScript(
        steps=8,
        step_s=0.35,
        fraction_moved=0.96,
        explanations=("pages shared with other processes stay without CAP_SYS_NICE",),
    )
    source = FakeSource(topology_factory=lambda t: four_nodes(t, sparse=True), script=script)
    app = quiet_app(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.save_screenshot("processes.svg", str(ASSETS))
        app.screen.select_pid(PID)  # type: ignore[attr-defined]
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        app.save_screenshot("migration.svg", str(ASSETS))


if __name__ == "__main__":
    asyncio.run(shoot())
