"""Safety: numatui never runs a shell, moves only what the user confirmed, and logs every attempt.

Decisions the tests pin down:
- The audit log records every migration the user CONFIRMED, whatever happened next:
  moved, partly moved, failed in the kernel, refused at the last moment (the pid was
  reused after confirming), or numatui itself crashing mid-way. Requests refused while
  planning (before any confirmation) and requests the user declined are not attempts:
  nothing was asked of the kernel, and the migrate dialog re-plans on every toggle,
  which would flood the log. They are answered on screen / on stderr instead.
- A plan made by `LiveSource.plan` remembers the start time of its process; if the pid
  belongs to another process when the migration starts (the user took a while to
  confirm, the process exited, the pid was reused), nothing is moved.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from numatui import cli
from numatui.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from numatui.kernel import audit, migration
from numatui.kernel.live import LiveSource
from numatui.model.migration import MigrationOutcome, MigrationPlan, MigrationResult
from numatui.model.node_bytes import frozen_map
from tests.tooling.terminal_input import TerminalInput

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "numatui"
FIXTURES = ROOT / "tests" / "fixtures"
FOUR_NODES_SYS = FIXTURES / "four_nodes" / "sys"

# ---------------------------------------------------------------- no shell, ever

SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("pty", "spawn"),
    ("asyncio", "create_subprocess_shell"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}
EXEC_PREFIXES = ("exec", "spawn", "posix_spawn")
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
# Modules allowed to start processes at all; each starts only a Python interpreter with
# an argument list (reviewed). A new entry here needs the same review.
# Reviewed: scan_pool starts numatui's own helpers (this interpreter, a fixed -c string
# naming the directory numatui was imported from; no text read from processes or users).
# The test workload (tests/tooling/workload.py) is not in the package.
# Reviewed: reader_child runs a system dd (READER_PATHS, fixed; a regular file owned by
# root and writable by no one else), its arguments constants, its environment empty, its
# only input a file descriptor numatui opened itself through a held /proc/PID directory.
MAY_SPAWN: set[str] = {"numatui/kernel/scan_pool.py", "numatui/kernel/reader_child.py"}
MAY_EXEC = {("numatui/kernel/reader_child.py", "os.posix_spawn")}


def _python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(node: ast.expr) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _spawning_calls(tree: ast.AST) -> list[tuple[int, str, ast.Call]]:
    found: list[tuple[int, str, ast.Call]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if len(name) < 2:
            continue
        module, attr = name[-2], name[-1]
        shell = (module, attr) in SHELL_CALLS
        exec_call = module == "os" and attr.startswith(EXEC_PREFIXES)
        if shell or exec_call or (module == "subprocess" and attr in SUBPROCESS_CALLS):
            found.append((node.lineno, ".".join(name), node))
    return found


def test_the_package_never_runs_a_shell() -> None:
    problems: list[str] = []
    spawners: set[str] = set()
    for path in _python_files():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), filename=rel)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "shell"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                problems.append(f"{rel}:{node.value.lineno}: shell= passed")
        for line, name, call in _spawning_calls(tree):
            spawners.add(rel)
            if (rel, name) in MAY_EXEC:
                continue
            if not name.startswith("subprocess."):
                problems.append(f"{rel}:{line}: {name} (a shell or exec call)")
                continue
            command = call.args[0] if call.args else None
            if isinstance(command, ast.Constant | ast.JoinedStr | ast.BinOp):
                problems.append(f"{rel}:{line}: {name} given a string, not an argument list")
    assert not problems, "\n".join(problems)
    assert spawners <= MAY_SPAWN, f"new process-starting code to review: {spawners - MAY_SPAWN}"


def test_the_static_check_sees_what_it_forbids() -> None:
    """The check itself must catch each form, or passing proves nothing."""
    bad = textwrap.dedent(
        """
        import os, subprocess, asyncio
        os.system("ls")
        os.execvp("ls", ["ls"])
        subprocess.run("ls -l", shell=True)
        subprocess.check_output(f"ls {x}")
        asyncio.create_subprocess_shell("ls")
        """
    )
    tree = ast.parse(bad)
    names = [name for _, name, _ in _spawning_calls(tree)]
    assert names == [
        "os.system",
        "os.execvp",
        "subprocess.run",
        "subprocess.check_output",
        "asyncio.create_subprocess_shell",
    ]
    assert any(isinstance(n, ast.keyword) and n.arg == "shell" for n in ast.walk(tree))


RUNTIME_PROBE = r"""
import asyncio, json, os, sys, tempfile
events = []
WATCH = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty", "pty.spawn")
def hook(event, args):
    if event in WATCH:
        events.append(event)
