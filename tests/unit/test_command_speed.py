"""Whole commands read and import only what they need (issue 13), and still say the same.

Real parts: the recorded /proc,/sys trees, the real parsers and scanner, and fresh
interpreters for what a command imports.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from numatui import cli
from numatui.kernel.numa_maps import mapping_count, node_bytes_from_numa_maps, summarize_numa_maps
from numatui.kernel.scan_pool import one_shot_threads_for, other_runnable
from numatui.kernel.scanner import ProcessScanner
from numatui.kernel.topology import TopologyReader
from numatui.units import format_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
TREES = [p for p in (FIXTURES / "two_nodes", FIXTURES / "four_nodes") if (p / "proc").is_dir()]

# What a command must not load. Checked against a bare interpreter's modules, so a
# site hook that imports one of these (not numatui's doing) does not fail the test.
UI_AND_BINDINGS = {"textual", "rich", "psutil", "cffi", "_cffi_backend", "prometheus_client"}
KERNEL_LAYER = {
    "numatui.model",
    "numatui.model.memory",
    "numatui.model.topology",
    "numatui.kernel.live",
    "numatui.kernel.scanner",
    "numatui.kernel.topology",
    "numatui.kernel.syscalls",
    "numatui.kernel.migration",
    "numatui.kernel.audit",
    "dataclasses",
    "ctypes",
}
MIGRATION = {
    "numatui.kernel.migration",
    "numatui.kernel.syscalls",
    "numatui.kernel.chunked",
    "numatui.rules",
    "numatui.kernel._syscall_ffi",
}
# Loaded on first use by a move or the groups view (each ~2-15 ms at import).
LOADED_ON_FIRST_USE = {
    "numatui.kernel.audit",
    "numatui.kernel.cgroups",
    "numatui.model.drain",
    "numatui.model.findings",
    "numatui.model.groups",
    "numatui.model.migration",
}


def modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after `numatui ARGV` (its console script)."""
    code = (
        "import sys\n"
        "from numatui.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    return set(done.stderr.split())


@pytest.fixture(scope="module")
def bare_interpreter() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(done.stdout.split())


def test_version_imports_neither_ui_nor_bindings_nor_kernel_layer(
    bare_interpreter: set[str],
) -> None:
    loaded = modules_after("--version")
    assert "numatui.cli" in loaded  # the check looks at the right interpreter
    assert not (loaded & (UI_AND_BINDINGS | KERNEL_LAYER)) - bare_interpreter


def test_usage_error_imports_no_kernel_layer(bare_interpreter: set[str]) -> None:
    loaded = modules_after("ps", "--limit", "x")
    assert not (loaded & (UI_AND_BINDINGS | KERNEL_LAYER)) - bare_interpreter


@pytest.mark.parametrize("command", [["nodes"], ["ps", "--limit", "1"], ["ps", "--json"]])
def test_read_commands_load_no_migration_machinery(
    command: list[str], bare_interpreter: set[str]
) -> None:
    loaded = modules_after("--sys-root", str(TREES[0] / "sys"), *command)
    assert "numatui.kernel.topology" in loaded  # it did run
    assert not (loaded & (UI_AND_BINDINGS | MIGRATION | LOADED_ON_FIRST_USE)) - bare_interpreter


def test_the_import_check_sees_what_is_loaded() -> None:
    # If this failed, the tests above would pass for the wrong reason.
    assert {"numatui.kernel.live", "numatui.model.topology"} <= modules_after("nodes")


# ---------------------------------------------------------------- nodes-only scans


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_nodes_only_scan_agrees_with_full_scan(root: Path) -> None:
    topology = TopologyReader(sys_root=root / "sys", proc_root=root / "proc").read()
    full = ProcessScanner(proc_root=root / "proc").scan(topology=topology)
    light = ProcessScanner(proc_root=root / "proc").scan(
        topology=topology, nodes_only=True, cmdline=False
    )
    assert [p.pid for p in light.processes] == [p.pid for p in full.processes]
    for whole, part in zip(full.processes, light.processes, strict=True):
        assert part.node_bytes == whole.node_bytes, part.pid
        assert part.mapping_count == whole.mapping_count
        assert (part.name, part.user, part.rss_bytes, part.threads) == (
            whole.name,
            whole.user,
            whole.rss_bytes,
            whole.threads,
        )
        assert (part.mems_allowed, part.cpu_nodes, part.locality) == (
            whole.mems_allowed,
            whole.cpu_nodes,
            whole.locality,
        )
        assert part.cmdline == "" and not part.kind_bytes and not part.shared_bytes
        assert whole.kinds_read
        # Said, not left for a face to guess from empty maps (a kernel thread has none).
        assert part.kinds_read is (part.is_kernel_thread or not part.memory_readable)
    assert any(p.kind_bytes for p in full.processes)  # the trees do have kinds to leave out


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_a_list_scan_reads_command_lines_when_asked(root: Path) -> None:
    """The app's first scan: bytes per node and command lines (its filter searches them)."""
    topology = TopologyReader(sys_root=root / "sys", proc_root=root / "proc").read()
    full = ProcessScanner(proc_root=root / "proc").scan(topology=topology)
    listed = ProcessScanner(proc_root=root / "proc").scan(topology=topology, nodes_only=True)
    assert [p.cmdline for p in listed.processes] == [p.cmdline for p in full.processes]
    assert any(p.cmdline for p in listed.processes)
    assert [p.node_bytes for p in listed.processes] == [p.node_bytes for p in full.processes]


def test_a_scan_rereads_command_lines_a_previous_one_left_out() -> None:
    root = TREES[0]
    topology = TopologyReader(sys_root=root / "sys", proc_root=root / "proc").read()
    scanner = ProcessScanner(proc_root=root / "proc")
    bare = scanner.scan(topology=topology, nodes_only=True, cmdline=False)
    listed = scanner.scan(bare, topology=topology, nodes_only=True)
    assert listed.skipped_unchanged == 0
    assert any(p.cmdline for p in listed.processes)
    # ... and a list scan that asks for no command line keeps the ones it has.
    again = scanner.scan(listed, topology=topology, nodes_only=True, cmdline=False)
    assert again.skipped_unchanged == len(listed.processes)
    assert again.processes == listed.processes


def test_full_scan_rereads_what_a_nodes_only_scan_left_out() -> None:
    root = TREES[0]
    topology = TopologyReader(sys_root=root / "sys", proc_root=root / "proc").read()
    scanner = ProcessScanner(proc_root=root / "proc")
    light = scanner.scan(topology=topology, nodes_only=True, cmdline=False)
    full = scanner.scan(light, topology=topology)
    assert full.skipped_unchanged == 0
    assert all(p.kinds_read for p in full.processes)
    assert any(p.kind_bytes for p in full.processes)
    assert any(p.cmdline for p in full.processes)
    # A full entry serves a later nodes-only scan as it is.
    again = scanner.scan(full, topology=topology, nodes_only=True)
    assert again.skipped_unchanged == len(full.processes)
    assert again.processes == full.processes


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_node_bytes_pass_agrees_with_summary_on_recorded_files(root: Path) -> None:
    files = sorted((root / "proc").glob("[0-9]*/numa_maps"))
    assert files
    for path in files:
        data = path.read_bytes()
        summary = summarize_numa_maps(data)
        assert node_bytes_from_numa_maps(data) == summary.node_bytes, path
        assert mapping_count(data) == summary.mapping_count


def test_mapping_count() -> None:
    assert mapping_count(b"") == 0
    assert mapping_count(b"7f00 default\n") == 1
    assert mapping_count(b"7f00 default\n7f01 default") == 2


# ---------------------------------------------------------------- output in one piece


class _CountingOut(io.StringIO):
    """stdout as PYTHONUNBUFFERED makes it: every write is a write(2)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def run_ps(monkeypatch: pytest.MonkeyPatch, root: Path, *argv: str) -> tuple[int, _CountingOut]:
    out = _CountingOut()
    monkeypatch.setattr(sys, "stdout", out)
    rc = cli.main(["--sys-root", str(root / "sys"), "--proc-root", str(root / "proc"), *argv])
    return rc, out


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_ps_json_is_one_write_one_process_a_line(
    monkeypatch: pytest.MonkeyPatch, root: Path
) -> None:
    rc, out = run_ps(monkeypatch, root, "ps", "--json", "--sort", "pid")
    assert rc == cli.EXIT_OK and out.writes == 1
    text = out.getvalue()
    data = json.loads(text)
    assert set(data) == {"processes", "unreadable", "vanished"}
    procs = data["processes"]
    assert len(procs) >= 3 and [p["pid"] for p in procs] == sorted(p["pid"] for p in procs)
    lines = text.splitlines()
    assert sum(1 for line in lines if line.lstrip().startswith('{"pid"')) == len(procs)


def test_ps_json_with_no_process_is_still_a_document(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out = run_ps(monkeypatch, TREES[0], "ps", "--json", "--pid", "999999")
    assert rc == cli.EXIT_FAILED
    assert json.loads(out.getvalue()) == {"processes": [], "unreadable": 0, "vanished": 1}


@pytest.mark.parametrize("root", TREES, ids=lambda p: p.name)
def test_ps_text_shows_the_json_numbers_in_one_write(
    monkeypatch: pytest.MonkeyPatch, root: Path
) -> None:
    _, json_out = run_ps(monkeypatch, root, "ps", "--json", "--sort", "pid")
    expected: dict[int, Any] = {p["pid"]: p for p in json.loads(json_out.getvalue())["processes"]}
    rc, out = run_ps(monkeypatch, root, "ps", "--sort", "pid")
    assert rc == cli.EXIT_OK and out.writes == 1
    header, *rows = out.getvalue().splitlines()
    node_columns = [c for c in header.split() if c.startswith("N")]
    assert node_columns
    assert len(rows) == len(expected)
    for row in rows:
        cells = row.split()
        proc = expected[int(cells[0])]
        # the node columns are the ones before "local", two words each ("1.5 MiB")
        shown = [" ".join(cells[i : i + 2]) for i in range(-1 - 2 * len(node_columns), -1, 2)]
        wanted = [format_bytes(proc["node_bytes"].get(c[1:], 0)) for c in node_columns]
        assert shown == wanted, row


def test_many_pids_in_one_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """`numastat -p` style: thousands of pids as words, commas or repeated options."""
    pids = [str(n) for n in range(100_000, 103_000)]
    args = cli.build_parser().parse_args(["ps", "--pid", *pids[:2000], "--pid", ",".join(pids)])
    assert cli._flat_pids(args.pid) == [int(p) for p in pids]


# ---------------------------------------------------------------- one-shot scans


def test_ps_asks_for_a_one_shot_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    from numatui.kernel.live import LiveSource

    seen: list[dict[str, Any]] = []
    original = LiveSource.scan

    def spy(self: LiveSource, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LiveSource, "scan", spy)
    for argv in (["ps"], ["ps", "--json"], ["ps", "--match", "x"]):
        rc, _ = run_ps(monkeypatch, TREES[0], *argv)
        assert rc == cli.EXIT_OK
    assert [kw.get("one_shot") for kw in seen] == [True, True, True]
    # Each reads what it shows: kinds for --json only, command lines for --json and --match.
    assert [(kw["nodes_only"], kw["cmdline"]) for kw in seen] == [
        (True, False),
        (False, True),
        (True, True),
    ]


@pytest.mark.parametrize(
    ("cpus", "load", "threads"),
    [
        (2, 0.0, 2),  # idle cores: one walk per core (measured best on an idle host)
        (2, 1.9, 2),
        (2, 2.0, 4),  # the cores are taken: more walks ready whenever a parse holds the GIL
        (2, 7.0, 4),
        (8, 3.0, 8),
        (8, 9.0, 8),  # never more than 8
        (1, 5.0, 2),
        (0, 0.0, 1),  # an empty affinity set still reads
    ],
)
def test_one_shot_threads_follow_the_load(cpus: int, load: float, threads: int) -> None:
    assert one_shot_threads_for(cpus, load) == threads


@pytest.mark.parametrize(
    ("loadavg", "busy"),
    [
        # Right after 10,000 processes were started: a 1-minute load of 4.3, nothing running.
        ("4.30 1.90 0.80 1/10421 20411\n", 0),
        ("0.10 0.05 0.01 3/312 998\n", 2),  # two others want a CPU now
        ("7.90 7.50 6.00 9/400 1200\n", 8),
    ],
)
def test_busy_is_what_runs_now_not_the_decaying_average(
    tmp_path: Path, loadavg: str, busy: int
) -> None:
    (tmp_path / "loadavg").write_text(loadavg)
    assert other_runnable(tmp_path) == busy


def test_an_unreadable_loadavg_falls_back_to_the_average(tmp_path: Path) -> None:
    (tmp_path / "loadavg").write_text("garbled")
    assert other_runnable(tmp_path) == os.getloadavg()[0]


def test_one_shot_scan_reads_on_its_own_thread_count() -> None:
    scanner = ProcessScanner(proc_root=TREES[0] / "proc")
    assert scanner.one_shot_threads >= 1
    cpus = len(os.sched_getaffinity(0))
    # Readers: this process and its helper processes (scan_pool), one thread each.
    readers = scanner.one_shot_threads + scanner.one_shot_helpers
    assert readers in (cpus, min(8, 2 * cpus))
    assert scanner.one_shot_helpers == 0 or scanner.one_shot_threads == 1
    explicit = ProcessScanner(read_threads=3)  # an explicit count wins, in threads
    assert (explicit.one_shot_threads, explicit.one_shot_helpers) == (3, 0)

    used: list[tuple[int | None, int]] = []

    class Spy(ProcessScanner):
        def _read_many(self, pids: Any, cpu_map: Any, nodes_only: bool = False,
                       threads: int | None = None, cmdline: bool = True,
                       helpers: int = 0, beside_ui: bool = False) -> Any:  # fmt: skip
            used.append((threads, helpers))
            return super()._read_many(
                pids, cpu_map, nodes_only, threads, cmdline, helpers, beside_ui=beside_ui
            )

    spy = Spy(proc_root=TREES[0] / "proc", read_threads=None)
    spy.one_shot_threads, spy.one_shot_helpers, spy.read_threads = 5, 3, 2
    spy.scan()
    spy.scan(one_shot=True)
    assert used == [(2, 0), (5, 3)]  # the app's refreshes never start helpers
    # Only the app's first scan, beside its UI: helpers, one per CPU at most.
    spy.invalidate()
    spy.scan(beside_ui=True)
    assert 1 <= used[-1][1] <= len(os.sched_getaffinity(0))


def test_threaded_one_shot_scan_agrees_with_a_serial_scan() -> None:
    """Real processes, read on several threads and on one: the same bytes per node."""
    code = "import time; print('ready', flush=True); time.sleep(60)"
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(60)
    ]
    try:
        for child in children:  # each is in its sleep: its memory no longer changes
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        pids = [c.pid for c in children]
        topology = TopologyReader().read()
        threaded = ProcessScanner(read_threads=None)
        threaded.one_shot_threads = 4
        serial = ProcessScanner(read_threads=1)
        many = threaded.scan(pids=pids, topology=topology, nodes_only=True, one_shot=True)
        one = serial.scan(pids=pids, topology=topology, nodes_only=True)
        assert len(many.processes) == len(one.processes) == len(pids)
        assert [(p.pid, p.node_bytes) for p in many.processes] == [
            (p.pid, p.node_bytes) for p in one.processes
        ]
        assert all(p.node_bytes for p in many.processes)
    finally:
        for child in children:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()


def test_repeated_pid_options_are_parsed_as_one() -> None:
    """`--pid 1 --pid 2 ...` (numastat -p's habit) parses in linear time: argparse alone
    takes quadratic time over repeated options (0.3 s for 4,000)."""
    words = [w for n in range(1, 20_001) for w in ("--pid", str(n))]
    joined = cli._joined_pid_options(["ps", *words, "--json"])
    assert joined == ["ps", "--pid", *(str(n) for n in range(1, 20_001)), "--json"]
    args = cli.build_parser().parse_args(joined)
    assert cli._flat_pids(args.pid) == list(range(1, 20_001)) and args.json


ARGV_WORDS = ["--pid", "--json", "--match", "--limit", "--", "-5", "1", "2,3", "4,", "x", "ps"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ARGV_WORDS), max_size=12))
# A last `--pid` with no pid is an error; joined into the pids before it, it was not.
@example(["--pid", "1", "--pid"])
@example(["--pid", "1", "--pid", "--json"])
def test_joining_pid_options_never_changes_what_is_parsed(tail: list[str]) -> None:
    def outcome(argv: list[str]) -> object:
        try:
            return vars(cli.build_parser().parse_args(argv))
        except cli.UsageError:
            return cli.UsageError
        except SystemExit as exc:
            return ("exit", exc.code)

    argv = ["ps", *tail]
    assert outcome(cli._joined_pid_options(argv)) == outcome(argv)
