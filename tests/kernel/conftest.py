"""The real-kernel tier on the host: boots each guest topology once per session.

tests/kernel/guest holds tests that only make sense inside a multi-node guest; the host
session never collects them itself (test_guests.py reports them one by one instead).
"""

from __future__ import annotations

import os

import pytest
from harness import RUNS, SELECTED, GuestSession, find_kernel

# Inside the guest (and in the host's collection subprocess) the guest tests ARE the point.
collect_ignore = (
    []
    if os.environ.get("NUMATUI_IN_GUEST") or os.environ.get("NUMATUI_COLLECT_GUEST")
    else ["guest"]
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which guest tests the host run kept (-k, node ids), so a guest runs just those."""
    SELECTED.clear()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.name.startswith("test_guest[") and callspec is not None:
            topology, nodeid = callspec.params["topology"], callspec.params["nodeid"]
            SELECTED.setdefault(topology, []).append(nodeid)


@pytest.fixture(scope="session")
def guest_session() -> GuestSession:
    return GuestSession()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    terminalreporter.write_sep("-", f"real-kernel guests ({find_kernel()}, TCG)")
    for run in RUNS.values():
        terminalreporter.write_line(run.summary())
    total = sum(run.total_seconds for run in RUNS.values())
    terminalreporter.write_line(f"all guests: {total:.1f} s")
