"""Human-readable numbers, shared by the CLI and the screens."""

from __future__ import annotations

from collections.abc import Iterable

from numatui.kernel.nodemask import format_kernel_list

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SCALED_UNITS = _UNITS[:-1]  # the last unit takes any magnitude


def _scaled(n: float) -> tuple[str, float, str]:
    """Sign, magnitude and binary unit such that the magnitude is below 1024."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    for unit in _SCALED_UNITS:
        if value < 1024:
            return sign, value, unit
        value /= 1024
    return sign, value, _UNITS[-1]


def format_bytes(n: float, *, precision: int = 1) -> str:
    """`1536` -> `1.5 KiB`; whole bytes below 1 KiB; negative keeps its sign."""
    sign, value, unit = _scaled(n)
    if unit == "B":
        return f"{sign}{int(value)} B"
    return f"{sign}{value:.{precision}f} {unit}"


def format_rate(bytes_per_s: float) -> str:
    return f"{format_bytes(bytes_per_s)}/s"


def format_share(fraction: float | None) -> str:
    """A locality share as a percentage; a dash when unknown."""
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def human_bytes(value: float) -> str:
    """`1536` -> `1.50 KiB`: three significant digits, for table columns."""
    sign, size, unit = _scaled(value)
    if unit == "B":
        return f"{sign}{int(size)} B"
    # Three literal formats: a nested precision (`{size:.{digits}f}`) costs twice as much,
    # and a table of 2,000 processes formats 4,000 sizes at each full refresh.
    if size < 10:
        return f"{sign}{size:.2f} {unit}"
    if size < 100:
        return f"{sign}{size:.1f} {unit}"
    return f"{sign}{size:.0f} {unit}"


def human_rate(bytes_per_s: float) -> str:
    return f"{human_bytes(bytes_per_s)}/s"


def human_count_rate(per_s: float) -> str:
    """Page-count rates (numa hits, migrations): `12.3k/s`."""
    if per_s >= 1_000_000:
        return f"{per_s / 1_000_000:.1f}M/s"
    if per_s >= 1_000:
        return f"{per_s / 1_000:.1f}k/s"
    return f"{per_s:.0f}/s"


def node_list(nodes: Iterable[int]) -> str:
    """`{0, 1, 2, 4}` -> `0-2,4`, as the kernel writes node and CPU lists; none reads `-`."""
    return format_kernel_list(nodes) or "-"
