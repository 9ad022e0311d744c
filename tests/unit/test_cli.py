"""The command line on recorded trees (real parsers, recorded kernel files) and on this host.

What the CLI claims about migration itself is proven in the guest tier
(tests/kernel/guest); here: argument handling, output shapes, exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    rc = main(list(argv))
    out = capsys.readouterr().out
    return rc, json.loads(out)


def workload_pid(name: str) -> int:
    """The busiest recorded workload (python3 with most memory on several nodes)."""
    lines = (FIXTURES / name / "reference" / "workloads.txt").read_text().split()
    return int(lines[0])


def test_nodes_json_four_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    rc, data = run_json(capsys, *roots("four_nodes"), "nodes", "--json")
    assert rc == EXIT_OK
    nodes = {n["id"]: n for n in data["nodes"]}
    assert sorted(nodes) == [0, 1, 2, 3]
    assert nodes[0]["cpus"] == "0" and nodes[1]["cpus"] == "1"
    assert not nodes[2]["has_cpu"] and nodes[2]["has_memory"] and nodes[2]["memory_only"]
    assert nodes[0]["distances"] == {"0": 10, "1": 20, "2": 20, "3": 20}
    meminfo = (FIXTURES / "four_nodes/sys/devices/system/node/node3/meminfo").read_text()
    total_kb = int(next(ln for ln in meminfo.splitlines() if "MemTotal" in ln).split()[-2])
    assert nodes[3]["mem_total_bytes"] == total_kb * 1024
    assert sum(h["total"] for n in nodes.values() for h in n["hugepages"]) == 20


def test_nodes_text_names_memory_only_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*roots("four_nodes"), "nodes"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("memory-only") == 2
    assert "distances:" in out


def test_nodes_without_numa_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    rc, data = run_json(capsys, *roots("no_numa"), "nodes", "--json")
    assert rc == EXIT_OK
    assert data["numa_available"] is False and data["reason"]
    assert main([*roots("no_numa"), "nodes"]) == EXIT_OK
    assert "NUMA information unavailable" in capsys.readouterr().out


def test_ps_json_matches_numa_maps(capsys: pytest.CaptureFixture[str]) -> None:
    pid = workload_pid("four_nodes")
    rc, data = run_json(capsys, *roots("four_nodes"), "ps", "--json", "--pid", str(pid))
    assert rc == EXIT_OK
    (proc,) = data["processes"]
    expected: dict[str, int] = {}
    for line in (FIXTURES / f"four_nodes/proc/{pid}/numa_maps").read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        page = int(fields.get("kernelpagesize_kB", "4")) * 1024
        for key, value in fields.items():
            if key.startswith("N") and key[1:].isdigit():
                expected[key[1:]] = expected.get(key[1:], 0) + int(value) * page
    assert proc["node_bytes"] == expected
    assert {"pid", "name", "user", "rss_bytes", "node_bytes"} <= set(proc)


def test_ps_sort_by_node_and_match(capsys: pytest.CaptureFixture[str]) -> None:
    rc, data = run_json(capsys, *roots("four_nodes"), "ps", "--json", "--sort", "node2")
    assert rc == EXIT_OK
    on2 = [p["node_bytes"].get("2", 0) for p in data["processes"]]
    assert on2 == sorted(on2, reverse=True) and on2[0] > 0
    rc, data = run_json(capsys, *roots("four_nodes"), "ps", "--json", "--match", "python")
    assert data["processes"]
    assert all("python" in (p["name"] + p["cmdline"]).lower() for p in data["processes"])


def test_ps_unknown_pid_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*roots("two_nodes"), "ps", "--pid", "999999"]) == EXIT_FAILED
    assert "process 999999 does not exist" in capsys.readouterr().err


def test_dry_run_previews_the_kernel_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    pid = workload_pid("four_nodes")
    argv = [*roots("four_nodes"), "migrate", str(pid), "0-3", "1,3", "--dry-run", "--json"]
    rc, data = run_json(capsys, *argv)
    assert rc == EXIT_OK
    assert data["pairs"] == [[2, 1], [0, 1]]  # 1 and 3 are targets too: the kernel skips them
    assert data["dry_run"] is True
    rc, data = run_json(
        capsys, *roots("four_nodes"), "migrate", str(pid), "0-1", "2-3", "--dry-run", "--json"
    )
    assert data["pairs"] == [[0, 2], [1, 3]]
    assert data["bytes_to_move"] == sum(data["bytes_per_pair"]) > 0


def test_recorded_tree_cannot_be_migrated(capsys: pytest.CaptureFixture[str]) -> None:
    pid = workload_pid("two_nodes")
    assert main([*roots("two_nodes"), "migrate", str(pid), "0", "1", "--yes"]) == EXIT_FAILED
    assert "recorded snapshot" in capsys.readouterr().err


def test_migrate_without_yes_or_terminal_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    pid = workload_pid("two_nodes")
    rc = subprocess.run(
        [sys.executable, "-m", "numatui", *roots("two_nodes"), "migrate", str(pid), "0", "1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert rc.returncode == EXIT_FAILED
    assert "refusing to migrate without confirmation" in rc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["migrate", "0", "0", "1"], "positive number"),
        (["migrate", "-1", "0", "1"], "positive number"),
        (["migrate", "abc", "0", "1"], "positive number"),
        (["migrate", "99999999999", "0", "1"], "larger than any pid"),
        (["migrate", "1", "", "1"], "node string"),
        (["migrate", "1", "3-1", "1"], "3-1"),
        (["migrate", "1", "0", "9"], "node 9 does not exist"),
        (["migrate", "1", "0", "!all"], "node string"),
        (["migrate", "1", "0,,1", "1"], "node string"),
        (["ps", "--sort", "colour"], "unknown sort key"),
        (["frobnicate"], "invalid choice"),
        (["migrate", "1"], "required"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*roots("two_nodes"), *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@settings(max_examples=300, deadline=None)
@given(
    pid=st.one_of(st.integers(-(2**40), 2**40).map(str), st.text(max_size=12)),
    frm=st.text(max_size=12),
    to=st.text(max_size=12),
)
def test_fuzzed_migrate_arguments_never_traceback(pid: str, frm: str, to: str) -> None:
    """Any argument text: a usage error or a refusal, never an exception."""
    rc = main([*roots("two_nodes"), "migrate", pid, frm, to, "--dry-run", "--json"])
    assert rc in (EXIT_OK, EXIT_FAILED, EXIT_USAGE)


def test_migrate_on_this_single_node_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """The real host kernel: one node, so the only answers are refusals or nothing to move."""
    rc = main(["migrate", str(os.getpid()), "0", "0", "--dry-run"])
    assert rc == EXIT_FAILED
    assert "single NUMA node" in capsys.readouterr().err


def test_nodes_on_this_host_as_a_subprocess() -> None:
    """`numatui nodes --json` on the real machine, without Textual loaded."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numatui.cli as c; rc = c.main(['nodes', '--json']); "
            "assert 'textual' not in sys.modules; sys.exit(rc)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["nodes"] and all("mem_total_bytes" in n for n in data["nodes"])


