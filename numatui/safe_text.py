"""The one path for untrusted text: names, command lines, paths, users, typed filters, log lines.

Any user on the machine chooses these strings (`prctl(PR_SET_NAME)`, `exec -a`,
the name of a file it maps), and numatui often runs as root. So:

- `visible(s)`: the text for a terminal. C0 and C1 control characters, DEL, line and
  paragraph separators, lone surrogates and the bidirectional controls (U+061C,
  U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) are written as Python-style escapes
  (`\\x1b`, `\\x9b`, `\\t`, `\\n`, `\\u202e`); a backslash becomes `\\\\`, so what is
  shown maps back to exactly one string. Tabs and newlines never break a column.
- `plain(...)` / `plain_lines(...)`: a Rich `Text` for the TUI. Every string part goes
  through `visible` and is plain text: never parsed as markup, so `[/]` cannot
  crash a screen, `[@click=...]` is not an action and `[bold red]` is not a style.
  Styles come only from the (text, style) pairs the code itself writes.
- JSON (`--json`) keeps the exact text; `json.dumps` escapes every control and
  non-ASCII character (`ensure_ascii`), so the output is valid, ASCII-only JSON.

Invalid UTF-8 from /proc: the kernel readers decode with "replace", so a byte that
is not UTF-8 becomes U+FFFD in the model, in the screens, in text and in JSON
alike (JSON has no way to carry raw bytes; U+FFFD keeps every parser happy).

Rich is imported only when a `Text` is built: the CLI uses `visible` and starts fast.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Characters that reorder or re-direct the text around them (Trojan Source)."""

PRINTABLE = (
    "[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u061c\\u200e\\u200f"
    "\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff]*"
)
"""A regular expression for typed text (Textual's `Input(restrict=...)`): no control
character, separator or bidi control can be typed or pasted into an input."""

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    if ch == "\\" or ch in BIDI_CONTROLS:
        return True
    # Cc: C0, DEL, C1.  Zl/Zp: U+2028/U+2029 end lines.  Cs: lone surrogates (cannot be
    # encoded to the terminal at all).
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def _build_table() -> dict[int, str]:
    table = {code: _escape(chr(code)) for code in range(0xA0) if _unsafe(chr(code))}
    for ch in ("\u2028", "\u2029", *BIDI_CONTROLS):
        table[ord(ch)] = _escape(ch)
    return table


_TABLE = _build_table()
"""Everything below U+00A0 and the named controls: one `str.translate` does the work."""


def visible(value: str) -> str:
    """`value` with every control, bidi override and backslash shown as an escape."""
    if value.isascii() and value.isprintable() and "\\" not in value:
        # Most names: for ASCII, `isprintable` is False exactly for C0 and DEL, the only
        # unsafe characters below U+0080 but the backslash (5x faster than translate).
        return value
    escaped = value.translate(_TABLE)
    if escaped.isascii() or not any(0xD800 <= ord(ch) <= 0xDFFF for ch in escaped):
        return escaped
    return "".join(_escape(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in escaped)


def shorten(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, saying how much was left out (still untrusted:
    pass it to `plain` or `visible`). A 100,000-character command line is not drawn whole."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value) - limit:,} more characters)"


def plain(*parts: str | tuple[str, str] | Text) -> Text:
    """Plain text from parts: a str is untrusted, a (str, style) pair is styled, a Text as is.

    `plain("Migrate ", (name, "bold"), f" ({pid})")`: the name is bold and escaped;
    no part is ever read as markup.
    """
    from rich.text import Text

    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0]), style=part[1] or None)
        else:
            out.append(visible(part))
    return out


def plain_lines(rows: Iterable[str | Text]) -> Text:
    """One `Text` of several lines; each str row is untrusted (a newline in it is escaped)."""
    from rich.text import Text

    return Text("\n").join(row if isinstance(row, Text) else plain(row) for row in rows)
