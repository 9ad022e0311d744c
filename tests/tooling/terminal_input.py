"""A stdin that is a terminal, for the CLI's confirmation questions.

The CLI asks only on a terminal (a pipe is never taken as a yes), so a test that
answers needs a stdin whose `isatty()` says so.
"""

from __future__ import annotations

import io


class TerminalInput(io.StringIO):
    """A stdin that is a terminal, answering with its text."""

    def isatty(self) -> bool:
        return True