def test_log_reads_what_migrations_appended(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    assert main(["log", "--file", str(log)]) == EXIT_OK
    assert "no migrations recorded" in capsys.readouterr().out
    log.write_text(
        json.dumps(
            {
                "time": 0,
                "user": "root",
                "uid": 0,
                "pid": 7,
                "process": "db",
                "from": "0",
                "to": "1",
                "outcome": "partly moved",
                "bytes_moved": 4096,
                "pages_not_moved": 3,
                "error": None,
            }
        )
        + "\n"
    )
    rc, data = run_json(capsys, "log", "--file", str(log), "--json")
    assert rc == EXIT_OK and data["entries"][0]["pid"] == 7
    assert main(["log", "--file", str(log)]) == EXIT_OK
    assert "pid 7 (db) 0 -> 1: partly moved" in capsys.readouterr().out


def test_ctrl_c_during_a_migration_sets_the_stop_event_and_the_handler_comes_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import signal
    import threading

    from numatui.cli import _ctrl_c_stops

    before = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    with _ctrl_c_stops(stop, stoppable=True):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # a second press says nothing more
    assert stop.is_set()
    assert signal.getsignal(signal.SIGINT) is before
    assert capsys.readouterr().err.count("stopping after the current chunk") == 1
    # One migrate_pages call: Ctrl-C says it cannot stop it, and the command goes on.
    stop = threading.Event()
    with _ctrl_c_stops(stop, stoppable=False):
        os.kill(os.getpid(), signal.SIGINT)
    assert "cannot be stopped once started" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


# ---------------------------------------------------------------- strict numbers

NOT_ASCII_DECIMAL = ["\u0661", "\uff11", "+1", "1_0", " 1", "1 ", "0x1", "1.0", "", "\u0663\u0664"]


@pytest.mark.parametrize("text", NOT_ASCII_DECIMAL)
@pytest.mark.parametrize(
    "argv",
    [
        ["migrate", "{}", "0", "1"],
        ["ps", "--pid", "{}"],
        ["ps", "--limit", "{}"],
        ["log", "--limit", "{}"],
        ["ps", "--sort", "node{}"],
    ],
    ids=["migrate-pid", "ps-pid", "ps-limit", "log-limit", "sort-node"],
)
def test_numbers_are_ascii_digits_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], text: str
) -> None:
    args = [a.format(text) for a in argv]
    rc = main([*roots("two_nodes"), "--audit-log", str(tmp_path / "a.jsonl"), *args])
    assert rc == EXIT_USAGE, (args, capsys.readouterr())
    assert "numatui: " in capsys.readouterr().err


