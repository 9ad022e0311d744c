"""Worker answers that land while the app closes do nothing (numatui/screens/lifecycle.py).

The app removes a closing screen's children one by one; a handler that queried one of
them raised NoMatches (the migrate dialog, beside a CPU hog). Every screen's handler of
a worker's message is guarded; this checks the guard itself, on a real app.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from numatui.screens.lifecycle import while_attached
from numatui.screens.migrate_dialog import MigrateDialog
from numatui.screens.migration import MigrationScreen
from numatui.screens.processes import ProcessesScreen


class Answering(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="shown")

    @while_attached
    def answer(self, text: str) -> None:
        self.answers.append(text)
        self.query_one("#shown", Static).update(text)


class AnsweringApp(App[None]):
    def on_mount(self) -> None:
        self.push_screen(Answering())


async def test_an_answer_runs_while_the_app_runs_and_not_once_it_exits() -> None:
    app = AnsweringApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, Answering)
        screen.answer("first")
        await screen.query_one("#shown").remove()
        app.exit()
        screen.answer("late")  # the child is gone: without the guard, NoMatches
    assert screen.answers == ["first"]


def test_the_screens_guard_their_worker_answers() -> None:
    guarded = {
        MigrationScreen: ("_sampled", "_finished", "_crashed"),
        MigrateDialog: ("_plan_previewed", "_plan_refused"),
        ProcessesScreen: ("_rows_prepared",),
    }
    for screen, handlers in guarded.items():
        for name in handlers:
            handler = getattr(screen, name)
            assert handler.__wrapped__.__name__ == name, f"{screen.__name__}.{name}"
