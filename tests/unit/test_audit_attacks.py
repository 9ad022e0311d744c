"""The audit trail against a hostile file system, and `numatui log` against a damaged log.

Real files, real mounts, real processes: a symlink planted by another user
(uid 65534), a FIFO, a directory, a read-only file, a full tmpfs that cuts a
write short, two numatui processes writing at once, and every kind of bad line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from numatui.cli import EXIT_OK, main
from numatui.kernel import audit, migration
from numatui.kernel.live import LiveSource
from numatui.model.migration import MigrationError, MigrationOutcome, MigrationPlan, MigrationResult

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="plays another user: needs root")


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """A blocking open (a FIFO without a reader) fails the test instead of hanging it."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def plan(pid: int = 4242) -> MigrationPlan:
    return MigrationPlan(
        pid, frozenset({0}), frozenset({1}), ((0, 1),), (4096,), process_name="worker"
    )


def an_entry(entry_id: str = "") -> audit.AuditEntry:
    return audit.attempt_entry(plan(), entry_id or audit.new_id())


def refuses(path: Path, *words: str) -> str:
    with deadline(10), pytest.raises(audit.AuditError) as caught:
        audit.record(an_entry(), path)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------- where it writes


@as_root
def test_a_symlink_planted_by_another_user_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("root's precious file\n")
    victim.chmod(0o600)
    home = tmp_path / "home"  # XDG_STATE_HOME under sudo -E: the other user's directory
    (home / "numatui").mkdir(parents=True)
    (home / "numatui" / "audit.jsonl").symlink_to(victim)
    for d in (home, home / "numatui"):
        os.chown(d, NOBODY, NOBODY)
    os.lchown(home / "numatui" / "audit.jsonl", NOBODY, NOBODY)
    refuses(home / "numatui" / "audit.jsonl", "belongs to another user", "65534")
    assert victim.read_text() == "root's precious file\n"
    # Even in a directory of our own, a symlink at the log's name is not followed.
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    (own / "audit.jsonl").symlink_to(victim)
    refuses(own / "audit.jsonl", "symlink")
    assert victim.read_text() == "root's precious file\n"


@as_root
def test_no_directory_is_created_inside_another_users_directory(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    refuses(theirs / "state" / "numatui" / "audit.jsonl", "another user")
    assert list(theirs.iterdir()) == []


def test_a_symlinked_directory_on_the_way_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    refuses(tmp_path / "link" / "audit.jsonl", "symlink")
    assert list(real.iterdir()) == []


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    refuses(shared / "audit.jsonl", "can be written by other users", "0777")


def test_created_directories_and_file_are_private(tmp_path: Path) -> None:
    log = tmp_path / "a" / "b" / "audit.jsonl"
    old = os.umask(0)  # a careless umask must not make them world-writable
    try:
        assert audit.record(an_entry(), log).written
    finally:
        os.umask(old)
    assert (log.parent.stat().st_mode & 0o777, log.parent.parent.stat().st_mode & 0o777) == (
        0o700,
        0o700,
    )
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_fifo_is_refused_without_blocking_even_with_a_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo, 0o600)
    refuses(fifo, "FIFO")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        refuses(fifo, "FIFO")
        assert os.read(reader, 100) == b""  # nothing was written into it
    finally:
        os.close(reader)


def test_a_directory_and_a_device_are_refused(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").mkdir()
    refuses(tmp_path / "audit.jsonl", "directory")
    refuses(Path(os.devnull), "character device")


def test_a_read_only_file_is_refused_even_for_root(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    log.chmod(0o400)
    refuses(log, "read-only", "0400")
    assert log.read_text() == ""


@as_root
def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    log.chmod(0o600)
    os.chown(log, NOBODY, NOBODY)
    refuses(log, "another user")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir(mode=0o700)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], timeout=30, check=True)


def test_a_short_write_on_a_full_disk_leaves_no_partial_line(small_tmpfs: Path) -> None:
    log = small_tmpfs / "audit.jsonl"
    assert audit.record(an_entry(), log).written
    # Fill the log's first page but for a few bytes, then the rest of the file system.
    with log.open("ab") as f:
        f.write(b"\n" * (4096 - 40 - log.stat().st_size))
    filler = os.open(small_tmpfs / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(filler, b"x" * 4096)
    finally:
        os.close(filler)
    before = log.read_bytes()
    refuses(log, "only 40 of", "disk full")
    assert log.read_bytes() == before  # the cut line was taken back
    # With room again, the next entry is whole and the trail reads back.
    (small_tmpfs / "filler").unlink()
    assert audit.record(an_entry("after"), log).written
    got = audit.read_tail(log)
    assert [e.id for e in got.entries][-1] == "after" and got.skipped == 0


WRITER = """
import sys
from numatui.kernel import audit
from numatui.model.migration import MigrationPlan
path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
plan = MigrationPlan(
    4242, frozenset({0}), frozenset({1}), ((0, 1),), (4096,), process_name="w" * 300
)
for i in range(count):
    audit.record(audit.attempt_entry(plan, f"{tag}-{i}"), __import__("pathlib").Path(path))
"""


def test_two_writers_at_once_never_interleave(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    count = 400
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log), tag, str(count)], env=env)
        for tag in ("a", "b")
    ]
    for w in writers:
        assert w.wait(timeout=120) == 0
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""
    ids = [audit.parse_line(line).id for line in lines[:-1]]  # every line is a whole entry
    assert sorted(ids) == sorted(f"{t}-{i}" for t in "ab" for i in range(count))


# ---------------------------------------------------------------- fail closed


