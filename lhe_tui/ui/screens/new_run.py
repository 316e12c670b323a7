"""The new-run form: provider, model, mode, the request options (thinking switch, extra body), K, turns,
samples, seed and the history controls.

Enter in any field (or the Start button) starts the run; Escape cancels. Bad values are reported in
the form as the same one-line messages the CLI prints.
"""

from __future__ import annotations

import json
from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from lhe_tui.errors import LheError
from lhe_tui.core.config import MODES, PROVIDERS, RunConfig, parse_extra_body, parse_inject_at

INT_FIELDS = ("k", "turns", "samples", "seed")
# --enable-thinking: "default" sends no chat_template_kwargs (the server's chat template decides)
THINKING = {"default": None, "on": True, "off": False}


class NewRunScreen(ModalScreen[RunConfig | None]):
    DEFAULT_CSS = """
    NewRunScreen { align: center middle; }
    NewRunScreen #form { width: 76; max-width: 100%; height: auto; max-height: 100%; background: $surface;
                         border: round $primary; padding: 0 1; scrollbar-size-vertical: 1; }
    NewRunScreen #too-small { color: $warning; height: auto; display: none; }
    NewRunScreen.-small #too-small { display: block; }
    NewRunScreen #form-title { text-style: bold; color: $primary; height: 1; }
    NewRunScreen Grid { grid-size: 4; grid-columns: 13 1fr 13 1fr; grid-rows: 1; grid-gutter: 0 1; height: auto;
                        margin: 1 0 0 0; }
    NewRunScreen Label { width: 100%; text-align: right; color: $text-muted; }
    NewRunScreen .section { column-span: 4; color: $accent; text-style: bold; }
    NewRunScreen #error { color: $error; height: auto; min-height: 1; margin-top: 1; }
    NewRunScreen #buttons { height: auto; align-horizontal: right; margin-top: 0; }
    NewRunScreen Button { margin-left: 1; min-width: 10; }
    NewRunScreen #hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start")]

    def __init__(self, initial: RunConfig | None = None) -> None:
        super().__init__()
        self.initial = initial or RunConfig()

    def compose(self) -> ComposeResult:
        c = self.initial
        # The form scrolls when the terminal is too small for it (and says so at its top).
        with VerticalScroll(id="form"):
            yield Static("New run", id="form-title")
            yield Static("The terminal is too small for the whole form: it scrolls (Tab moves through the "
                         "fields, or the mouse wheel); Enter starts, Esc cancels.", id="too-small")
            with Grid():
                yield Label("provider")
                yield Select([(p, p) for p in PROVIDERS], value=c.provider, allow_blank=False, id="provider",
                             compact=True)
                yield Label("model")
                yield Input(c.model, placeholder="sim-1, gpt-4.1-mini, …", id="model", compact=True)
                yield Label("base URL")
                yield Input(c.base_url or "", placeholder="OpenAI-compatible server (optional)", id="base_url",
                            compact=True)
                yield Label("mode")
                yield Select([(m, m) for m in MODES], value=c.mode, allow_blank=False, id="mode", compact=True)
                yield Label("thinking")
                yield Select([(name, name) for name in THINKING], id="enable_thinking", compact=True,
                             value=next(n for n, v in THINKING.items() if v is c.enable_thinking), allow_blank=False)
                yield Label("extra body")
                yield Input(json.dumps(c.extra_body) if c.extra_body else "", placeholder='{"top_k": 20}',
                            id="extra_body", compact=True)
                yield Label("K (keys/turn)")
                yield Input(str(c.k), type="integer", id="k", compact=True)
                yield Label("turns")
                yield Input(str(c.turns), type="integer", id="turns", compact=True)
                yield Label("samples")
                yield Input(str(c.samples), type="integer", id="samples", compact=True)
                yield Label("seed")
                yield Input(str(c.seed), type="integer", id="seed", compact=True)
                yield Static("── history the model sees ──", classes="section")
                yield Label("error rate r")
                yield Input(f"{c.induced_error_rate:g}", type="number", id="induced_error_rate", compact=True)
                yield Label("window w")
                yield Input("" if c.window is None else str(c.window), type="integer", placeholder="all turns",
                            id="window", compact=True)
                yield Label("heal")
                yield Checkbox("gold answers", c.heal, id="heal", compact=True)
                yield Label("inject at")
                yield Input(", ".join(f"{i.turn}:{i.offset}" if i.offset is not None else str(i.turn)
                                      for i in c.inject_at),
                            placeholder="TURN[:OFFSET], …", id="inject_at", compact=True)
                yield Label("sim delay s")
                yield Input(f"{c.sim_delay:g}", type="number", id="sim_delay", compact=True)
            yield Static("", id="error")
            yield Static("Enter or ctrl+s starts · Esc cancels · sim needs no key", id="hint")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", variant="primary", id="start")

    FULL_HEIGHT = 20
    """The terminal rows the whole form fits in, its border included (narrower, its fields narrow)."""

    def on_mount(self) -> None:
        self.query_one("#model", Input).focus()
        self._check_size()

    def on_resize(self) -> None:
        self._check_size()

    def _check_size(self) -> None:
        self.set_class(self.app.size.height < self.FULL_HEIGHT, "-small")

    def read_config(self) -> RunConfig:
        """The form as a validated RunConfig; raises LheError naming the bad field."""
        values: dict = {}
        for name in INT_FIELDS:
            text = self.query_one(f"#{name}", Input).value.strip()
            try:
                values[name] = int(text)
            except ValueError:
                raise LheError(f"{name} must be a whole number, got {text!r}") from None
        for name in ("induced_error_rate", "sim_delay"):
            text = self.query_one(f"#{name}", Input).value.strip() or "0"
            try:
                values[name] = float(text)
            except ValueError:
                raise LheError(f"{name.replace('_', ' ')} must be a number, got {text!r}") from None
        window = self.query_one("#window", Input).value.strip()
        try:
            values["window"] = int(window) if window else None
        except ValueError:
            raise LheError(f"window must be a whole number or empty, got {window!r}") from None
        inject_at = self.query_one("#inject_at", Input).value
        try:
            values["inject_at"] = tuple(parse_inject_at(part) for part in inject_at.split(",") if part.strip())
        except ValueError as exc:
            raise LheError(f"inject at: {exc}".replace("--inject-at ", "")) from None
        extra_body = self.query_one("#extra_body", Input).value.strip()
        try:
            values["extra_body"] = parse_extra_body(extra_body) if extra_body else {}
        except LheError as exc:
            raise LheError(str(exc).replace("--extra-body", "extra body")) from None
        values["enable_thinking"] = THINKING[str(self.query_one("#enable_thinking", Select).value)]
        if values["sim_delay"] < 0:
            raise LheError("sim delay must not be negative")
        provider = str(self.query_one("#provider", Select).value)
        config = replace(self.initial, provider=provider, model=self.query_one("#model", Input).value.strip(),
                         base_url=self.query_one("#base_url", Input).value.strip() or None,
                         mode=str(self.query_one("#mode", Select).value), heal=self.query_one("#heal", Checkbox).value,
                         **values)
        config.validate()
        if provider in ("openai", "anthropic"):
            from lhe_tui.providers.factory import check_credentials

            check_credentials(config)
        return config

    def action_start(self) -> None:
        try:
            config = self.read_config()
        except LheError as exc:
            self.query_one("#error", Static).update(f"✗ {exc}")
            return
        self.dismiss(config)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()
