"""`python -m numatui` and the `numatui` command.

The import of the CLI is inside the guard: Ctrl-C while Python is still loading
numatui exits 130 without a traceback, like Ctrl-C at any later moment.
"""

from __future__ import annotations

import contextlib
import os
import sys

EXIT_INTERRUPTED = 130


def _exit_interrupted() -> None:
    """Leave with 130 now, past the interpreter's own exit.

    CPython 3.11 marks a KeyboardInterrupt as unhandled when it passes through any
    `exec()` of source text (dataclasses and namedtuple build their methods that way)
    and never clears the mark when the exception is caught later; at exit it then
    kills itself with SIGINT, whatever status was asked for. Everything numatui holds
    is closed by now (the CLI's `with` blocks have unwound), so only the streams need
    flushing.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Python 3.11 wraps an exception raised in `__set_name__` (a dataclass field being
    created while a module loads) in a RuntimeError: Ctrl-C at that moment arrives as one."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def run() -> int:
    try:
        from numatui.cli import main

        code = main()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except RuntimeError as exc:
        if not _caused_by_ctrl_c(exc):
            raise
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        _exit_interrupted()
    return code


if __name__ == "__main__":
    sys.exit(run())
