"""One host test per guest test (tests/kernel/guest), per topology it is marked for.

A failure here names the guest test and shows its failure text and captured output; a guest
test with no result (the guest crashed or timed out) fails with the guest console's tail.
"""

from __future__ import annotations

import pytest
from harness import TOPOLOGIES, GuestResult, GuestSession, collect_guest_tests, why_no_result

pytestmark = pytest.mark.guest

# Collected once at import, in a subprocess: exact node ids and markers, parametrize included.
COLLECTION = collect_guest_tests()


def _host_id(topology: str, nodeid: str) -> str:
    short = nodeid.removeprefix("tests/kernel/guest/").replace(".py::", "::")
    return f"{topology}:{short}"


PARAMS = [
    pytest.param(topology, nodeid, id=_host_id(topology, nodeid))
    for topology in TOPOLOGIES
    for nodeid in COLLECTION.for_topology(topology)
]


def test_guest_tests_collect() -> None:
    assert COLLECTION.ok, f"collecting tests/kernel/guest failed:\n{COLLECTION.output[-6000:]}"


def test_every_guest_test_has_a_topology() -> None:
    orphans = COLLECTION.without_topology()
    assert not orphans, (
        "these guest tests are marked neither two_nodes nor four_nodes, so no guest runs them: "
        + ", ".join(orphans)
    )


def _explain(topology: str, nodeid: str, result: GuestResult) -> str:
    parts = [f"{nodeid} {result.outcome.upper()} in the {topology} guest: {result.message}"]
    if result.details:
        parts.append(result.details)
    if result.stdout.strip():
        parts.append(f"--- guest stdout ---\n{result.stdout.rstrip()}")
    if result.stderr.strip():
        parts.append(f"--- guest stderr ---\n{result.stderr.rstrip()}")
    return "\n".join(parts)


@pytest.mark.parametrize(("topology", "nodeid"), PARAMS)
def test_guest(topology: str, nodeid: str, guest_session: GuestSession) -> None:
    run = guest_session.run(topology)
    result = run.results.get(nodeid)
    if result is None:
        pytest.fail(why_no_result(run, nodeid), pytrace=False)
    if result.outcome in ("failed", "error"):
        pytest.fail(_explain(topology, nodeid, result), pytrace=False)
    if result.outcome == "skipped":
        pytest.skip(f"skipped in the {topology} guest: {result.message}")
    if result.outcome == "xfailed":
        pytest.xfail(f"xfailed in the {topology} guest: {result.message}")
