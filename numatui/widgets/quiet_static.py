"""A Static that draws nothing when handed what it already shows.

Textual's `Static.update` re-renders and re-lays out even for the same content,
and a refreshed widget is written to the terminal again: screens that update
their lines on every refresh would write kilobytes a second to an idle
terminal (felt over SSH).
"""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static


def _same(a: VisualType, b: VisualType) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Text) and isinstance(b, Text):
        # Text's == sees the characters and spans only, not the style of the whole.
        return (a.plain, a.spans, a.style, a.justify) == (b.plain, b.spans, b.style, b.justify)
    return bool(a == b)


class QuietStatic(Static):
    """`Static` whose `update` with unchanged content does nothing."""

    def __init__(
        self,
        content: VisualType = "",
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(content, id=id, classes=classes)
        self._shown: VisualType = content

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if _same(content, self._shown):
            return
        self._shown = content
        super().update(content, layout=layout)
