"""Human-readable numbers, shared by the CLI and the screens."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(n: float, *, precision: int = 1) -> str:
    """`1536` -> `1.5 KiB`; whole bytes below 1 KiB; negative keeps its sign."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{sign}{int(value)} B"
            return f"{sign}{value:.{precision}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_rate(bytes_per_s: float) -> str:
    return f"{format_bytes(bytes_per_s)}/s"


def format_share(fraction: float | None) -> str:
    """A locality share as a percentage; a dash when unknown."""
    return "-" if fraction is None else f"{fraction * 100:.0f}%"
