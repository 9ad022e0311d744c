"""`?`: every key of the screen underneath, and what numatui's words mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

GLOSSARY = """\
**Locality** is the share of a process's memory on the nodes its threads run on.
A process below 50% with more than 16 MiB is marked misplaced (`!`).

**Migration** calls the kernel's `migrate_pages(2)` for the whole process: with
several sources and targets the kernel pairs them itself; the dialog previews
those pairs. Pages shared with other processes move only with root or
CAP_SYS_NICE; pages the kernel cannot move are counted and explained at the end.
"""


def bindings_markdown(screen: Screen[object]) -> str:
    """The shown bindings of `screen` (and the app) as a Markdown list."""
    rows: list[str] = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.show or not binding.description or binding.action in seen:
            continue
        seen.add(binding.action)
        key = binding.key_display or screen.app.get_key_display(binding)
        detail = f" — {binding.tooltip}" if binding.tooltip else ""
        rows.append(f"- `{key}` **{binding.description}**{detail}")
    return "\n".join(rows)


class HelpScreen(ModalScreen[None]):
    """Keys and terms; any of escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", key_display="esc"),
    ]

    def __init__(self, underneath: Screen[object]) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(f"# numatui keys\n\n{bindings_markdown(self.underneath)}\n\n{GLOSSARY}")

    def action_close(self) -> None:
        self.dismiss(None)
