"""A screen that shows results read from the store (compare, probe): it loads them in a thread, so a big
session never freezes the UI, then fills itself; a failure is a title line and a notification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from lhe_tui.common.errors import LheError


class StoredResultsScreen(Screen):
    LOAD_GROUP = "results-load"
    TITLE_ID = "results-title"
    FAILURE = "cannot load"          # the notification's title and the title line's prefix

    session_ids: list[str]

    def loader(self) -> Callable[[Path, list[str]], Any]:
        """The function that reads the results (runs in a thread, with its own connection)."""
        raise NotImplementedError

    def loaded(self, result: Any) -> None:
        """Show what `loader` returned (on the UI thread)."""
        raise NotImplementedError

    def load(self) -> None:
        db_path = self.app.db_path  # type: ignore[attr-defined]
        ids, read = list(self.session_ids), self.loader()
        self.run_worker(lambda: read(db_path, ids), name=self.LOAD_GROUP, group=self.LOAD_GROUP, exclusive=True,
                        thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != self.LOAD_GROUP:
            return
        event.stop()
        if event.state == WorkerState.SUCCESS:
            self.loaded(event.worker.result)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = str(error) if isinstance(error, LheError) else f"{type(error).__name__}: {error}"
            self.query_one(f"#{self.TITLE_ID}", Static).update(f"{self.FAILURE}: {message}")
            self.notify(message, title=self.FAILURE, severity="error", markup=False)
