"""The audit log and the human units: pure, fast."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numatui.kernel import audit
from numatui.model.migration import MigrationError, MigrationOutcome, MigrationPlan, MigrationResult
from numatui.model.node_bytes import frozen_map
from numatui.units import format_bytes, format_share


def _result(outcome: MigrationOutcome, error: MigrationError | None = None) -> MigrationResult:
    plan = MigrationPlan(
        pid=4242,
        from_nodes=frozenset({0, 1}),
        to_nodes=frozenset({2, 3}),
        pairs=((0, 2), (1, 3)),
        bytes_per_pair=(4096 * 10, 4096 * 5),
        process_name="worker",
    )
    return MigrationResult(
        plan=plan,
        outcome=outcome,
        before=frozen_map({0: 40960, 1: 20480}),
        after=frozen_map({0: 4096, 1: 0, 2: 36864, 3: 20480}),
        pages_not_moved=1 if outcome is MigrationOutcome.PARTLY_MOVED else None,
        elapsed_s=0.5,
        error=error,
    )


def test_append_then_read_round_trips(tmp_path: Path) -> None:
    log = tmp_path / "state" / "audit.jsonl"
    assert (
        audit.append(audit.entry_for(_result(MigrationOutcome.PARTLY_MOVED), "worker"), log) is None
    )
    err = MigrationError("EPERM", "needs root")
    audit.append(audit.entry_for(_result(MigrationOutcome.FAILED, err), "worker"), log)
    entries = audit.read(log)
    assert [e.outcome for e in entries] == ["partly moved", "failed"]
    first = entries[0]
    assert (first.pid, first.from_nodes, first.to_nodes) == (4242, "0-1", "2-3")
    assert first.bytes_moved == 36864 + 20480
    assert first.pages_not_moved == 1
    assert entries[1].error == "EPERM: needs root"
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert audit.read(log, limit=1) == entries[-1:]


def test_read_skips_torn_or_foreign_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append(audit.entry_for(_result(MigrationOutcome.ALL_MOVED), "w"), log)
    with log.open("a") as f:
        f.write('{"time": 1, "user": "x"\nnot json\n[]\n')
    assert len(audit.read(log)) == 1


def test_unwritable_log_warns_instead_of_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    warning = audit.append(
        audit.entry_for(_result(MigrationOutcome.ALL_MOVED), "w"), blocker / "sub" / "audit.jsonl"
    )
    assert warning is not None and "audit log" in warning


def test_default_path_follows_xdg_state_home_for_a_user_and_never_for_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(audit.PATH_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert audit.default_log_path() == tmp_path / "numatui" / "audit.jsonl"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert audit.default_log_path() == Path("/var/log/numatui/audit.jsonl")
    monkeypatch.setenv(audit.PATH_ENV, str(tmp_path / "chosen.jsonl"))
    assert audit.default_log_path() == tmp_path / "chosen.jsonl"


def test_entry_json_has_who_what_where_result(tmp_path: Path) -> None:
    entry = audit.entry_for(_result(MigrationOutcome.ALL_MOVED), "worker")
    d = entry.as_json()
    assert set(d) >= {"time", "user", "uid", "pid", "process", "from", "to", "outcome", "error"}
    json.dumps(d)


def test_format_bytes_examples() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(300 * 2**20) == "300.0 MiB"
    assert format_bytes(-2048) == "-2.0 KiB"
    assert format_bytes(2**60) == "1024.0 PiB"
    assert format_share(None) == "-"
    assert format_share(0.754) == "75%"


@given(st.integers(min_value=-(2**64), max_value=2**64))
def test_format_bytes_never_fails(n: int) -> None:
    text = format_bytes(n)
    assert text.split()[-1] in {"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
