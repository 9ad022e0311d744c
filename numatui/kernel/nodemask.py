"""Node sets: the kernel's range lists and bitmasks, and numactl's node-string grammar."""

from __future__ import annotations


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
