"""The process filter's input: Enter gives up focus at once, and keys typed behind it go on.

Textual hands a key to the widget focused when the key is read, runs the input's Enter
binding only once the key has bubbled up, and the screen moves focus only after it hears
of the submit. So keys typed right behind Enter (fast typing, a paste, a slow machine or
link) were typed into the filter: `/ 283 Enter m` filtered for "283m" instead of opening
the migrate dialog (seen in the demo test under two CPU hogs).
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FilterInput(Input):
    """An Input that submits on Enter at once, unfocused, and hands later keys on."""

    async def _on_key(self, event: events.Key) -> None:
        if self.screen.focused is not self:  # (has_focus follows a Blur message, later)
            # Read while this input had focus, arriving after Enter took it away: the
            # key is meant for whatever has focus now (the table's `m`, `q`, arrows).
            event.stop()
            event.prevent_default()
            self.app.post_message(events.Key(event.key, event.character))
            return
        if event.key == "enter":
            # Now, before the keys already queued behind Enter reach this widget; the
            # screen's Submitted handler then focuses the table.
            event.stop()
            event.prevent_default()
            self.screen.set_focus(None)
            await self.action_submit()
            return
        await super()._on_key(event)
