"""The fork dialog (`F` on a turn of a replay or of a finished live run, issue 15): fork the session at that
turn into a new run that goes on live in the same view.

The dialog asks for the fork turn (the cursor's), the edit at that turn (none, set the answer to V, offset
it by D, heal it to the gold sum), which samples (the watched one or all) and the model (the parent's,
prefilled; another one is allowed and said so: it continues from the parent model's history). Confirming
checks the request with `lhe_tui.runs.fork.plan_fork` and writes it with `create_fork` in a thread; anything that
cannot be forked is one line in the dialog (the ForkError's text), and nothing is stored. The dialog returns
the new fork's session id (None when cancelled); the run screen then starts it (`LheApp.start_fork`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from lhe_tui.core.lineage import ForkEdit, short_id
from lhe_tui.common.errors import LheError
from lhe_tui.runs.fork import ForkRequest

EDITS = (("none", "no edit"), ("set", "set answer"), ("offset", "offset"), ("heal", "heal"))
EDIT_KEYS = {"n": "none", "s": "set", "o": "offset", "h": "heal"}     # the dialog's one-key choices
AMOUNT_HINT = {"none": "no edit: the history stays as the model saw it", "set": "the answer the history shows, e.g. 42",
               "offset": "added to the answer shown, e.g. +5 or -3", "heal": "heal: the history shows the gold sum"}


@dataclass(frozen=True)
class ForkDefaults:
    """What the dialog starts from: the session, the cursor's turn, the watched sample, the parent's model."""

    parent_id: str
    turn: int
    sample: int
    n_samples: int
    turns: int
    provider: str
    model: str

    @classmethod
    def of_run(cls, config: dict[str, Any], *, parent_id: str, turn: int, sample: int, n_samples: int,
               turns: int) -> ForkDefaults:
        """The defaults over a stored run's `config`: its provider and model (the sim's, when none is named)."""
        provider = str(config.get("provider") or "sim")
        return cls(parent_id=parent_id, turn=turn, sample=sample, n_samples=n_samples, turns=turns,
                   provider=provider, model=str(config.get("model") or ("sim-1" if provider == "sim" else "")))


def refuse_or_hold(screen: Any, why: str | None) -> bool:
    """Before a fork dialog: toast `why` (the fork cannot be made now) and return True; else hold the
    screen's replay (if any) still at the chosen turn while the dialog is up, and return False."""
    if why is not None:
        screen.notify(why, title="cannot fork", severity="warning", markup=False)
        return True
    if screen.player is not None and screen.player.playing:
        screen.player.toggle()
        screen.flush()
    return False


def _integer(text: str, what: str) -> int:
    text = text.strip().replace("\u2212", "-")   # a typographic minus pasted in
    if not text:
        raise ValueError(f"type {what}")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what}: not a whole number: {text!r}") from None


def parse_fork_request(defaults: ForkDefaults, *, turn: str, edit: str, amount: str, all_samples: bool,
                       provider: str, model: str, turns: str | None = None) -> ForkRequest:
    """The dialog's fields as a ForkRequest; ValueError (one line) for what is not even a request. `turns`:
    how long the fork runs (the parent's length unless changed; longer continues the parent's keys)."""
    fork_turn = _integer(turn, "the fork turn")
    fork_turns = None if turns is None else _integer(turns, "the turns the fork runs to")
    if fork_turns == defaults.turns:
        fork_turns = None
    if edit == "set":
        fork_edit: ForkEdit | None = ForkEdit("set", _integer(amount, "the answer the history should show"))
    elif edit == "offset":
        offset = _integer(amount, "the offset")
        if offset == 0:
            raise ValueError("an offset of 0 changes nothing; give a non-zero offset, or no edit")
        fork_edit = ForkEdit("offset", offset)
    elif edit == "heal":
        fork_edit = ForkEdit("heal")
    else:
        fork_edit = None
    overrides: dict[str, Any] = {}
    provider, model = provider.strip(), model.strip()
    if not provider:
        raise ValueError("type a provider (the parent's is " + defaults.provider + ")")
    if provider != defaults.provider:
        overrides["provider"] = provider
    if model != defaults.model:
        overrides["model"] = model
    return ForkRequest(parent_id=defaults.parent_id, turn=fork_turn,
                       samples=None if all_samples else (defaults.sample,), edit=fork_edit, overrides=overrides,
                       turns=fork_turns)


def make_fork(db_path: str | Path, request: ForkRequest) -> tuple[str, str]:
    """Check and write the fork (in the dialog's worker thread: its own connection); (fork id, description).
    LheError (one line) when it cannot be made; nothing is written then."""
    from lhe_tui.runs.fork import create_forks, plan_fork
    from lhe_tui.store.database import open_database

    db = open_database(db_path, create=False)
    try:
        plan = plan_fork(db, request)
        # (a missing price, key or local model: said here, not after the fork is stored)
        return create_forks(db, [plan])[0], plan.describe()
    finally:
        db.conn.close()


