"""A long /proc file read on by a child process while this one parses (reader_child)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from numatui.kernel import pid_files, reader_child
from numatui.kernel.numa_maps import node_summary, summarize_numa_maps
from numatui.kernel.pid_reader import PidReader

HANDOFF = 64 * 1024


def numa_maps_like(lines: int, seed: int = 7) -> bytes:
    """Kernel-shaped lines of varied length (files with spaces escaped, as the kernel does)."""
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        start = 0x7F0000000000 + i * 0x2000
        path = " file=/usr/lib/" + "x" * rng.randrange(0, 200) if rng.random() < 0.4 else ""
        pages = rng.randrange(1, 5000)
        out.append(
            f"{start:x} default{path} anon={pages} dirty={pages} active=0 "
            f"N0={pages} kernelpagesize_kB=4\n"
        )
    return "".join(out).encode()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pids of the reader children started, each checked to be reaped at the end."""
    pids: list[int] = []
    real = reader_child._spawn

    def spy(path: str, source_fd: int) -> tuple[int, int] | None:
        started = real(path, source_fd)
        if started is not None:
            pids.append(started[0])
        return started

    monkeypatch.setattr(reader_child, "_spawn", spy)
    yield pids
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
            os.waitpid(pid, os.WNOHANG)


def numa_maps_file(tmp_path: Path, lines: int) -> tuple[Path, bytes]:
    content = numa_maps_like(lines)
    path = tmp_path / "numa_maps"
    path.write_bytes(content)
    return path, content


def read_pieces(path: Path, on_piece: Callable[[bytes], None] | None = None) -> list[bytes]:
    pieces: list[bytes] = []

    def take(piece: bytes) -> None:
        pieces.append(piece)
        if on_piece is not None:
            on_piece(piece)

    pid_files.read_in_pieces(str(path), take, handoff_bytes=HANDOFF)
    return pieces


def assert_whole_lines(pieces: list[bytes], content: bytes) -> None:
    assert b"".join(pieces) == content
    assert all(p.endswith(b"\n") for p in pieces[:-1])
    assert all(pieces)


def test_a_short_file_is_one_piece_read_here(tmp_path: Path, spawned: list[int]) -> None:
    path, content = numa_maps_file(tmp_path, 50)
    assert read_pieces(path) == [content]
    assert spawned == []


def test_a_long_file_comes_whole_in_line_pieces_through_a_child(
    tmp_path: Path, spawned: list[int]
) -> None:
    path, content = numa_maps_file(tmp_path, 40_000)
    pieces = read_pieces(path)
    assert len(spawned) == 1
    assert len(pieces) >= 4
    assert max(map(len, pieces)) <= reader_child.PIECE_BYTES + reader_child.PIPE_BYTES
    assert_whole_lines(pieces, content)


def test_without_a_trusted_reader_the_file_is_read_here(
    tmp_path: Path, spawned: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_child, "READER_PATHS", (str(tmp_path / "none"),))
    monkeypatch.setattr(reader_child._Found, "looked", False)
    monkeypatch.setattr(reader_child._Found, "path", None)
    path, content = numa_maps_file(tmp_path, 20_000)
    pieces = read_pieces(path)
    assert spawned == []
    assert_whole_lines(pieces, content)


def test_a_reader_that_fails_at_once_leaves_the_file_to_this_process(
    tmp_path: Path, spawned: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_child, "reader_path", lambda: "/bin/false")
    path, content = numa_maps_file(tmp_path, 20_000)
    pieces = read_pieces(path)
    assert len(spawned) == 1
    assert_whole_lines(pieces, content)


def test_a_reader_killed_midway_is_read_on_from_what_arrived(
    tmp_path: Path, spawned: list[int]
) -> None:
    # Far more than the pipe holds: by the second piece the child has filled the pipe
    # and waits in a write, a block read past what arrived here, and is killed there.
    path, content = numa_maps_file(tmp_path, 120_000)
    seen: list[bytes] = []

    def kill_at_second_piece(piece: bytes) -> None:
        seen.append(piece)
        if len(seen) == 2:
            time.sleep(0.3)
            os.kill(spawned[0], signal.SIGKILL)

    pieces = read_pieces(path, kill_at_second_piece)
    assert len(seen) > 2
    assert_whole_lines(pieces, content)


def test_a_parse_that_raises_leaves_no_reader_and_no_descriptor(
    tmp_path: Path, spawned: list[int]
) -> None:
    path, _ = numa_maps_file(tmp_path, 40_000)
    before = set(os.listdir("/proc/self/fd"))
    calls = []

    def fail_on_second(piece: bytes) -> None:
        calls.append(piece)
        if len(calls) == 2:
            raise RuntimeError("parse failed")

    with pytest.raises(RuntimeError, match="parse failed"):
        read_pieces(path, fail_on_second)
    assert len(spawned) == 1
    assert set(os.listdir("/proc/self/fd")) == before


def test_only_a_reader_no_one_else_may_change_runs(tmp_path: Path) -> None:
    program = tmp_path / "dd"
    program.write_bytes(Path("/bin/true").read_bytes())
    program.chmod(0o775)  # group-writable
    assert not reader_child._trusted(str(program))
    program.chmod(0o755)
    # Under /tmp, which anyone may write to: anyone could have put it there.
    assert not reader_child._trusted(str(program))
    assert not reader_child._trusted(str(tmp_path))  # not a regular file
    assert not reader_child._trusted(str(tmp_path / "missing"))
    # The system's dd, also through a link in such a directory: its real path is checked
    # and is what runs.
    system = next(p for p in reader_child.READER_PATHS if Path(p).exists())
    assert reader_child._trusted(system)
    link = tmp_path / "link"
    link.symlink_to(system)
    assert reader_child._trusted(str(link))
    assert reader_child.reader_path() == os.path.realpath(system)


def test_a_process_with_many_mappings_reads_the_same_through_the_reader(
    process_with_mappings: Callable[[int], tuple[int, int]], spawned: list[int]
) -> None:
    pid, pages = process_with_mappings(60_000)
    reader = PidReader("/proc", os.sysconf("SC_PAGE_SIZE"))
    direct = Path(f"/proc/{pid}/numa_maps").read_bytes()
    assert len(direct) > pid_files.HANDOFF_BYTES
    for nodes_only, summarize in ((True, node_summary), (False, summarize_numa_maps)):
        _, memory, unreadable = reader.read_full(pid, {}, nodes_only=nodes_only)
        expected = summarize(direct, reader.page_size, None)
        assert not unreadable
        assert memory.mapping_count == expected.mapping_count >= pages // 2
        assert dict(memory.node_bytes) == expected.node_bytes
        assert {k: dict(v) for k, v in memory.kind_bytes.items()} == expected.kind_bytes
    assert len(spawned) == 2
