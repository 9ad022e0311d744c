"""Blocking source calls from thread workers, and the one line a user reads when one fails.

Shared by the app and its screens (which never import the app module).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from textual.worker import get_current_worker

from numatui.errors import NumatuiError

T = TypeVar("T")


class WorkAbandoned(Exception):
    """The worker was cancelled (the app is quitting) while the source still blocked."""


BACKGROUND_NICE = 10
"""How much nicer than the app a background call's thread (and each thread it starts)
runs: relative, so an app started with `nice` stays below what it was given."""


def call_abandonable(call: Callable[[], T], poll_s: float = 0.05, *, background: bool = False) -> T:
    """Run a blocking source call so that quitting never waits for it.

    Textual's thread workers run in a non-daemon executor thread: a call blocked
    in the kernel would keep the process alive after quit. The call runs in a
    daemon thread instead, and the worker polls for cancellation while it waits.

    `background`: the call's thread runs at a lower CPU priority (nice +10), and so
    do the threads it starts (Linux gives a new thread its creator's nice value).
    For the periodic refresh: its reads compete for the CPUs with the UI thread,
    which answers keys (benchmarks/bench_ui.py: key p99 45.6 and 39.6 ms with it,
    51.3 and 66.7 ms without, 2,000 processes on 2 CPUs).
    """
    worker = get_current_worker()
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        if background:
            _lower_this_threads_priority()
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the worker thread, re-raised there
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"numatui:{worker.name}", daemon=True).start()
    while not done.wait(poll_s):
        if worker.is_cancelled:
            raise WorkAbandoned
    if failure:
        raise failure[0]
    return outcome[0]


def _lower_this_threads_priority() -> None:
    # Not permitted, or no such call here: the read runs as it would have.
    with contextlib.suppress(OSError):
        # On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
        tid = threading.get_native_id()
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, nice + BACKGROUND_NICE))


def describe_error(exc: BaseException) -> str:
    """A line a user can read: our own errors already are; others get their type."""
    if isinstance(exc, NumatuiError):
        return str(exc)
    text = str(exc) or "no details"
    return f"{type(exc).__name__}: {text}"
