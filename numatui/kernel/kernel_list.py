"""The kernel's range lists (`0-3,8`), as /sys and /proc print node and CPU sets.

Its own module, free of `typing`, so a scan's helper process parses
`Mems_allowed_list` without loading `nodemask`'s masks and grammar.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Iterable


def parse_kernel_list(text: str) -> frozenset[int]:
    """Parse the kernel's range-list format (`0-3,8`, empty for none) from /sys or /proc.

    Raises ValueError on anything the kernel would not print.
    """
    out: set[int] = set()
    text = text.strip()
    if not text:
        return frozenset()
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"not a kernel range list: {text!r}")
        a = int(lo)
        b = int(hi) if sep else a
        if b < a:
            raise ValueError(f"reversed range {part!r} in {text!r}")
        out.update(range(a, b + 1))
    return frozenset(out)


def format_kernel_list(nodes: Iterable[int]) -> str:
    """Format node ids the way the kernel prints them (`0-3,5`; "" for none).

    Like the kernel's `%*pbl`, any run of two or more consecutive ids becomes a range.
    """
    ordered = sorted(set(nodes))
    if ordered and ordered[0] < 0:
        raise ValueError(f"negative node id {ordered[0]}")
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        start = index
        while index + 1 < len(ordered) and ordered[index + 1] == ordered[index] + 1:
            index += 1
        lo, hi = ordered[start], ordered[index]
        parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
        index += 1
    return ",".join(parts)
