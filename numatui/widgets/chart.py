"""A one-line chart of a series, drawn with block characters.

`spark(values, width)` is a pure function (unit-tested without an app);
`SparkChart` is the widget that shows a label, the line and the latest value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int, ceiling: float | None = None) -> str:
    """The last `width` values as block characters, right-aligned, padded with spaces.

    `ceiling` fixes the top of the scale (e.g. a node's total memory) so charts of
    different nodes compare; without it the largest value shown is the top.
    """
    if width <= 0:
        return ""
    shown = list(values)[-width:]
    top = ceiling if ceiling is not None else max(shown, default=0.0)
    cells: list[str] = []
    for value in shown:
        if top <= 0 or value <= 0:
            cells.append(BLOCKS[0] if value <= 0 else BLOCKS[1])
            continue
        level = round(min(value, top) / top * (len(BLOCKS) - 1))
        # Anything above zero shows at least the lowest block, so activity is never invisible.
        cells.append(BLOCKS[max(1, level)])
    return " " * (width - len(shown)) + "".join(cells)


class SparkChart(Widget):
    """`label  ▁▂▄█▇  latest` on one line."""

    COMPONENT_CLASSES = {"spark-chart--line"}

    values: reactive[tuple[float, ...]] = reactive((), layout=False)

    def __init__(
        self,
        label: str,
        formatter: Callable[[float], str],
        *,
        ceiling: float | None = None,
        label_width: int = 14,
        value_width: int = 11,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.label = label
        self.formatter = formatter
        self.ceiling = ceiling
        self.label_width = label_width
        self.value_width = value_width

    def set_series(self, values: Sequence[float], ceiling: float | None = None) -> None:
        ceiling = ceiling if ceiling is not None else self.ceiling
        new = tuple(values)
        # New samples that draw the same line (a steady counter, a full window of equal
        # values) are kept without a redraw: an idle screen writes nothing.
        if self._drawn(new, ceiling) == self._drawn(self.values, self.ceiling):
            self.ceiling = ceiling
            self.set_reactive(SparkChart.values, new)
            return
        self.ceiling = ceiling
        self.values = new

    def _line_width(self) -> int:
        return max(0, self.size.width - self.label_width - self.value_width - 2)

    def _drawn(self, values: tuple[float, ...], ceiling: float | None) -> tuple[str, str]:
        latest = self.formatter(values[-1]) if values else "-"
        return spark(values, self._line_width(), ceiling), latest

    def render(self) -> Text:
        line, latest = self._drawn(self.values, self.ceiling)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.label[: self.label_width].ljust(self.label_width), style="bold")
        text.append(" ")
        text.append(line, style=self.get_component_rich_style("spark-chart--line"))
        text.append(" ")
        text.append(latest.rjust(self.value_width))
        return text
