"""The CLI against real hostile processes (tests/hostile.py): the bytes written to stdout.

Text output: no escape, C1 or bidi character and no tab reaches the terminal; each
hostile string appears in its escaped form, one line per process. JSON: ASCII only,
valid, and the exact strings (invalid UTF-8 from /proc arrives as U+FFFD).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from numatui.safe_text import visible
from tests.hostile import HostileProcess, hostile_processes, terminal_hazards

ROOT = Path(__file__).resolve().parents[2]
FOUR_NODES_SYS = ROOT / "tests" / "fixtures" / "four_nodes" / "sys"


@pytest.fixture(scope="module")
def hostile() -> Iterator[list[HostileProcess]]:
    with hostile_processes() as processes:
        yield processes


def numatui(*argv: str, env: dict[str, str] | None = None) -> bytes:
    """Run the real command; its stdout bytes, exactly as a terminal would get them."""
    proc = subprocess.run(
        [sys.executable, "-m", "numatui", *argv],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")[-2000:]
    assert terminal_hazards(proc.stderr) == [], proc.stderr[-500:]
    return proc.stdout


def pids(processes: list[HostileProcess]) -> list[str]:
    return [arg for p in processes for arg in ("--pid", str(p.pid))]


def test_ps_text_shows_every_hostile_name_escaped_on_one_line(
    hostile: list[HostileProcess],
) -> None:
    out = numatui("ps", *pids(hostile))
    assert terminal_hazards(out) == []
    lines = out.decode().splitlines()
    assert len(lines) == 1 + len(hostile), lines  # the header, then one line each
    for p in hostile:
        (line,) = [line for line in lines[1:] if line.split()[0] == str(p.pid)]
        assert visible(p.name) in line, (p.case.id, line)
    header_width = len(lines[0].split())
    for line in lines[1:]:  # no name added or removed a column
        fields = line.split()
        assert len(fields) >= header_width, line


def test_ps_json_keeps_the_exact_text(hostile: list[HostileProcess]) -> None:
    out = numatui("ps", "--json", *pids(hostile))
    assert out.isascii()  # every control and non-ASCII character is a JSON escape
    listed = {p["pid"]: p for p in json.loads(out)["processes"]}
    for p in hostile:
        shown = listed[p.pid]
        assert shown["name"] == p.name, p.case.id
        assert shown["cmdline"] == p.cmdline, p.case.id
        assert shown["user"] == ("nobody" if os.geteuid() == 0 else shown["user"])
    long = next(p for p in hostile if p.case.id == "long-cmdline")
    assert len(listed[long.pid]["cmdline"]) > 100_000


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_migrate_dry_run_names_the_process_safely(
    hostile: list[HostileProcess], as_json: bool
) -> None:
    # The recorded 4-node /sys makes a plan possible; /proc is this host's, with the attackers.
    for p in hostile:
        argv = ["--sys-root", str(FOUR_NODES_SYS), "migrate", str(p.pid), "1", "0", "--dry-run"]
        out = numatui(*argv, *(["--json"] if as_json else []))
        assert terminal_hazards(out) == [], p.case.id
        if as_json:
            assert out.isascii()
            assert json.loads(out)["process"] == p.name, p.case.id
        else:
            assert f"pid {p.pid} ({visible(p.name)})" in out.decode(), (p.case.id, out)


def test_log_shows_what_it_read_back_escaped(hostile: list[HostileProcess], tmp_path: Path) -> None:
    """The audit log is a file read back: its strings are as untrusted as the names."""
    log = tmp_path / "audit.jsonl"
    entries = [
        {
            "time": 1_700_000_000.0 + i,
            "user": p.name,
            "uid": 0,
            "pid": p.pid,
            "process": p.cmdline[:200],
            "from": "\x1b[2J1",
            "to": "\u202e0",
            "outcome": "failed\x9b2J",
            "bytes_moved": 0,
            "pages_not_moved": None,
            "error": f"ESRCH: {p.path_text}",
        }
        for i, p in enumerate(hostile)
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    out = numatui("log", "--file", str(log))
    assert terminal_hazards(out) == []
    lines = out.decode().splitlines()
    assert len(lines) == len(hostile)
    for line, p in zip(lines, hostile, strict=True):
        assert visible(p.path_text) in line, (p.case.id, line)
    as_json = numatui("log", "--json", "--file", str(log))
    assert as_json.isascii()
    read_back = json.loads(as_json)["entries"]
    assert [e["process"] for e in read_back] == [e["process"] for e in entries]
    assert [e["error"] for e in read_back] == [e["error"] for e in entries]
