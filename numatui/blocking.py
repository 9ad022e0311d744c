"""Blocking source calls from thread workers, and the one line a user reads when one fails.

Shared by the app and its screens (which never import the app module).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from textual.worker import get_current_worker

from numatui.errors import NumatuiError

T = TypeVar("T")


class WorkAbandoned(Exception):
    """The worker was cancelled (the app is quitting) while the source still blocked."""


def call_abandonable(call: Callable[[], T], poll_s: float = 0.05) -> T:
    """Run a blocking source call so that quitting never waits for it.

    Textual's thread workers run in a non-daemon executor thread: a call blocked
    in the kernel would keep the process alive after quit. The call runs in a
    daemon thread instead, and the worker polls for cancellation while it waits.
    """
    worker = get_current_worker()
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
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


def describe_error(exc: BaseException) -> str:
    """A line a user can read: our own errors already are; others get their type."""
    if isinstance(exc, NumatuiError):
        return str(exc)
    text = str(exc) or "no details"
    return f"{type(exc).__name__}: {text}"
