"""Lines of a widget with a plain box, drawn without Textual's styles pass.

Textual's styles pass (borders, padding, outline, tint, opacity, hatch) has nothing to
add to a plain box, yet it rebuilds every line of a frame as a new Strip, and the app's
line filters then run again on each (their cache is kept per Strip). The process table
and its scrollbar redraw every line on a sort: profiled with 2,000 rows, the pass was
most of the scrollbar's share of that frame.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.color import Color
from rich.segment import Segment
from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.style import Style as BoxStyle
from textual.widget import Widget


def plain_box_lines(
    widget: Widget, crop: Region, line_at: Callable[[int], Strip] | None = None
) -> list[Strip] | None:
    """The lines of `crop` from `line_at` (default: `widget.render_line`), as Textual's pass
    would draw them for a plain box; None when the box is not plain (the caller then takes
    Textual's pass)."""
    styles = widget.styles
    if (
        any(styles.gutter)
        or any(edge for edge, _ in styles.outline)
        or styles.tint.a
        or styles.text_opacity != 1.0
        or widget.opacity != 1.0
        or (styles.has_rule("hatch") and styles.hatch != "none")
    ):
        return None
    base_background, background = widget.background_colors
    inner = BoxStyle(background=base_background + background).rich_style  # as Textual's
    width, height = widget.region.size
    filters = widget.get_line_filters()
    line_at = widget.render_line if line_at is None else line_at
    strips: list[Strip] = []
    for y in crop.line_range:
        if y < height:
            strip = line_at(y).adjust_cell_length(width, inner)
        else:
            strip = Strip.blank(width, inner)
        for line_filter in filters:
            strip = strip.apply_filter(line_filter, background)
        strips.append(strip)
    if crop.column_span != (0, width):
        x1, x2 = crop.column_span
        strips = [strip.crop(x1, x2) for strip in strips]
    return strips


class PlainScrollBar(ScrollBar):
    """Textual's vertical scrollbar, its lines drawn from `ScrollBarRender.render_bar`'s
    segments and `plain_box_lines`, not through Rich's console and Textual's styles pass.

    Each line is the one Segment Textual would draw, in the widget's style as Textual's
    `post_render` applies it; the last bar drawn is kept until the bar changes. Any other
    renderer, a horizontal bar or a box that is not plain goes through Textual. Profiled
    on a sort of 2,000 rows (which moves the thumb), on a loaded host: 3.4 ms of the
    frame through Textual, 0.4-1.2 ms drawn here.
    """

    _drawn: tuple[Hashable, list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        bar = self._bar_lines()
        lines = None if bar is None else plain_box_lines(self, crop, bar.__getitem__)
        return super().render_lines(crop) if lines is None else lines

    def _bar_lines(self) -> list[Strip] | None:
        bar = self.render()
        if type(bar) is not ScrollBarRender or not self.vertical:
            return None
        width, height = self.size
        style = self.app.console.get_style(bar.style)
        base = self.visual_style.rich_style
        key = (width, height, bar.virtual_size, bar.window_size, bar.position, style, base)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        segments = bar.render_bar(  # as ScrollBarRender.__rich_console__ asks for it
            size=height,
            virtual_size=bar.virtual_size,
            window_size=bar.window_size,
            position=bar.position,
            thickness=width,
            vertical=True,
            back_color=style.bgcolor or Color.parse("#555555"),
            bar_color=style.color or Color.parse("bright_magenta"),
        ).segments
        # A bar is a few distinct lines (track above, thumb, track below, the thumb's
        # ends): one Strip each, so the line filters run once per distinct line.
        made: dict[Segment, Strip] = {}
        lines = []
        for segment in segments:
            line = made.get(segment)
            if line is None:
                styled = base + segment.style if base else segment.style
                line = made[segment] = Strip([Segment(segment.text, styled)])
            lines.append(line)
        if len(lines) != height:
            return None
        self._drawn = (key, lines)
        return lines
