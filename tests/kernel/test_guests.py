"""One host test per guest test (tests/kernel/guest), per topology it is marked for.

A failure here names the guest test and shows its failure text and captured output; a guest
test with no result (the guest crashed or timed out) fails with the guest console's tail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import (
    GRACE_S,
    GUEST_PLUGINS,
    TOPOLOGIES,
    GuestResult,
    GuestSession,
    Watchdog,
    collect_guest_tests,
    collect_tests,
    parse_junit,
    per_test_timeout_args,
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
        f"these guest tests are marked with no topology ({', '.join(TOPOLOGIES)}), "
        "so no guest runs them: " + ", ".join(orphans)
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


HANGING_TESTS = """
    import os, threading

    def test_hangs():
        read_end, _ = os.pipe()
        threading.Thread(target=threading.Event().wait, name="helper", daemon=True).start()
        os.read(read_end, 1)  # nothing ever comes

    def test_after_the_hung_one():
        pass
"""


def test_a_hung_guest_test_fails_alone_with_every_stack(tmp_path: Path) -> None:
    """The guest's per-test timeout, as the guest runs pytest (plugin autoload off, only
    GUEST_PLUGINS): the hung test fails, its threads' stacks are printed, the next test runs."""
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(HANGING_TESTS))
    plugins = [arg for name in GUEST_PLUGINS for arg in ("-p", name)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugins,
         *per_test_timeout_args(3), "-rA", "test_sample.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )  # fmt: skip
    out = done.stdout
    assert "FAILED test_sample.py::test_hangs - Failed: Timeout (>3.0s)" in out, out
    assert "PASSED test_sample.py::test_after_the_hung_one" in out, out
    assert "Stack of helper" in out and "os.read(read_end, 1)" in out, out


def test_the_watchdog_kills_only_a_guest_that_stopped_progressing(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    dog = Watchdog(began=0.0)
    assert dog.verdict(100.0) is None  # booting
    assert "no guest test started" in str(dog.verdict(10_000.0))
    log.write_text('{"event": "start", "nodeid": "t::slow", "limit": 500}\n')
    dog.observe(log, 200.0)
    assert dog.verdict(200.0 + 500 + GRACE_S - 1) is None  # slow, within its own limit
    assert "t::slow ran" in str(dog.verdict(200.0 + 500 + GRACE_S + 1))
    with log.open("a") as out:
        out.write('{"event": "finish", "nodeid": "t::slow"}\n{"event": "sta')
    dog.observe(log, 800.0)  # the half-written line is read again next time
    assert dog.running is None and dog.verdict(800.0 + GRACE_S - 1) is None
    assert "did not end" in str(dog.verdict(800.0 + GRACE_S + 1))
    assert Watchdog(began=0.0, hard_cap=50.0).verdict(51.0) == "NUMATUI_GUEST_TIMEOUT=50 s reached"


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
