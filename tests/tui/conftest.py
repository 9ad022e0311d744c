"""Shared helpers for the TUI tests: a fake-source app and waiting for its workers."""

from __future__ import annotations

from textual.pilot import Pilot

from numatui.app import NumatuiApp


async def settle(pilot: Pilot[None]) -> None:
    """Let every worker finish and every message it posted be handled."""
    app = pilot.app
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()
    # DataTable measures new rows when idle: give it that moment so column widths
    # behind a modal are final before a snapshot is taken.
    await pilot.pause(0.05)


def quiet_app(source: object, **kwargs: object) -> NumatuiApp:
    """An app that refreshes only when asked (snapshots and counts stay deterministic)."""
    return NumatuiApp(source, refresh_interval=3600.0, **kwargs)  # type: ignore[arg-type]
