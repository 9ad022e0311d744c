"""What a refresh costs the UI thread: nothing proportional to the scan that it does not need."""

from __future__ import annotations

import pytest

from numatui.model.memory import ProcessMemory, ProcessScan

from .conftest import settled_app, workers_done
from .fakes import FakeSource


async def test_a_refresh_never_writes_out_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker started with the scan as its argument must not have it repr()'d (Textual
    does that for a worker without a description): every process, every refresh."""
    written: list[str] = []
    for cls in (ProcessMemory, ProcessScan):

        def counted(self: object, _name: str = cls.__name__) -> str:
            written.append(_name)
            return _name

        monkeypatch.setattr(cls, "__repr__", counted)
    source = FakeSource()
    async with settled_app(source) as (app, pilot):
        for screen in ("groups", "nodes", "processes"):
            await app.switch_mode(screen)
            await pilot.pause()
        app.action_refresh_now()
        for _ in range(3):
            await workers_done(app)
            await pilot.pause()
        assert app.state is not None and app.state.refresh_count >= 3
    assert written == []
