"""The footer: the keys that matter first, so a narrow terminal cuts only lesser ones.

Textual's footer lists a screen's keys then the app's, in binding order; on 80
columns it was cut after `?`, losing the screens (`N`, `g`) and the palette.
Here keys are ordered by `FOOTER_RANK` (the way out and `q`/`?` first, sort
details and refreshes last), the key of the screen already shown is left out,
and a narrow terminal gets the compact style. Every key stays in help (`?`).
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

FOOTER_RANK: dict[str, int] = {
    # The way out of this screen or dialog.
    "back": 0,
    "cancel": 0,
    "close": 0,
    "stop": 0,
    "quit": 1,
    "help": 1,
    # (unlisted: the screen's own keys, rank 2, in their binding order)
    "show_processes": 3,
    "show_nodes": 3,
    "show_groups": 3,
    "command_palette": 3,
    "reverse_sort": 4,
    "cycle_node": 4,
    "toggle_kernel_threads": 4,
    "refresh_now": 4,
    "reload": 4,
}
SCREEN_RANK = 2

MODE_ACTIONS = {"processes": "show_processes", "nodes": "show_nodes", "groups": "show_groups"}
"""The key that opens each mode: pointless on that mode's own screen."""

NARROW_WIDTH = 100
"""Below this many columns the footer is compact."""


def _action_name(action: str) -> str:
    return action.split("(", 1)[0].rsplit(".", 1)[-1]


class KeysFooter(Footer):
    """A footer ordered by importance (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(show_command_palette=False)

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < NARROW_WIDTH

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        current_mode = MODE_ACTIONS.get(self.app.current_mode) if self.screen.is_mounted else None
        shown: dict[str, tuple[int, int, FooterKey]] = {}
        for position, (_, binding, enabled, tooltip) in enumerate(
            self.screen.active_bindings.values()
        ):
            action = _action_name(binding.action)
            if not binding.show or binding.action in shown or action == current_mode:
                continue
            key = FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            )
            # Born with the footer's style: a FooterKey starts compact and its data
            # binding then flips it, each flip restyling it (two stylesheet passes a key,
            # ~40 ms of the first frame).
            key.set_reactive(FooterKey.compact, self.compact)
            key.set_class(self.compact, "-compact", update=False)
            key.data_bind(compact=Footer.compact)
            shown[binding.action] = (FOOTER_RANK.get(action, SCREEN_RANK), position, key)
        self.styles.grid_size_columns = len(shown)
        for _, _, key in sorted(shown.values(), key=lambda item: item[:2]):
            yield key