def make_group_fork(db_path: str | Path, group_id: str, request: ForkRequest) -> tuple[str, str]:
    """Fork every arm of the group at the request's turn (in the dialog's worker thread: its own connection);
    (the new group's id, a description). Every arm is checked before any is written; LheError (one line) when
    one cannot be forked, and nothing is stored then (forks written before a later one failed are removed)."""
    from lhe_tui.runs.fork import create_forks, plan_group_fork
    from lhe_tui.store.database import open_database

    db = open_database(db_path, create=False)
    try:
        new_group, plans = plan_group_fork(db, group_id, request)
        create_forks(db, plans)
        first = plans[0]
        text = (f"{len(plans)} arms of {group_id} forked at turn {first.fork_turn} as group {new_group}, turns "
                f"{first.fork_turn + 1}..{first.config.turns} live")
        if first.lineage.edit is not None:
            text += f"; {first.lineage.edit.describe()} at turn {first.fork_turn}"
        return new_group, text
    finally:
        db.conn.close()


class ForkScreen(ModalScreen[str | None]):
    """Returns the new fork's session id, or None when cancelled."""

    DEFAULT_CSS = """
    ForkScreen { align: center middle; }
    ForkScreen #fork-form { width: 76; max-width: 100%; height: auto; max-height: 100%; background: $surface;
                            border: round $accent; padding: 0 1; }
    ForkScreen #fork-title { text-style: bold; color: $accent; }
    ForkScreen #fork-about { color: $text-muted; margin-bottom: 1; }
    ForkScreen .fork-row { height: auto; }
    ForkScreen .fork-row Label { width: 10; color: $text-muted; }
    ForkScreen .fork-row Input { width: 1fr; background: $panel; }
    ForkScreen .fork-row Input:focus { background-tint: $foreground 12%; }
    ForkScreen .fork-row Input:disabled { background: $surface; }
    ForkScreen #fork-turn { width: 10; }
    ForkScreen #fork-provider { width: 14; margin-right: 1; }
    ForkScreen RadioSet { width: 1fr; layout: horizontal; height: auto; }
    ForkScreen RadioButton { width: auto; margin-right: 1; }
    ForkScreen #fork-model-note { color: $warning; height: auto; }
    ForkScreen #fork-error { color: $error; height: auto; min-height: 1; }
    ForkScreen #fork-buttons { height: auto; align-horizontal: right; }
    ForkScreen Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                *(Binding(key, f"choose_edit('{kind}')", show=False) for key, kind in EDIT_KEYS.items()),
                Binding("w", "choose_samples(False)", show=False), Binding("a", "choose_samples(True)", show=False)]

    def __init__(self, defaults: ForkDefaults, db_path: str | Path) -> None:
        super().__init__()
        self.defaults = defaults
        self.db_path = db_path
        self.description = ""      # the created fork's describe(), for the run screen's notice

    def compose(self) -> ComposeResult:
        d = self.defaults
        with Vertical(id="fork-form"):
            yield Static(self.title_text(), id="fork-title")
            yield Static(self.about_text(), id="fork-about")
            with Horizontal(classes="fork-row"):
                yield Label("turn")
                yield Input(str(d.turn), id="fork-turn", compact=True)
                yield Label("runs to")
                # The parent's length; longer goes on with the parent's key sequence (a fork at the last turn
                # needs that).
                yield Input(str(d.turns), id="fork-turns", compact=True)
            with Horizontal(classes="fork-row"):
                yield Label("edit")
                with RadioSet(id="fork-edit", compact=True):
                    for index, (key, label) in enumerate(EDITS):
                        yield RadioButton(label, value=index == 0, id=f"edit-{key}")
            with Horizontal(classes="fork-row"):
                yield Label("")
                yield Input(placeholder=AMOUNT_HINT["none"], id="fork-amount", compact=True, disabled=True)
            with Horizontal(classes="fork-row"):
                yield Label("samples")
                with RadioSet(id="fork-samples", compact=True):
                    yield RadioButton(f"the watched one (s{d.sample})", value=True, id="samples-watched")
                    yield RadioButton(f"all {d.n_samples}", id="samples-all")
            with Horizontal(classes="fork-row"):
                yield Label("model")
                yield Input(d.provider, id="fork-provider", compact=True, placeholder="provider")
                yield Input(d.model, id="fork-model", compact=True, placeholder="model")
            yield Static("", id="fork-model-note")
            yield Static("", id="fork-error")
            with Horizontal(id="fork-buttons"):
                yield Button("Fork and run", variant="warning", id="fork-go")
                yield Button("Cancel", id="fork-cancel")

    def title_text(self) -> str:
        return f"Fork {short_id(self.defaults.parent_id)} at a turn"

    def about_text(self) -> str:
        return (f"A new session starts with this session's history up to the fork turn, as the model saw it "
                f"(edited there if asked), and goes on live to the turn in 'runs to' (the parent's {self.defaults.turns}). Keys: n s o h pick the "
                "edit, w a the samples, enter forks, esc cancels.")

    def make(self, request: ForkRequest) -> tuple[str, str]:
        """Write the fork (in a worker thread): (what the dialog returns, a description)."""
        return make_fork(self.db_path, request)

    def on_mount(self) -> None:
        self.query_one("#fork-model-note", Static).display = False
        self.query_one("#fork-go", Button).focus()

    # ---- fields ------------------------------------------------------------------------------------------
    @property
    def edit(self) -> str:
        pressed = self.query_one("#fork-edit", RadioSet).pressed_button
        return (pressed.id or "edit-none").removeprefix("edit-") if pressed is not None else "none"

    def set_edit(self, kind: str) -> None:
        self.query_one(f"#edit-{kind}", RadioButton).value = True

    def action_choose_edit(self, kind: str) -> None:
        """A one-key choice (n s o h); typed into a text field, the letter stays the field's."""
        self.set_edit(kind)
        if kind in ("none", "heal"):
            self.query_one("#fork-go", Button).focus()    # enter forks at once

    def action_choose_samples(self, every: bool) -> None:
        self.query_one("#samples-all" if every else "#samples-watched", RadioButton).value = True

    @on(RadioSet.Changed, "#fork-edit")
    def _edit_changed(self) -> None:
        amount = self.query_one("#fork-amount", Input)
        amount.placeholder = AMOUNT_HINT[self.edit]
        amount.disabled = self.edit not in ("set", "offset")
        if not amount.disabled:
            amount.focus()
        self._say("")

    @on(Input.Changed, "#fork-provider, #fork-model")
    def _model_changed(self) -> None:
        d = self.defaults
        provider = self.query_one("#fork-provider", Input).value.strip()
        model = self.query_one("#fork-model", Input).value.strip()
        note = self.query_one("#fork-model-note", Static)
        changed = (provider, model) != (d.provider, d.model)
        note.display = changed
        if changed:
            note.update(f"another model: {provider}:{model or '(its default)'} continues from "
                        f"{d.provider}:{d.model}'s history (labelled so in the fork)")

    def _say(self, text: str) -> None:
        self.query_one("#fork-error", Static).update(text)

    def request(self) -> ForkRequest:
        return parse_fork_request(
            self.defaults, turn=self.query_one("#fork-turn", Input).value, edit=self.edit,
            amount=self.query_one("#fork-amount", Input).value, turns=self.query_one("#fork-turns", Input).value,
            all_samples=self.query_one("#samples-all", RadioButton).value,
            provider=self.query_one("#fork-provider", Input).value, model=self.query_one("#fork-model", Input).value)

    # ---- confirm -----------------------------------------------------------------------------------------
    @on(Input.Submitted)
    @on(Button.Pressed, "#fork-go")
    def submit(self) -> None:
        if self.query_one("#fork-go", Button).disabled:
            return    # a fork is being written
        try:
            request = self.request()
        except ValueError as exc:
            self._say(str(exc))
            return
        self.query_one("#fork-go", Button).disabled = True
        self._say("")
        self.run_worker(lambda: self.make(request), name="fork", group="fork", thread=True,
                        exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "fork":
            return
        if event.state == WorkerState.SUCCESS:
            fork_id, self.description = event.worker.result
            self.dismiss(fork_id)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.query_one("#fork-go", Button).disabled = False
            error = event.worker.error
            if isinstance(error, LheError):
                text = str(error)
            elif isinstance(error, sqlite3.Error):
                text = self.app.describe_error(error)  # type: ignore[attr-defined]
            else:
                text = f"{type(error).__name__}: {error}"
            self._say(text.splitlines()[0] if text else "the fork could not be made")

    @on(Button.Pressed, "#fork-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class GroupForkScreen(ForkScreen):
    """`F` in the arms view: every arm of the group forked at the same turn with the same edit and samples, as
    a new group whose arms keep their names. Returns the new group's id, or None when cancelled."""

    def __init__(self, defaults: ForkDefaults, db_path: str | Path, arms: list[str]) -> None:
        super().__init__(defaults, db_path)
        self.arms = arms

    def title_text(self) -> str:
        return f"Fork group {self.defaults.parent_id} at a turn"

    def about_text(self) -> str:
        return (f"Every arm ({', '.join(self.arms)}) is forked at the same turn, with the same edit and samples, "
                f"into a new group that goes on live to the turn in 'runs to' (the parent's {self.defaults.turns}). Keys: n s o h pick the edit, "
                "w a the samples, enter forks, esc cancels.")

    def make(self, request: ForkRequest) -> tuple[str, str]:
        return make_group_fork(self.db_path, self.defaults.parent_id, request)
