"""Per-node bars for the migration view: sources drain, targets fill.

`bar(fraction, width)` is pure and unit-tested; `NodeBar` draws one node's
bytes against a shared scale so bars of different nodes compare.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from numatui.units import human_bytes

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells wide filled to `fraction` (0..1), in eighths of a cell."""
    if width <= 0:
        return ""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    out = "█" * full
    if part and full < width:
        out += _EIGHTHS[part]
    return out.ljust(width)


class NodeBar(Widget):
    """`node 1 (target)  ████▌       1.20 GiB  +800 MiB`."""

    COMPONENT_CLASSES = {"node-bar--fill", "node-bar--gain", "node-bar--loss"}

    current: reactive[int] = reactive(0)
    scale: reactive[int] = reactive(1)

    def __init__(
        self,
        node_id: int,
        role: str,
        start: int,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.node_id = node_id
        self.role = role
        self.start = start
        self.set_reactive(NodeBar.current, start)

    def render(self) -> Text:
        label = f"node {self.node_id} ({self.role})"
        numbers = human_bytes(self.current).rjust(10)
        delta = self.current - self.start
        delta_text = ("+" if delta > 0 else "") + human_bytes(delta) if delta else ""
        width = max(0, self.size.width - 18 - 1 - 10 - 12)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(label.ljust(18))
        text.append(
            bar(self.current / self.scale if self.scale > 0 else 0.0, width),
            style=self.get_component_rich_style("node-bar--fill"),
        )
        text.append(" ")
        text.append(numbers)
        style = "node-bar--gain" if delta > 0 else "node-bar--loss"
        text.append(delta_text.rjust(12), style=self.get_component_rich_style(style))
        return text
