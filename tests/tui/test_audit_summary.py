"""The migration summary says whether the audit trail recorded the migration, and where."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from textual.widgets import Static

from numatui.model.migration import AuditStatus, MigrationPlan, MigrationResult
from numatui.screens.migration import MigrationScreen
from numatui.source import ProgressCallback

from .conftest import open_dialog, quiet_app, settle
from .fakes import FakeSource


def text_of(screen: object, selector: str) -> str:
    assert hasattr(screen, "query_one")
    return str(screen.query_one(selector, Static).render())


class AuditedSource(FakeSource):
    def __init__(self, status: AuditStatus) -> None:
        super().__init__()
        self.status = status

    def migrate(
        self,
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        return replace(super().migrate(plan, on_progress, cancel), audit=self.status)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (AuditStatus("/root/x/audit.jsonl", True), "audit: recorded in /root/x/audit.jsonl"),
        (
            AuditStatus("/tmp/[b]log", False, "/tmp/[b]log is not a regular file (a FIFO)"),
            "audit: NOT recorded in /tmp/[b]log: /tmp/[b]log is not a regular file (a FIFO)",
        ),
    ],
    ids=["written", "not-written"],
)
async def test_the_summary_shows_the_audit_status(status: AuditStatus, shown: str) -> None:
    app = quiet_app(AuditedSource(status))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await open_dialog(pilot, 100 + 3 * 37)
        await pilot.press("enter")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MigrationScreen)
        assert shown in text_of(view, "#summary")
