"""Label values from untrusted text (process names, user names, cgroup paths).

prometheus_client escapes what the exposition format needs (backslash, quote,
newline); this makes every other control or invisible character visible as
an escape (so no raw terminal control code reaches whoever reads the
exposition) and caps the length (a long name cannot blow up a scrape).
"""

from __future__ import annotations

COMM_LIMIT = 64
USER_LIMIT = 64
CGROUP_LIMIT = 256
ELLIPSIS = "…"


def label_value(text: str, limit: int) -> str:
    """`text` with non-printable characters as `\\xNN`/`\\uNNNN`, at most `limit` characters."""
    if text.isprintable() and len(text) <= limit:
        return text
    out: list[str] = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    visible = "".join(out)
    if len(visible) > limit:
        visible = visible[: limit - 1] + ELLIPSIS
    return visible
