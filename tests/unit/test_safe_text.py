"""The one rendering path for untrusted text (numatui/safe_text.py), and a guard that the
screens and widgets keep to it."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from numatui.safe_text import BIDI_CONTROLS, PRINTABLE, plain, plain_lines, shorten, visible
from tests.hostile import terminal_hazards

ROOT = Path(__file__).resolve().parents[2]


def unescape(shown: str) -> str:
    """The inverse of `visible`: its escapes are Python's own."""
    return shown.encode("latin-1", "backslashreplace").decode("unicode_escape")


@given(st.text())
def test_visible_is_safe_and_maps_back_to_exactly_one_string(value: str) -> None:
    shown = visible(value)
    assert terminal_hazards(shown.encode("utf-8", "surrogatepass")) == []
    assert "\t" not in shown and "\n" not in shown
    assert unescape(shown) == value


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))))
def test_ordinary_text_is_unchanged(value: str) -> None:
    value = "".join(ch for ch in value if ch not in BIDI_CONTROLS and ch != "\\")
    assert visible(value) == value


def test_every_ascii_character_is_kept_or_escaped_as_the_table_says() -> None:
    """ASCII text takes a shortcut past the translation table: it must agree with it."""
    for code in range(0x80):
        ch = chr(code)
        unsafe = code < 0x20 or code == 0x7F or ch == "\\"
        for value in (ch, f"name{ch}", f"{ch}x y"):
            # Python's own escapes: \\t, \\x1b, \\x7f; a backslash doubled.
            expected = value.replace(ch, ch.encode("unicode_escape").decode()) if unsafe else value
            assert visible(value) == expected, (code, value)


