"""The CLI explains itself (issue 12): help with examples and exit codes, `ps` never
lists numatui, `--sort nodeN` only for nodes that exist, exit codes as README says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from numatui.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


def roots(name: str) -> list[str]:
    return [
        "--sys-root",
        str(FIXTURES / name / "sys"),
        "--proc-root",
        str(FIXTURES / name / "proc"),
    ]


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    assert main([*command, "--help"]) == EXIT_OK
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [(), ("nodes",), ("ps",), ("migrate",), ("log",), ("export",)])
def test_every_help_has_examples_and_exit_codes(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    text = help_of(capsys, *command)
    assert "examples:\n  " in text  # laid out as written, not refilled into a paragraph
    assert "exit status:" in text
    for code in ("0  success", "1  refused or failed", "2  usage error"):
        assert code in text


def test_migrate_help_explains_pid_from_to_and_the_node_grammar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys, "migrate")
    assert re.search(r"\n  PID +the process to move", text), text
    assert re.search(r"\n  FROM +the nodes to move pages from", text), text
    assert re.search(r"\n  TO +the nodes to move them to", text), text
    for form in ("0-3,5", "all", "!2", "+0-1"):
        assert f"\n  {form} " in text
    assert "3  partly moved" in text


def test_sort_by_a_node_the_machine_lacks_is_a_usage_error_naming_the_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*roots("two_nodes"), "ps", "--sort", "node7"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no node 7" in err and "node0, node1" in err
    assert main([*roots("two_nodes"), "ps", "--sort", "node1", "--limit", "1"]) == EXIT_OK


def test_a_malformed_pid_is_usage_a_missing_one_a_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README: `2` for a malformed pid, `1` for a well-formed pid with no such process."""
    assert main([*roots("two_nodes"), "migrate", "12x", "0", "1", "--dry-run"]) == EXIT_USAGE
    assert main([*roots("two_nodes"), "migrate", "0", "0", "1", "--dry-run"]) == EXIT_USAGE
    capsys.readouterr()
    assert main([*roots("two_nodes"), "migrate", "999999", "0", "1", "--dry-run"]) == EXIT_FAILED
    assert "999999" in capsys.readouterr().err
    assert main([*roots("two_nodes"), "ps", "--pid", "999999"]) == EXIT_FAILED
    readme = (ROOT / "README.md").read_text()
    assert "`2` usage error (a malformed pid" in readme
    assert "well-formed pid with no such process" in readme


def _ps_json(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_ps_match_never_lists_numatui_or_the_shell_that_started_it() -> None:
    """A shell (not exec'd into numatui: `; true` follows) whose command line holds the
    text, and numatui itself: neither listed. A process started beside them is."""
    token = f"zq{os.getpid()}marker"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
    try:
        script = f"{sys.executable} -m numatui ps --match {token} --json; true"
        proc = _ps_json(["sh", "-c", script])
        assert proc.returncode == EXIT_OK, proc.stderr
        pids = [p["pid"] for p in json.loads(proc.stdout)["processes"]]
        assert pids == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_ps_does_not_list_itself_but_lists_its_parent() -> None:
    proc = _ps_json([sys.executable, "-m", "numatui", "ps", "--json"])
    assert proc.returncode == EXIT_OK, proc.stderr
    listed = {p["pid"]: p["cmdline"] for p in json.loads(proc.stdout)["processes"]}
    assert os.getpid() in listed  # the parent (this test) is there: the list is real
    assert not any("-m numatui ps --json" in cmd for cmd in listed.values())
