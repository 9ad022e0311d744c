"""SVG snapshots of every screen at 80x24 and 160x48 (pytest-textual-snapshot).

Deterministic: the fake machine is generated from a fixed seed, the clock-like
values (taken_at, elapsed) come from the fake, the app refreshes only when
asked, and every shot waits for the workers first. Update with
`pytest tests/tui --snapshot-update` only after looking at the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from .conftest import quiet_app, settle
from .fakes import FakeSource, MigrationScript, RecordedSource, four_nodes, no_numa

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
MISPLACED_PID = 396  # envoy: 1.5 GiB, three quarters on memory-only node 5
RECORDED_LONG_COMMAND_PID = 266  # four_nodes workload: a `python3 -c` script


def sparse_source(**kwargs: Any) -> FakeSource:
    return FakeSource(topology_factory=lambda t: four_nodes(t, sparse=True), **kwargs)


def keys(*pressed: str, refreshes: int = 0) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for _ in range(refreshes):
            await pilot.press("u")
            await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


async def select_misplaced(pilot: Pilot[None]) -> None:
    await settle(pilot)
    pilot.app.screen.select_pid(MISPLACED_PID)  # type: ignore[attr-defined]
    await pilot.pause()


def then(
    *steps: Callable[[Pilot[None]], Awaitable[None]],
) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        for step in steps:
            await step(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_processes(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(quiet_app(sparse_source()), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_nodes(snap_compare: Any, size: tuple[int, int]) -> None:
    app = quiet_app(sparse_source())
    assert snap_compare(app, terminal_size=size, run_before=keys("N", refreshes=8))


@pytest.mark.parametrize("size", SIZES)
def test_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    app = quiet_app(sparse_source())
    assert snap_compare(app, terminal_size=size, run_before=then(select_misplaced, keys("enter")))


@pytest.mark.parametrize("size", SIZES)
def test_migrate_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    app = quiet_app(sparse_source())
    assert snap_compare(app, terminal_size=size, run_before=then(select_misplaced, keys("m")))


@pytest.mark.parametrize("size", SIZES)
def test_migration_summary(snap_compare: Any, size: tuple[int, int]) -> None:
    script = MigrationScript(
        steps=6,
        step_s=0.4,
        fraction_moved=0.9,
        explanations=("512 pages are shared with other processes and stay without CAP_SYS_NICE",),
    )
    app = quiet_app(sparse_source(script=script))
    assert snap_compare(
        app, terminal_size=size, run_before=then(select_misplaced, keys("m", "enter"))
    )


@pytest.mark.parametrize("size", SIZES)
def test_no_numa(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        quiet_app(FakeSource(topology_factory=no_numa)), terminal_size=size, run_before=keys()
    )


def test_help(snap_compare: Any) -> None:
    assert snap_compare(
        quiet_app(sparse_source()), terminal_size=(80, 24), run_before=keys("question_mark")
    )


def test_detail_long_command(snap_compare: Any) -> None:
    """A 1,400-character command line (a `python3 -c` script) folds to one line at 80x24."""

    async def open_detail(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.screen.select_pid(RECORDED_LONG_COMMAND_PID)  # type: ignore[attr-defined]
        await pilot.pause()

    app = quiet_app(RecordedSource("four_nodes"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=then(open_detail, keys("enter")))


def test_groups(snap_compare: Any) -> None:
    assert snap_compare(quiet_app(sparse_source()), terminal_size=(80, 24), run_before=keys("g"))
