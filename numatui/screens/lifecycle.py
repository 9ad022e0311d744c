"""A worker's answer may land while the app is closing: its handler then does nothing.

The app tears screens down child by child; a message a worker posted just before (a
migration sample, a plan, a drain's progress) is still handled, and a handler that
queries a child already gone raises NoMatches (seen in the suite beside a CPU hog, for
the migrate dialog). Textual's `is_attached` turns False as soon as the app exits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from textual.dom import DOMNode

NodeT = TypeVar("NodeT", bound=DOMNode)
P = ParamSpec("P")


def while_attached(
    handler: Callable[Concatenate[NodeT, P], None],
) -> Callable[Concatenate[NodeT, P], None]:
    """`handler`, run only while its node is still linked to a running app."""

    @functools.wraps(handler)
    def guarded(self: NodeT, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if self.is_attached:
            handler(self, *args, **kwargs)

    return guarded