def test_each_hazard_is_shown_as_an_escape() -> None:
    assert visible("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert visible("a\tb\nc\rd") == "a\\tb\\nc\\rd"
    assert visible("\x7f\x9b\x85") == "\\x7f\\x9b\\x85"
    assert visible("\u202egnp.exe\u2066\u2069") == "\\u202egnp.exe\\u2066\\u2069"
    assert visible("\u2028\u2029") == "\\u2028\\u2029"
    assert visible("x\udcff") == "x\\udcff"  # surrogateescape'd byte: cannot reach a terminal
    assert visible("C:\\x1b") == "C:\\\\x1b"  # a literal backslash is not an escape
    assert visible("é 日本 [/] [@click=app.quit()]") == "é 日本 [/] [@click=app.quit()]"


def test_plain_is_never_markup_and_styles_only_what_the_code_says() -> None:
    built = plain("Migrate ", ("[bold red]x[/]", "bold"), " [@click=app.screenshot()]")
    assert isinstance(built, Text)
    assert built.plain == "Migrate [bold red]x[/] [@click=app.screenshot()]"
    assert [(s.start, s.end, str(s.style)) for s in built.spans] == [(8, 22, "bold")]
    assert all("@click" not in str(s.style) for s in built.spans)
    assert plain("\x1b[2J").plain == "\\x1b[2J"
    both = plain_lines(["a\nb", plain(("c", "bold"))])
    assert both.plain == "a\\nb\nc"


def test_shorten_counts_what_it_leaves_out() -> None:
    assert shorten("abc", 5) == "abc"
    assert shorten("A" * 100_000, 10) == "AAAAAAAAAA… (99,990 more characters)"


def test_json_keeps_the_exact_text_in_ascii() -> None:
    value = "\x1b[2J\x9b\u202e[/]\ufffd"
    dumped = json.dumps({"name": value})
    assert dumped.isascii() and json.loads(dumped)["name"] == value


def test_typed_text_may_not_hold_controls() -> None:
    import re

    allowed = re.compile(PRINTABLE)
    assert allowed.fullmatch("postgres [/] é 日本 \\x1b")
    for bad in ("\x1b", "\x9b", "\t", "\u202e", "\u2066", "\x7f", "\u2028"):
        assert not allowed.fullmatch(f"a{bad}b"), repr(bad)


# ---------------------------------------------------------------- the guard

SINK_CALLS = {
    "update": 1, "Label": 1, "Static": 1, "Selection": 1, "Option": 1, "add_row": None,
    "add_column": 1, "add_columns": None, "SystemCommand": 2, "Button": 1, "Checkbox": 1,
    "write": 1,
}  # fmt: skip
"""Calls whose first N (None: all) arguments Textual reads as markup or prints as they are.
`notify` is not here: `NumatuiApp.notify` makes every notification plain text itself
(tests/tui/test_hostile.py shows it); the help screen's Markdown is numatui's own keys."""
TITLE_ATTRIBUTES = {"title", "sub_title", "border_title", "border_subtitle"}
SAFE_BUILDERS = {"plain", "plain_lines", "visible", "Text"}
FACES = [ROOT / "numatui" / "app.py", *sorted((ROOT / "numatui" / "screens").glob("*.py"))]
FACES += sorted((ROOT / "numatui" / "widgets").glob("*.py"))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _unsafe_argument(arg: ast.expr) -> bool:
    """Text built in place (f-string, +, %, .join, .format) or a field read straight off
    an object (`p.name`, `region.path`, `row[1]`): a str that may hold someone's markup."""
    if isinstance(arg, ast.Starred):
        return _unsafe_argument(arg.value)
    if isinstance(arg, ast.JoinedStr | ast.BinOp | ast.Attribute | ast.Subscript):
        return True
    if isinstance(arg, ast.ListComp | ast.GeneratorExp):
        return _unsafe_argument(arg.elt)
    if isinstance(arg, ast.IfExp):
        return _unsafe_argument(arg.body) or _unsafe_argument(arg.orelse)
    if isinstance(arg, ast.Call):
        return _name(arg.func) in ("join", "format", "str", "repr")
    return False


def unsafe_text_calls(source: str, filename: str = "<test>") -> list[str]:
    problems: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "markup" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    problems.append(f"{filename}:{node.lineno}: markup= other than False")
        if isinstance(node, ast.Call) and _name(node.func) in SINK_CALLS:
            for arg in node.args[: SINK_CALLS[_name(node.func)]]:
                if _unsafe_argument(arg):
                    problems.append(f"{filename}:{node.lineno}: {_name(node.func)}(...)")
            for keyword in node.keywords:
                if keyword.arg in ("title", "prompt") and _unsafe_argument(keyword.value):
                    problems.append(f"{filename}:{node.lineno}: {keyword.arg}=")
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in TITLE_ATTRIBUTES:
                    value = node.value
                    builder = isinstance(value, ast.Call) and _name(value.func) in SAFE_BUILDERS
                    if not (builder or isinstance(value, ast.Constant)):
                        problems.append(f"{filename}:{node.lineno}: {target.attr} = ...")
    return problems


def test_screens_and_widgets_show_text_only_through_the_safe_path() -> None:
    """Text for a widget is a literal or built by numatui.safe_text (plain, plain_lines,
    visible): never an f-string, a join or a raw field handed to a markup-reading call."""
    problems: list[str] = []
    for path in FACES:
        problems += unsafe_text_calls(path.read_text(), str(path.relative_to(ROOT)))
    assert problems == [], "\n".join(problems)


def test_the_guard_sees_what_it_forbids() -> None:
    bad = textwrap.dedent(
        """
        Label(f"Migrate {p.name}")
        static.update("\\n".join(lines))
        table.add_row(region.path, str(x))
        self.notify(message, markup=True)
        Selection(prompt="a" + name, value=1)
        self.sub_title = f"{p.name} ({p.pid})"
        table.add_row(*[p.name for p in ps])
        """
    )
    assert len(unsafe_text_calls(bad)) == 8, unsafe_text_calls(bad)
    good = textwrap.dedent(
        """
        Label(plain("Migrate ", p.name))
        static.update(plain_lines(lines))
        table.add_row(plain(region.path), *_byte_cells(x))
        self.sub_title = visible(f"{p.name} ({p.pid})")
        Static("a constant", id="x")
        """
    )
    assert unsafe_text_calls(good) == []