def test_plain_digits_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*roots("two_nodes"), "ps", "--sort", "node1", "--limit", "2"]) == EXIT_OK
    assert len(capsys.readouterr().out.splitlines()) == 3  # header and two processes


# ---------------------------------------------------------------- output that cannot be written


def run_cli(*argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "numatui", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        **kwargs,
    )


@pytest.mark.parametrize("argv", [["ps"], ["nodes", "--json"], ["--help"]])
def test_a_full_stdout_is_a_one_line_error(argv: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        proc = run_cli(*argv, stdout=full)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_FAILED
    assert err.decode().splitlines() == [
        "numatui: cannot write the output: No space left on device"
    ]


def test_a_closed_stdout_is_a_one_line_error() -> None:
    proc = run_cli(*roots("four_nodes"), "ps", "--json", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader left before anything was written (`| head` done)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_FAILED
    assert err.decode().splitlines() == ["numatui: cannot write the output: the reader went away"]


def test_ctrl_c_during_the_command_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from numatui import cli

    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "nodes", interrupted)
    assert main(["nodes"]) == 130
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- migrate reports its audit


@pytest.fixture
def sleeper() -> Any:
    child = subprocess.Popen(["sleep", "120"])
    yield child
    child.kill()
    child.wait()


def test_migrate_json_has_an_audit_object_written_or_not(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # The 4-node /sys lets numatui plan; the real one-node kernel then refuses (EINVAL):
    # a real attempt, recorded before and after.
    log = tmp_path / "audit.jsonl"
    four = ["--sys-root", str(FIXTURES / "four_nodes" / "sys")]
    args = [*four, "--audit-log", str(log), "migrate", str(sleeper.pid), "1", "0", "--yes"]
    _, data = run_json(capsys, *args, "--json")
    assert data["audit"] == {"path": str(log), "written": True, "reason": None}
    assert [json.loads(line)["phase"] for line in log.read_text().splitlines()] == [
        "attempt",
        "outcome",
    ]
    # A log that is a FIFO: the attempt cannot be recorded, so nothing is attempted.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args[args.index(str(log))] = str(fifo)
    rc, data = run_json(capsys, *args, "--json")
    assert rc == EXIT_FAILED
    assert data["audit"]["path"] == str(fifo) and data["audit"]["written"] is False
    assert "FIFO" in data["audit"]["reason"]
    assert "could not be recorded" in data["error"]["message"]
    # The text output says it too.
    assert main(args) == EXIT_FAILED
    captured = capsys.readouterr()
    assert f"audit: NOT recorded in {fifo}" in captured.out
    assert "the audit log was not written" in captured.err


def test_log_counts_skipped_lines_with_the_right_plural(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("NaN\n")
    assert main(["--audit-log", str(log), "log"]) == EXIT_OK
    assert "skipped 1 line of" in capsys.readouterr().err
    log.write_text("NaN\n[1e400]\n")
    assert main(["--audit-log", str(log), "log"]) == EXIT_OK
    assert "skipped 2 lines of" in capsys.readouterr().err


def test_log_refuses_to_follow_a_symlink(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("{}\n")
    (tmp_path / "audit.jsonl").symlink_to(secret)
    assert main(["--audit-log", str(tmp_path / "audit.jsonl"), "log"]) == EXIT_FAILED
    assert "symlink" in capsys.readouterr().err


def test_log_of_a_fifo_is_refused_without_blocking(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    assert main(["--audit-log", str(fifo), "log"]) == EXIT_FAILED
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