sys.addaudithook(hook)

from numatui.cli import main
log = os.path.join(tempfile.mkdtemp(), "audit.jsonl")
codes = [
    main(["nodes"]), main(["nodes", "--json"]), main(["ps", "--limit", "5"]),
    main(["ps", "--json", "--pid", str(os.getpid())]),
    main(["migrate", str(os.getpid()), "0", "0", "--dry-run"]),
    main(["migrate", str(os.getpid()), "all", "0", "--yes"]),
    main(["log", "--file", log]),
]

from numatui.app import NumatuiApp
from numatui.kernel.live import LiveSource

async def drive():
    app = NumatuiApp(LiveSource(audit_path=__import__("pathlib").Path(log)))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.state is not None:
                break
            await pilot.pause(0.05)
        for key in ("down", "s", "enter", "escape", "N", "p", "question_mark", "escape", "m",
                    "escape", "u"):
            await pilot.press(key)
        await pilot.pause(0.3)
asyncio.run(drive())
print(json.dumps({"events": events, "codes": codes}))
"""


def test_no_process_is_started_at_run_time() -> None:
    """Every CLI command and a tour of the app, under an audit hook for process creation."""
    proc = subprocess.run(
        [sys.executable, "-c", RUNTIME_PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == [], report
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- confirmation


class _RecordingSource(LiveSource):
    """The live source with a plan the host could carry out and a migrate that records."""

    migrations: list[MigrationPlan] = []

    def plan(
        self,
        pid: int,
        from_nodes: Any,
        to_nodes: Any,
        *,
        stoppable: bool = False,
        pacing: Any = None,
    ) -> MigrationPlan:
        return MigrationPlan(
            pid, frozenset({0}), frozenset({1}), ((0, 1),), (4096,), stoppable=stoppable
        )

    def migrate(self, plan: MigrationPlan, on_progress: Any = None, cancel: Any = None) -> Any:
        type(self).migrations.append(plan)
        return MigrationResult(
            plan,
            MigrationOutcome.PARTLY_MOVED,
            frozen_map({0: 4096}),
            frozen_map({1: 4096}),
            1,
            0.1,
        )


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MigrationPlan]]:
    _RecordingSource.migrations = []
    monkeypatch.setattr(cli, "LiveSource", _RecordingSource)
    yield _RecordingSource.migrations


MIGRATE = ["--sys-root", str(FOUR_NODES_SYS), "migrate", str(os.getpid()), "0", "1"]


@pytest.mark.parametrize(
    ("stdin", "extra", "expected_rc", "migrated"),
    [
        (io.StringIO("y\n"), [], EXIT_FAILED, False),  # not a terminal: never asks, refuses
        (TerminalInput(""), [], EXIT_FAILED, False),  # end of input is not a yes
        (TerminalInput("n\n"), [], EXIT_FAILED, False),
        (TerminalInput("yes please\n"), [], EXIT_FAILED, False),  # only y / yes
        (TerminalInput("\n"), [], EXIT_FAILED, False),  # the default is no
        (TerminalInput("Y\n"), [], EXIT_PARTIAL, True),
        (io.StringIO(""), ["--yes"], EXIT_PARTIAL, True),
        (io.StringIO(""), ["--dry-run", "--yes"], EXIT_OK, False),
    ],
)
def test_cli_migrates_only_after_confirmation(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recording: list[MigrationPlan],
    stdin: io.StringIO,
    extra: list[str],
    expected_rc: int,
    migrated: bool,
) -> None:
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main([*MIGRATE, *extra]) == expected_rc
    assert bool(recording) == migrated
    if migrated:
        assert recording[0].pid == os.getpid()


async def test_app_migrates_the_confirmed_process_even_if_the_table_changed() -> None:
    """A refresh during the dialog (the row under the cursor is now another process, the
    confirmed one exited) must not change which process is migrated: the one confirmed."""
    from numatui.screens.migration import MigrationScreen
    from tests.tui.conftest import open_dialog, quiet_app, settle
    from tests.tui.fakes import FakeSource

    source = FakeSource()
    app = quiet_app(source)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        pid = 100 + 3 * 37
        await open_dialog(pilot, pid)
        assert source.migrations == []  # opening the dialog moves nothing
        source.exit_process(pid)
        app.action_refresh_now()
        await settle(pilot)
        assert source.migrations == []
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MigrationScreen)
        assert [p.pid for p in source.migrations] == [pid]


# ---------------------------------------------------------------- pid reuse and the audit log


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "120"])
    yield child
    with contextlib.suppress(ProcessLookupError):
        child.kill()
    child.wait()


def _start_with_pid(pid: int, attempts: int = 20) -> subprocess.Popen[bytes] | None:
    """A new process that gets `pid` (root: /proc/sys/kernel/ns_last_pid), or None."""
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    for _ in range(attempts):
        try:
            last_pid.write_text(f"{pid - 1}\n")
        except OSError:
            return None
        child = subprocess.Popen(["sleep", "120"])
        if child.pid == pid:
            return child
        child.kill()  # another process on this machine forked first: try again
        child.wait()
    return None


def _live_source(tmp_path: Path) -> LiveSource:
    # The 4-node recorded /sys makes a plan possible; /proc and the syscall are this host's.
    return LiveSource(sys_root=FOUR_NODES_SYS, audit_path=tmp_path / "audit.jsonl")


def test_a_pid_reused_after_confirmation_is_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    source = _live_source(tmp_path)
    plan = source.plan(sleeper.pid, {1}, {0})
    assert plan.pairs == ((1, 0),)
    sleeper.kill()
    sleeper.wait()
    stranger = _start_with_pid(sleeper.pid)
    if stranger is None:
        pytest.skip("cannot steer pid allocation here (needs root and ns_last_pid)")
    calls: list[int] = []
    real_run = migration.run_migration

    def run_migration(plan: MigrationPlan, *args: Any, **kwargs: Any) -> MigrationResult:
        calls.append(plan.pid)
        return real_run(plan, *args, **kwargs)

    monkeypatch.setattr(migration, "run_migration", run_migration)
    try:
        result = source.migrate(plan)
    finally:
        stranger.kill()
        stranger.wait()
    assert calls == []
    assert result.outcome is MigrationOutcome.FAILED and result.bytes_moved == 0
    assert result.error is not None and "pid now belongs to another process" in result.error.message
    (entry,) = audit.read(tmp_path / "audit.jsonl")
    assert entry.pid == sleeper.pid and entry.outcome == "failed"
    assert entry.error is not None and "another process" in entry.error


def test_the_same_process_is_migrated_after_a_wait(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """No false alarm: the planned process, still there, is handed to the kernel."""
    source = _live_source(tmp_path)
    plan = source.plan(sleeper.pid, {1}, {0})
    time.sleep(0.05)
    result = source.migrate(plan)
    # This host has one node: node 1 holds nothing of it, so the kernel has nothing to move.
    assert result.outcome is MigrationOutcome.NOTHING_TO_MOVE, result
    (entry,) = audit.read(tmp_path / "audit.jsonl")
    assert entry.outcome == "nothing to move" and entry.pid == sleeper.pid


def test_a_kernel_failure_is_audited(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    source = LiveSource(audit_path=tmp_path / "audit.jsonl")
    # Node 1 does not exist on this host: the real kernel answers EINVAL.
    plan = MigrationPlan(sleeper.pid, frozenset({0}), frozenset({1}), ((0, 1),), (4096,))
    result = source.migrate(plan)
    assert result.outcome is MigrationOutcome.FAILED
    assert result.error is not None and result.error.errno_name == "EINVAL"
    (entry,) = audit.read(tmp_path / "audit.jsonl")
    assert entry.outcome == "failed" and entry.error is not None and "EINVAL" in entry.error


def test_a_crash_mid_migration_is_audited_then_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    def explode(*args: object, **kwargs: object) -> MigrationResult:
        raise RuntimeError("sampler blew up")

    monkeypatch.setattr(migration, "run_migration", explode)
    source = LiveSource(audit_path=tmp_path / "audit.jsonl")
    plan = MigrationPlan(sleeper.pid, frozenset({0}), frozenset({1}), ((0, 1),), (4096,))
    with pytest.raises(RuntimeError):
        source.migrate(plan)
    (entry,) = audit.read(tmp_path / "audit.jsonl")
    assert entry.outcome == "failed" and "sampler blew up" in (entry.error or "")


def test_refusals_and_declines_are_not_attempts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sleeper: subprocess.Popen[bytes],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv(audit.PATH_ENV, str(tmp_path / "numatui" / "audit.jsonl"))
    # Refused while planning: this host has a single node.
    assert main(["migrate", str(sleeper.pid), "0", "0", "--yes"]) == EXIT_FAILED
    # Declined: a plan the 4-node /sys allows, answered "n".
    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    assert main(["--sys-root", str(FOUR_NODES_SYS), "migrate", str(sleeper.pid), "1", "0"]) == (
        EXIT_FAILED
    )
    assert audit.read(audit.default_log_path()) == []
    assert "refused" in capsys.readouterr().err


# ---------------------------------------------------------------- every argument, fuzzed

TWO_NODES = ["--sys-root", str(FIXTURES / "two_nodes" / "sys")]
TWO_NODES += ["--proc-root", str(FIXTURES / "two_nodes" / "proc")]
WORDS = [
    "nodes", "ps", "migrate", "log", "--json", "--pid", "--limit", "--sort", "--match",
    "--dry-run", "--yes", "--file", "-h", "0", "-1", "1", "99999999999", "1e3", "0x10", "",
    "all", "!all", "1-0", "0,0", "0-1", "+0", "!0", "5", "numa", "node1", "node99", "pid",
    "--", "-", "--limit=-5", "--pid=0", "٣", " 1", "1 ",
]  # fmt: skip
argument = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=10).filter(lambda s: "\x00" not in s),  # argv never holds a NUL
    st.integers(-(2**70), 2**70).map(str),
)


def _opens_the_ui(argv: list[str]) -> bool:
    """No command: `numatui` would start the interactive UI, which a fuzz cannot drive."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return cli.build_parser().parse_args(argv).command is None
        except (cli.UsageError, SystemExit):
            return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(argument, max_size=6))
def test_any_command_line_gives_a_clear_answer(argv: list[str]) -> None:
    """Any argv, against a recorded machine: an exit status and a message, never a traceback."""
    assume(not _opens_the_ui([*TWO_NODES, *argv]))
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main([*TWO_NODES, *argv])
        except SystemExit as exc:  # --help and --version print and exit 0
            rc = exc.code if isinstance(exc.code, int) else EXIT_USAGE
    assert rc in (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL), (argv, rc)
    assert "Traceback" not in err.getvalue()
    if rc == EXIT_USAGE:
        assert err.getvalue().startswith(("numatui: ", "usage:")), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ps", "--limit", "-1"], "positive"),
        (["ps", "--limit", "0"], "positive"),
        (["log", "--limit", "-3"], "positive"),
        (["ps", "--pid", "0"], "positive number"),
        (["ps", "--pid", "x"], "positive number"),
        (["ps", "--sort", "node"], "unknown sort key"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*TWO_NODES, *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_ps_sort_by_an_absent_node_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 12: `--sort node1` on a machine without node 1 was silently accepted.
    assert main([*TWO_NODES, "ps", "--sort", "node99", "--json"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert not captured.out and "no node 99 (it has node0, node1)" in captured.err
