"""Quitting while a source call blocks must not keep the process alive (Textual #3966)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, threading
    from tests.tui.fakes import FakeSource, MigrationScript
    from tests.tui.conftest import quiet_app, settle
    from numatui.screens.migration import MigrationScreen

    never = threading.Event()  # the migration blocks forever, ignoring cancel

    async def main() -> None:
        app = quiet_app(FakeSource(script=MigrationScript(block=never)))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            app.screen.select_pid(211)
            await pilot.press("m")
            await settle(pilot)
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, MigrationScreen), app.screen
            await pilot.press("q")
        print("app closed", flush=True)

    asyncio.run(main())
    """
)


def test_quit_during_a_blocked_migration_exits_promptly() -> None:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-2000:]
    assert "app closed" in done.stdout
    assert elapsed < 20, f"the process took {elapsed:.1f} s to exit"
