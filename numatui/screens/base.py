"""What every numatui screen may know of the app, without importing the app module.

The app (`numatui.app.NumatuiApp`) imports the screens; a screen reaching back
for the app class would close an import cycle. Screens see the app through
`AppContext`, the few things it offers them: the latest `AppState` (replaced
whole on every refresh), the data source for their own blocking reads, the
node history, and the way back to a process in the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from textual.screen import ModalScreen, Screen

from numatui.history import NodeHistory
from numatui.model.memory import ProcessScan
from numatui.model.topology import Topology
from numatui.source import DataSource, Privileges

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class AppState:
    """Everything the screens show, from one refresh: replaced whole, never mutated."""

    topology: Topology
    scan: ProcessScan
    privileges: Privileges
    refresh_count: int


@runtime_checkable
class AppContext(Protocol):
    """The app as its screens see it (`NumatuiApp` is one)."""

    @property
    def state(self) -> AppState | None:
        """The latest refresh; None before the first one."""

    @property
    def first_topology(self) -> Topology | None:
        """The nodes, as soon as the first refresh has read them (before its process scan)."""

    @property
    def source(self) -> DataSource: ...

    @property
    def history(self) -> NodeHistory: ...

    @property
    def last_error(self) -> str | None:
        """Why the last refresh failed; None when it did not."""

    def select_process(self, pid: int) -> None:
        """Back to the processes table with `pid` selected."""


def app_context(app: object) -> AppContext:
    if not isinstance(app, AppContext):
        raise TypeError(f"numatui screens run in numatui's app, not in {type(app).__name__}")
    return app


def no_reason(action: str) -> str | None:
    return None


class NumatuiScreen(Screen[ResultT]):
    """A full screen of numatui: typed access to the app's state (`numatui`).

    A key whose action `check_action` disables or hides does nothing in Textual;
    the app asks `why_not(action)` then and shows the answer as a notification.
    """

    def why_not(self, action: str) -> str | None:
        """Why `action` cannot act now (None: no reason to give)."""
        return no_reason(action)

    @property
    def numatui(self) -> AppContext:
        return app_context(self.app)


class NumatuiModal(ModalScreen[ResultT]):
    """A dialog of numatui: typed access to the app's state (`numatui`)."""

    def why_not(self, action: str) -> str | None:
        """Why `action` cannot act now (None: no reason to give)."""
        return no_reason(action)

    @property
    def numatui(self) -> AppContext:
        return app_context(self.app)