def test_a_migration_whose_attempt_cannot_be_recorded_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[MigrationPlan] = []

    def kernel(p: MigrationPlan, **kwargs: object) -> MigrationResult:
        calls.append(p)
        raise AssertionError("the syscall must not be reached")

    monkeypatch.setattr(migration, "run_migration", kernel)
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo, 0o600)
    source = LiveSource(audit_path=fifo)
    with deadline(10):
        result = source.migrate(plan(os.getpid()))
    assert calls == []
    assert result.outcome is MigrationOutcome.FAILED and result.bytes_moved == 0
    assert result.error is not None and "could not be recorded" in result.error.message
    assert result.audit is not None and not result.audit.written
    assert result.audit.path == str(fifo) and "FIFO" in (result.audit.reason or "")


def test_attempt_is_written_before_the_syscall_and_the_outcome_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    seen_at_syscall: list[list[str]] = []

    def kernel(p: MigrationPlan, **kwargs: object) -> MigrationResult:
        seen_at_syscall.append(log.read_text().splitlines())
        return MigrationResult.unchanged(p, MigrationError("EPERM", "x"))

    monkeypatch.setattr(migration, "run_migration", kernel)
    result = LiveSource(audit_path=log).migrate(plan(os.getpid()))
    (before,) = seen_at_syscall
    (attempt,) = [json.loads(line) for line in before]
    attempt_line, outcome_line = (json.loads(line) for line in log.read_text().splitlines())
    assert attempt == attempt_line and attempt["phase"] == "attempt"
    assert outcome_line["phase"] == "outcome" and outcome_line["id"] == attempt["id"]
    assert outcome_line["outcome"] == "failed"
    assert result.audit is not None and result.audit.written and result.audit.path == str(log)
    (joined,) = audit.read(log)  # one migration, shown by its outcome
    assert joined.outcome == "failed"


def test_an_attempt_without_an_outcome_still_shows(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.record(an_entry("crashed"), log)
    (entry,) = audit.read(log)
    assert (entry.id, entry.outcome) == ("crashed", audit.ATTEMPTED)


# ---------------------------------------------------------------- reading a damaged log


def good_line(entry_id: str) -> bytes:
    return audit.encode(an_entry(entry_id))


def bad_lines() -> list[bytes]:
    good = json.loads(good_line("x"))

    def variant(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    return [
        variant(time=float("nan")),  # json.dumps writes NaN
        variant(pid=float("inf")),
        good_line("x").replace(b'"pid": 4242', b'"pid": 1e400'),
        good_line("x").replace(b'"time": ', b'"time": -'),
        variant(pid=0),
        variant(pid=-5),
        variant(pid=2**22 + 1),
        variant(uid=2**40),
        variant(uid=True),
        variant(bytes_moved=10**30),
        variant(pages_not_moved="3"),
        variant(process=["a"]),
        variant(phase="deleted"),
        b"[" * 5000 + b"]" * 5000,
        b'{"a": ' * 2000 + b"1" + b"}" * 2000,
        b"\x00\x01\x02\xff\xfe binary",
        good_line("x").rstrip(b"\n").replace(b'"worker"', '"w\xe9"'.encode("latin-1")),
        b'{"time": 1, "user": "x"',
        b"not json",
        b"[]",
        b"null",
        variant(process="p" * (audit.MAX_LINE_BYTES + 10)),
    ]


def test_every_kind_of_bad_line_is_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    bad = bad_lines()
    log.write_bytes(good_line("first") + b"\n".join(bad) + b"\n" + good_line("last"))
    got = audit.read_tail(log)
    assert [e.id for e in got.entries] == ["first", "last"]
    assert got.skipped == len(bad)


def test_log_json_stays_strict_and_says_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(good_line("ok") + b"\n".join(bad_lines()) + b"\n")
    assert main(["--audit-log", str(log), "log", "--json"]) == EXIT_OK
    out = capsys.readouterr().out
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert [e["id"] for e in data["entries"]] == ["ok"]
    assert data["skipped_lines"] == len(bad_lines())
    assert main(["--audit-log", str(log), "log"]) == EXIT_OK
    captured = capsys.readouterr()
    assert f"skipped {len(bad_lines())} lines" in captured.err


def test_limit_reads_from_the_end_across_blocks_and_overlong_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    huge = b"z" * (audit.BLOCK_BYTES * 3)  # spans several blocks: one skipped line
    lines = [good_line(f"e{i}") for i in range(300)]
    log.write_bytes(b"".join(lines[:150]) + huge + b"\n" + b"".join(lines[150:]))
    got = audit.read_tail(log, limit=200)
    assert [e.id for e in got.entries] == [f"e{i}" for i in range(100, 300)]
    got = audit.read_tail(log)
    assert [e.id for e in got.entries] == [f"e{i}" for i in range(300)]
    assert got.skipped == 1


def test_a_million_line_log_answers_limit_20_fast_and_small(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    line = good_line("0123456789abcdef")
    with log.open("wb") as f:
        for _ in range(1000):
            f.write(line * 1000)
    assert log.stat().st_size == len(line) * 1_000_000
    tracemalloc.start()
    started = time.perf_counter()
    got = audit.read_tail(log, limit=20)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(got.entries) == 20 and got.skipped == 0
    print(
        f"1M lines ({log.stat().st_size >> 20} MiB): --limit 20 in {elapsed * 1000:.1f} ms, "
        f"peak {peak / 1024:.0f} KiB"
    )
    assert elapsed < 0.5, elapsed
    assert peak < 4 * 2**20, peak
    # And through the command line, in a fresh process.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "numatui", "--audit-log", str(log), "log", "--limit", "20"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 20
