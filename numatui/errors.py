"""Exceptions every layer shares. Each message says what the user can do."""

from __future__ import annotations


class NumatuiError(Exception):
    """Base of every error numatui reports to a user (never a traceback)."""


class NodeStringError(NumatuiError, ValueError):
    """A node string the grammar does not accept (`0-3,5`, `all`, `!2`, `+0-1`)."""


class ProcessGone(NumatuiError):
    """The process exited (or never existed) while we looked at it."""

    def __init__(self, pid: int, detail: str = "") -> None:
        self.pid = pid
        super().__init__(f"process {pid} does not exist (it may have exited){detail}")


class MigrationRefused(NumatuiError):
    """Refused before calling the kernel; nothing was changed.

    `code` is the rules' stable name for the reason (`numatui.rules`), `errno_name` the
    errno the kernel would have answered ("" when the kernel would not have refused).
    """

    def __init__(self, message: str, *, code: str = "", errno_name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.errno_name = errno_name


class SyscallError(NumatuiError, OSError):
    """A NUMA syscall failed. `errno_name` is e.g. "EPERM"; the text explains it."""

    def __init__(self, errno_code: int, errno_name: str, call: str, message: str) -> None:
        OSError.__init__(self, errno_code, message)
        self.errno_name = errno_name
        self.call = call
        self.message = message

    def __str__(self) -> str:
        return f"{self.call}: {self.errno_name}: {self.message}"


class UnsupportedArchitecture(NumatuiError):
    """No syscall numbers known for this CPU architecture."""
