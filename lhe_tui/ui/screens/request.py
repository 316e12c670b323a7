"""`r` on a turn: what the model was sent at that turn, rebuilt from the store (lhe_tui.runs.turn_request), the
same text `lhe-tui show ID --turn T --sample S --request` prints. Injected, induced and healed values and the
protocol's placeholders are marked; the system prompt is collapsed (`a` shows it whole)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lhe_tui.common.errors import LheError


def request_text(db_path: Path | str, session_id: str, sample: int, turn: int, *, whole_system: bool) -> str:
    """The request's text, read through a connection of its own (it runs in a thread while a run goes on)."""
    from lhe_tui.store.database import open_database
    from lhe_tui.runs.turn_request import rebuild_request

    db = open_database(db_path, create=False, write=False, check=False)
    try:
        request = rebuild_request(db, session_id, sample, turn)
    finally:
        db.conn.close()
    return "\n".join(request.lines(system_lines=10_000 if whole_system else 3))


class RequestScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RequestScreen { align: center middle; }
    RequestScreen #request-box { width: 92%; height: 86%; background: $surface; border: round $accent;
                                 padding: 0 1; }
    RequestScreen #request-hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q,r", "dismiss", "Close"), Binding("a", "whole_system", "Whole system prompt")]

    def __init__(self, db_path: Path | str, session_id: str, sample: int, turn: int) -> None:
        super().__init__()
        self.db_path, self.session_id, self.sample, self.turn = db_path, session_id, sample, turn
        self.whole_system = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="request-box"):
            yield Static(f"what the model was sent: s{self.sample} turn {self.turn}   "
                         "(a: whole system prompt · escape: close)", id="request-hint")
            yield Static("rebuilding the request from the store…", id="request-body")

    def on_mount(self) -> None:
        self.box = self.query_one("#request-box")
        self._load()

    def _load(self) -> None:
        self.run_worker(self._read, thread=True, exclusive=True, group="request", exit_on_error=False)

    def _read(self) -> None:
        try:
            text = Text(request_text(self.db_path, self.session_id, self.sample, self.turn,
                                     whole_system=self.whole_system))
            for mark in ("[injected", "[induced", "[healed", "[placeholder"):
                text.highlight_words([mark], style=self.app.theme_variables.get("warning", "yellow"))
        except (LheError, sqlite3.Error) as exc:
            text = Text(f"cannot rebuild this request: {exc}", style=self.app.theme_variables.get("error", "red"))
        self.app.call_from_thread(self.query_one("#request-body", Static).update, text)

    def action_whole_system(self) -> None:
        self.whole_system = not self.whole_system
        self._load()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
