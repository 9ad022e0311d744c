"""`?`: every key of the screen underneath, and what numatui's words mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

from numatui.widgets.footer import KeysFooter

CLOSING = "Press **escape** or **?** to close this help; **q** quits numatui, as everywhere."

GLOSSARY = """\
## Columns and marks

- **PID**, **NAME**, **USER**: the process; **RSS** its resident memory.
- **LOCAL** (locality): the share of a process's memory on the nodes its threads run on.
  `!` before it (and the name in the warning colour) marks a misplaced process:
  below 50% with more than 16 MiB. `-`: nothing on NUMA nodes to judge.
- **N0**, **N1**, …: the bytes the process has on node 0, node 1, …
- `·`: nothing there (zero bytes; or no change, in a migration's before/after).
- `?`: unknown, not zero: this process's memory is not readable (run as root to see it).
- Nodes screen: **KIND** CPU+memory, memory-only (e.g. CXL or HBM, no CPUs),
  CPU-only or offline; **USED%** of its memory; **HIT/s** and **MISS/s** the kernel's
  numa_hit and numa_miss counters per second (pages allocated on this node as intended,
  or here although meant for another); **HUGE free/total** huge pages per size;
  **TIER** the kernel's memory tier (smaller is faster; `-` when the kernel has none).

## Migration

Migration calls the kernel's `migrate_pages(2)` for the whole process: with
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
    """Keys and terms; escape or ? closes it, q quits numatui (as the keys listed say)."""

    BINDINGS = [
        Binding("escape,question_mark", "close", "Close help", key_display="esc"),
        # The app's bindings do not reach a modal screen: q is bound here again.
        Binding("q", "app.quit", "Quit", tooltip="Leave numatui (nothing is left running)"),
    ]

    def __init__(self, underneath: Screen[object]) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            keys = bindings_markdown(self.underneath)
            yield Markdown(f"# numatui keys\n\n{CLOSING}\n\n{keys}\n\n{GLOSSARY}")
        yield KeysFooter()  # its own keys, not those of the screen underneath

    def action_close(self) -> None:
        self.dismiss(None)
