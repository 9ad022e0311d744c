"""A drain is on the audit trail as a whole: its attempt before anything moves (or
nothing moves), its outcome after with the same id. Runs against this machine's /proc
with the per-process move replaced by a spy (the machine has one node), the real audit code."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from numatui.errors import MigrationRefused
from numatui.kernel import audit
from numatui.kernel.live import LiveSource
from numatui.model.drain import DrainItem, DrainPlan
from numatui.model.migration import MigrationError, MigrationPlan, MigrationResult, ProgressCallback


def _plan_with_one_process(source: LiveSource) -> DrainPlan:
    node = min(source.topology().with_memory)
    own = MigrationPlan(os.getpid(), frozenset({node}), frozenset({node}), (), process_name="t")
    return DrainPlan(node, (DrainItem(os.getpid(), own.process_name, 4096, node, own),))


def _spy(source: LiveSource, log: Path, seen: list[list[audit.AuditEntry]]) -> None:
    def migrate(
        plan: MigrationPlan,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationResult:
        seen.append(audit.read_tail(log).entries)  # what is on record before it moves
        return MigrationResult.unchanged(plan, MigrationError("", "the test moves nothing"))

    source.migrate = migrate  # type: ignore[method-assign]


def test_drain_records_attempt_first_and_outcome_with_same_id(tmp_path: Path) -> None:
    log = tmp_path / "trail" / "audit.jsonl"
    seen: list[list[audit.AuditEntry]] = []
    with LiveSource(audit_path=log) as source:
        plan = _plan_with_one_process(source)
        _spy(source, log, seen)
        report = source.drain(plan)
    assert len(report.results) == 1
    assert [(e.drain, e.phase) for e in seen[0]] == [(plan.node, "attempt")]
    entries = audit.read_tail(log).entries  # the drain's attempt is shown by its outcome
    drains = [e for e in entries if e.drain is not None]
    assert [e.phase for e in drains] == ["outcome"]
    lines = [audit.parse_line(raw) for raw in log.read_bytes().splitlines()]
    assert [(e.drain, e.phase) for e in lines] == [(plan.node, "attempt"), (plan.node, "outcome")]
    assert lines[0].id == lines[1].id != ""
    assert (lines[1].pid, lines[1].outcome) == (0, "failed")  # its one process moved nothing
    assert lines[1].process == f"drain of node {plan.node}"
    assert source.audit_warning is None


def test_drain_moves_nothing_when_its_attempt_cannot_be_recorded(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # others could replace the log: the audit refuses to write there
    log = shared / "audit.jsonl"
    seen: list[list[audit.AuditEntry]] = []
    with LiveSource(audit_path=log) as source:
        plan = _plan_with_one_process(source)
        _spy(source, log, seen)
        with pytest.raises(MigrationRefused) as refused:
            source.drain(plan)
    assert refused.value.code == "audit_unwritable"
    assert "nothing was moved" in str(refused.value)
    assert seen == []  # no process's move was started
    assert not log.exists()
