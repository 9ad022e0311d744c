"""A long /proc file read by a child process, so that the kernel's walk overlaps the parse.

numa_maps of a process with 100,000 mappings is ~8 MB that the kernel writes a page
per read(2), walking page tables under the process's mmap lock: ~125 ms here, and
the parse (~30 ms for bytes per node, ~100 ms split by kind) came after it. `dd`,
given the already open file as its stdin, makes those reads on another CPU while this
process parses what has arrived through a pipe, in blocks of a piece each
(`iflag=fullblock`: `cat` writes each page as it reads it, and this process woke up
for every one). A Python thread could not: it needs the GIL back after every 4 KiB
read, and the parse holds it.

The child is a system `dd` (a regular file that only root may change, in directories
only root may change), run with no environment and its stderr on /dev/null, through
posix_spawn (no fork of this possibly threaded process). It reads the file this
process opened through its held /proc/PID directory, so a pid reused meanwhile cannot
mix two processes. This module imports nothing a scan's helper process has not loaded
already.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable

READER_PATHS = ("/usr/bin/dd", "/bin/dd")

PIPE_BYTES = 1 << 20
"""The pipe's capacity asked for: room for ~16 ms of the child's reading while this
process parses a piece (the default 64 KiB would stop it after 1 ms)."""

PIECE_BYTES = 1 << 18
"""What is parsed at once: large enough that the parse's fixed cost per call vanishes,
small enough that the parse follows the child closely."""

_SIGKILL = 9


class _Found:
    path: str | None = None
    looked = False


def reader_path() -> str | None:
    """The `dd` to run, or None (none, or one that is not root's alone: then this
    process reads the whole file itself)."""
    if not _Found.looked:
        # Its real path: the one checked is the one run, whatever a link points at later.
        _Found.path = next((os.path.realpath(p) for p in READER_PATHS if _trusted(p)), None)
        _Found.looked = True
    return _Found.path


def _trusted(path: str) -> bool:
    """A regular executable file that only root may change or replace: it, and every
    directory on its real path, owned by root and writable by no group or other."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        if not (stat.S_ISREG(st.st_mode) and os.access(real, os.X_OK)):
            return False
        owners = [st]
        directory = os.path.dirname(real)
        while True:
            owners.append(os.stat(directory))
            if directory == "/":
                break
            directory = os.path.dirname(directory)
    except OSError:
        return False
    return all(o.st_uid == 0 and not o.st_mode & (stat.S_IWGRP | stat.S_IWOTH) for o in owners)


def _spawn(path: str, source_fd: int) -> tuple[int, int] | None:
    """(child pid, read end of its pipe) of a child copying `source_fd` from where it
    stands; None when none could start."""
    if source_fd <= 2:  # dup2 onto itself would keep close-on-exec; never the case here
        return None
    read_end, write_end = os.pipe()  # both close-on-exec: the child gets only its dup2s
    try:
        # Above /proc/sys/fs/pipe-max-size this fails, and the default size still works.
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        pid = os.posix_spawn(
            path,
            # Whole pieces into the pipe: a write per 4 KiB read would wake this
            # process for each while it waits (fullblock: dd reads until a block is full).
            [path, f"bs={PIECE_BYTES}", "iflag=fullblock", "status=none"],
            {},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, source_fd, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        os.close(read_end)
        return None
    finally:
        os.close(write_end)
    return pid, read_end


def copy_through_child(
    source_fd: int,
    on_piece: Callable[[bytes], None],
    *,
    head: bytes = b"",
    carried: bytes = b"",
    done: int = 0,
) -> None:
    """`head` (whole lines read already), then the rest of `source_fd`, handed to
    `on_piece` in pieces that end at a line's end; the rest is read by a child process
    while `on_piece` parses `head` and each piece here. `done`: bytes of the file read
    already; `carried`: the part line after `head`. Without a child, all is read here.

    If the child fails (killed, a read error), the file is read on from the last byte
    that arrived, here; errors of that read are raised as read(2) gave them.
    """
    path = reader_path()
    started = _spawn(path, source_fd) if path is not None else None
    if started is None:
        if head:
            on_piece(head)
        _pieces_from(source_fd, _Pieces(on_piece, carried))
        return
    pid, read_end = started
    finished = False
    received = done
    try:
        if head:
            on_piece(head)  # while the child reads on
        pieces = _Pieces(on_piece, carried)
        while True:
            chunk = os.read(read_end, PIPE_BYTES)
            if not chunk:
                break
            received += len(chunk)
            pieces.add(chunk)
        _, status = os.waitpid(pid, 0)
        finished = True
        if os.waitstatus_to_exitcode(status) != 0:
            # The child stopped early: read on here from what arrived. A seq_file
            # seeks by showing the records again up to that offset.
            os.lseek(source_fd, received, os.SEEK_SET)
            _pieces_from(source_fd, pieces)
        else:
            pieces.finish()
    finally:
        os.close(read_end)
        if not finished:  # on_piece raised: the child must not outlive the read
            try:
                os.kill(pid, _SIGKILL)
            except OSError as e:
                if e.errno != errno.ESRCH:
                    raise
            os.waitpid(pid, 0)


class _Pieces:
    """Chunks gathered into pieces that end at a line's end (joined once per piece, not
    copied again with every chunk)."""

    def __init__(self, on_piece: Callable[[bytes], None], carried: bytes) -> None:
        self._on_piece = on_piece
        self._chunks = [carried] if carried else []
        self._size = len(carried)
        self._due = PIECE_BYTES  # a line longer than a piece (not kernel text) doubles it

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= self._due:
            buffer = b"".join(self._chunks)
            cut = buffer.rfind(b"\n") + 1
            if cut:
                self._on_piece(buffer[:cut])
            self._chunks = [buffer[cut:]] if cut < len(buffer) else []
            self._size = len(buffer) - cut
            self._due = max(PIECE_BYTES, 2 * self._size)

    def finish(self) -> None:
        if self._size:
            self._on_piece(b"".join(self._chunks))
        self._chunks, self._size = [], 0


def _pieces_from(fd: int, pieces: _Pieces) -> None:
    while chunk := os.read(fd, PIECE_BYTES):
        pieces.add(chunk)
    pieces.finish()
