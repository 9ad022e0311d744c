"""A terminal left non-blocking must not freeze the app (issue 12, the demo guest).

virtme-ng's init opens the guest console O_NONBLOCK and hands it to the shell. Textual
writes every frame from one thread (textual.drivers._writer_thread.WriterThread) through a
buffered stream: when the terminal takes less than a frame, the write raises
BlockingIOError, that thread dies, and the app's next 30 writes fill its queue and block
the UI thread for good (seen in the guest: main thread in queue.put, no writer thread).
Real parts here: a real pty, Textual's own writer thread, a reader that starts late.
"""

from __future__ import annotations

import io
import os
import pty
import select
import threading
import time
from collections.abc import Iterator

import pytest
from textual.drivers._writer_thread import WriterThread

from numatui.cli import blocking_terminal

FRAME = "x" * 8000
FRAMES = 25  # 200 KB: far more than a pty buffers (17 KB here) while nobody reads, and
# fewer than the writer's queue holds (30), so queueing them never blocks this thread


@pytest.fixture
def nonblocking_pty() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    os.set_blocking(slave, False)
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def write_frames_read_late(master: int, slave: int) -> tuple[bool, int, list[str]]:
    """Textual's writer thread gets FRAMES frames while nobody reads; then a reader drains.

    Returns whether the writer was alive after the reader caught up, the bytes that
    arrived, and the exceptions that ended threads.
    """
    deaths: list[str] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: deaths.append(repr(args.exc_value))
    try:
        # As sys.__stderr__, which Textual's Linux driver writes to: text over a buffer.
        stream = io.TextIOWrapper(io.BufferedWriter(io.FileIO(slave, "w", closefd=False)))
        writer = WriterThread(stream)
        writer.start()
        for _ in range(FRAMES):
            writer.write(FRAME)
        time.sleep(0.5)  # the terminal is full long before this
        received = 0
        while received < FRAMES * len(FRAME):
            if not select.select([master], [], [], 2.0)[0]:
                break  # nothing more is coming
            received += len(os.read(master, 65536))
        alive = writer.is_alive()
        if alive:
            writer.stop()
        return alive, received, deaths
    finally:
        threading.excepthook = previous_hook


def test_without_the_guard_textuals_writer_thread_dies(nonblocking_pty: tuple[int, int]) -> None:
    """The failure itself, so the guard below is known to guard against something real."""
    master, slave = nonblocking_pty
    alive, received, deaths = write_frames_read_late(master, slave)
    assert not alive
    assert deaths and "BlockingIOError" in deaths[0]
    assert received < FRAMES * len(FRAME)


def test_the_guard_keeps_the_writer_alive_and_every_byte_arrives(
    nonblocking_pty: tuple[int, int],
) -> None:
    master, slave = nonblocking_pty
    with blocking_terminal([slave]):
        assert os.get_blocking(slave)
        alive, received, deaths = write_frames_read_late(master, slave)
    assert alive
    assert deaths == []
    assert received == FRAMES * len(FRAME)
    # The terminal is given back as it was found.
    assert not os.get_blocking(slave)


def test_a_blocking_terminal_and_a_non_terminal_are_left_alone() -> None:
    master, slave = pty.openpty()
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        with blocking_terminal([slave, write_end]):
            assert os.get_blocking(slave)
            assert not os.get_blocking(write_end)  # not a terminal: not ours to change
        assert os.get_blocking(slave)
    finally:
        for fd in (master, slave, read_end, write_end):
            os.close(fd)
