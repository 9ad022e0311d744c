"""Checkboxes that read without colour: `[x]` ticked, `[ ]` not.

Textual draws every toggle as `▐X▌`, ticked or not, and only its colour tells
the two apart (unreadable on a monochrome terminal, in a screen reader, or for
someone who cannot tell the colours apart).
"""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

ValueT = TypeVar("ValueT")

TICKED = "[x]"
UNTICKED = "[ ]"


def tick(value: bool) -> str:
    return TICKED if value else UNTICKED


class TickBox(Checkbox):
    """A Checkbox drawn `[x]` / `[ ]`."""

    @property
    def _button(self) -> Content:
        return Content.styled(tick(self.value), self.get_visual_style("toggle--button"))


class TickList(SelectionList[ValueT]):
    """A SelectionList whose boxes are drawn `[x]` / `[ ]` (same width as Textual's)."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        try:
            option = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:  # no option on this line
            return strip
        if len(segments) < 4 or segments[0].text + segments[2].text != "▐▌":
            return strip  # not the button Textual draws: leave the line alone
        box = Segment(tick(option.value in self.selected), segments[1].style)
        return Strip([box, *segments[3:]], strip.cell_length)
