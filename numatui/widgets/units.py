"""Human-readable numbers for the screens (pure functions, no Textual)."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float) -> str:
    """`1536` -> `1.5 KiB`; three significant digits, binary units."""
    sign = "-" if value < 0 else ""
    size = float(abs(value))
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{sign}{int(size)} B"
            if size < 10:
                return f"{sign}{size:.2f} {unit}"
            if size < 100:
                return f"{sign}{size:.1f} {unit}"
            return f"{sign}{size:.0f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_rate(bytes_per_s: float) -> str:
    return f"{human_bytes(bytes_per_s)}/s"


def human_count_rate(per_s: float) -> str:
    """Page-count rates (numa hits, migrations): `12.3k/s`."""
    if per_s >= 1_000_000:
        return f"{per_s / 1_000_000:.1f}M/s"
    if per_s >= 1_000:
        return f"{per_s / 1_000:.1f}k/s"
    return f"{per_s:.0f}/s"


def node_list(nodes: frozenset[int] | set[int]) -> str:
    """`{0, 1, 4}` -> `0,1,4`; an empty set reads as `-`."""
    return ",".join(str(n) for n in sorted(nodes)) or "-"
