"""Shared helpers for the TUI tests: a fake-source app and waiting for its workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from numatui.app import NumatuiApp
from numatui.screens.migrate_dialog import MigrateDialog
from numatui.screens.processes import ProcessesScreen


async def workers_done(app: App[object]) -> None:
    """Every worker ended. A worker replaced by a newer one of its exclusive group ends
    cancelled (the app's list scan and its full scan land back to back, and each starts
    the rows worker): wait for its successor instead of failing on it."""
    for _ in range(20):
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            continue
    await app.workers.wait_for_complete()


async def settle(pilot: Pilot[None]) -> None:
    """Let every worker finish and every message it posted be handled."""
    app = pilot.app
    # Under load the first refresh's worker may not have started when the waits below
    # run: wait for its state to land first (bounded; a failing source never gives one).
    # The first refresh reads bytes per node only and the full one follows on a timer:
    # wait for that one too.
    for _ in range(250):
        state = getattr(app, "state", None)
        if state is not None and all(p.kinds_read for p in state.scan.processes):
            break
        if getattr(app, "last_error", None):
            break
        await pilot.pause(0.02)
    for _ in range(3):
        await workers_done(app)
        await pilot.pause()
    # The process table shows a refresh once its rows are built (a worker, then a message).
    for _ in range(250):
        state = getattr(app, "state", None)
        if all(
            screen.shown_state is state
            for screen in app.screen_stack
            # A covered process screen catches up only when shown again (idle output).
            if isinstance(screen, ProcessesScreen) and screen.is_mounted and screen.is_active
        ):
            break
        await workers_done(app)
        await pilot.pause(0.02)
    # DataTable measures new rows only when it goes idle; wait for that, or a snapshot
    # may catch columns still as wide as their headers (private flag: no public one).
    # Quiet twice in a row: rows added by a message handled during the first pause
    # (seen under load in CI: a table behind a modal shot at header width) count too.
    quiet = 0
    for _ in range(100):
        pending = [
            table
            for screen in app.screen_stack
            for table in screen.query(DataTable)
            if table._require_update_dimensions or table._new_rows
        ]
        if pending:
            quiet = 0
            for table in pending:
                table.check_idle()
        else:
            quiet += 1
            if quiet == 2:
                break
            await workers_done(app)
        await pilot.pause(0.02)
    await pilot.pause()


def quiet_app(source: object, **kwargs: object) -> NumatuiApp:
    """An app that refreshes only when asked (snapshots and counts stay deterministic)."""
    return NumatuiApp(source, refresh_interval=3600.0, **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def settled_app(
    source: object, *, size: tuple[int, int] = (160, 48), **kwargs: object
) -> AsyncIterator[tuple[NumatuiApp, Pilot[None]]]:
    """`quiet_app(source)` running headless at `size`, its first refresh shown."""
    app = quiet_app(source, **kwargs)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield app, pilot


async def open_dialog(pilot: Pilot[None], pid: int) -> MigrateDialog:
    """Select `pid` in the process table and open its migrate dialog."""
    screen = pilot.app.screen
    assert isinstance(screen, ProcessesScreen)
    screen.select_pid(pid)
    await pilot.press("m")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, MigrateDialog)
    return dialog


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `condition` while workers run (settle would wait for them to end).

    The deadline is wall time, generous for a loaded machine; tests hold their fake work
    open (MigrationScript.hold_after_first) so that what they wait for cannot pass by."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


@pytest.fixture(autouse=True)
def _private_audit_trail(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the trail's default is /var/log/numatui: tests never write to the machine's own."""
    directory = tmp_path_factory.mktemp("audit")
    directory.chmod(0o700)
    monkeypatch.setenv("NUMATUI_AUDIT_LOG", str(directory / "audit.jsonl"))
