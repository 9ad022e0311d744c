"""One host test per guest test (tests/kernel/guest), per topology it is marked for.

A failure here names the guest test and shows its failure text and captured output; a guest
test with no result (the guest crashed or timed out) fails with the guest console's tail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import (
    TOPOLOGIES,
    GuestResult,
    GuestSession,
    collect_guest_tests,
    collect_tests,
    parse_junit,
    why_no_result,
)

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


SAMPLE_TESTS = """
    import pytest

    def test_passes():
        print("said something")

    def test_fails():
        assert 1 == 2, "one is not two"

    @pytest.mark.parametrize("value", ["a::b", "x/y.py", "sp ace", "[br]"])
    def test_params(value):
        assert value != "x/y.py"

    class TestGroup:
        def test_skips(self):
            pytest.skip("not here")

        @pytest.mark.xfail(reason="known")
        def test_xfails(self):
            raise RuntimeError

    @pytest.fixture
    def broken():
        raise OSError("setup broke")

    def test_setup_error(broken):
        pass
"""


def test_junit_results_map_back_to_node_ids(tmp_path: Path) -> None:
    """The host reads real pytest junit output: every collected id gets its true outcome."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_sample.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    collection = collect_tests(tmp_path, "sub")
    nodeids = [nodeid for nodeid, _ in collection.items]
    assert collection.ok and len(nodeids) == 9, collection.output
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "sub", "-o",
         "junit_logging=all", f"--junitxml={junit}"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    results = parse_junit(junit, nodeids)
    outcomes = {nodeid.split("::", 1)[1]: r.outcome for nodeid, r in results.items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_fails": "failed",
        "test_params[a::b]": "passed",
        "test_params[x/y.py]": "failed",
        "test_params[sp ace]": "passed",
        "test_params[[br]]": "passed",
        "TestGroup::test_skips": "skipped",
        "TestGroup::test_xfails": "xfailed",
        "test_setup_error": "error",
    }
    by_name = {nodeid.split("::", 1)[1]: r for nodeid, r in results.items()}
    assert "one is not two" in by_name["test_fails"].message
    assert "said something" in by_name["test_passes"].stdout
    assert "setup broke" in by_name["test_setup_error"].details


def _explain(topology: str, nodeid: str, result: GuestResult) -> str:
    parts = [f"{nodeid} {result.outcome.upper()} in the {topology} guest: {result.message}"]
    if result.details:
        parts.append(result.details)
    if result.stdout.strip():
        parts.append(f"--- guest stdout ---\n{result.stdout.rstrip()}")
    if result.stderr.strip():
        parts.append(f"--- guest stderr ---\n{result.stderr.rstrip()}")
    return "\n".join(parts)


@pytest.mark.timeout(0)  # a guest's boot + run is bounded by the harness's Watchdog
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
