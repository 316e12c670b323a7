"""The new-run form: provider, model, mode, the request options (thinking switch, extra body), K, turns,
samples, seed, the client-side rate limits and the history controls.

Enter in any field (or the Start button) starts the run; Escape cancels. Bad values are reported in
the form as the same one-line messages the CLI prints. Under the fields, the run's forecast (what
`lhe-tui run --estimate` prints: tokens, cost with and without caching, the least duration under the rate
limits) follows the fields as they change: recomputed a moment after the last change, in a thread.
"""

from __future__ import annotations

import json
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import get_current_worker

from lhe_tui.common.errors import LheError
from lhe_tui.core.config import MODES, PROVIDERS, RunConfig, base_url_fields, parse_extra_body, parse_inject_at
from lhe_tui.core.prices import PriceTable, load_prices

INT_FIELDS = ("k", "turns", "samples", "seed")
LIMIT_FIELDS = ("rpm", "tpm")        # empty: no client-side limit
ESTIMATE_DELAY = 0.2
"""Seconds after the last change before the forecast is recomputed (typing 1000 computes it once)."""
LIVE_ESTIMATE_MAX = 2_000_000
"""Requests (samples x turns) above which the form does not forecast live (it would take seconds)."""
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
    NewRunScreen #estimate { color: $text-muted; height: 3; margin-top: 0; text-wrap: nowrap;
                             text-overflow: ellipsis; }
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
                yield Input(",".join(c.endpoints) or c.base_url or "", id="base_url", compact=True,
                            placeholder="OpenAI-compatible server (optional)")
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
                yield Label("requests/min")
                yield Input("" if c.rpm is None else str(c.rpm), type="integer", placeholder="no limit", id="rpm",
                            compact=True)
                yield Label("in tokens/min")
                yield Input("" if c.tpm is None else str(c.tpm), type="integer", placeholder="no limit", id="tpm",
                            compact=True)
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
            yield Static("estimate: …", id="estimate")
            yield Static("", id="error")
            yield Static("Enter or ctrl+s starts · Esc cancels · sim needs no key", id="hint")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", variant="primary", id="start")

    FULL_HEIGHT = 24
    """The terminal rows the whole form fits in, its border included (narrower, its fields narrow)."""

    def on_mount(self) -> None:
        self.query_one("#model", Input).focus()
        self._check_size()
        self._estimate_timer: Timer | None = None
        self.estimates = 0                 # forecasts computed (tests: one per pause in typing, not per key)
        try:
            self.prices: PriceTable | str = load_prices()   # once: the forecast reuses it
        except LheError as exc:            # a bad price file: the forecast says so, the form still starts runs
            self.prices = str(exc)
        self.update_estimate()

    def on_resize(self) -> None:
        self._check_size()

    def _check_size(self) -> None:
        self.set_class(self.app.size.height < self.FULL_HEIGHT, "-small")

    def read_config(self) -> RunConfig:
        """The form as a validated RunConfig, the provider's key checked; raises LheError naming the bad field."""
        config = self.form_config()
        if config.provider in ("openai", "anthropic"):
            from lhe_tui.providers.factory import check_credentials

            check_credentials(config)
        return config

    def form_config(self) -> RunConfig:
        """The form as a validated RunConfig (no key needed: what the forecast reads)."""
        values: dict = {}
        for name in INT_FIELDS:
            text = self.query_one(f"#{name}", Input).value.strip()
            try:
                values[name] = int(text)
            except ValueError:
                raise LheError(f"{name} must be a whole number, got {text!r}") from None
        for name in LIMIT_FIELDS:
            text = self.query_one(f"#{name}", Input).value.strip()
            try:
                values[name] = int(text) if text else None
            except ValueError:
                raise LheError(f"{name} must be a whole number or empty, got {text!r}") from None
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
                         **base_url_fields([self.query_one("#base_url", Input).value]),
                         mode=str(self.query_one("#mode", Select).value), heal=self.query_one("#heal", Checkbox).value,
                         **values)
        return config.validate()

    # ---- the live forecast ---------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        self.update_estimate()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.update_estimate()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.update_estimate()

    def update_estimate(self) -> None:
        """Recompute the forecast once the fields have been still for ESTIMATE_DELAY."""
        if not hasattr(self, "prices"):     # a change event before on_mount
            return
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self._estimate_timer = self.set_timer(ESTIMATE_DELAY, self._start_estimate)

    def _start_estimate(self) -> None:
        self._estimate_timer = None
        try:
            config = self.form_config()
        except LheError as exc:
            self._show_estimate(f"estimate: none while the form has an error ({exc})")
            return
        requests = config.samples * config.turns
        if requests > LIVE_ESTIMATE_MAX:
            self._show_estimate(f"estimate: {requests:,} requests is too many to forecast as you type: "
                                "`lhe-tui run --estimate` with these settings computes it")
            return
        self._forecast(config, None if isinstance(self.prices, str) else self.prices)

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def _forecast(self, config: RunConfig, prices: PriceTable | None) -> None:
        from lhe_tui.analysis.estimate import forecast

        try:
            lines = forecast(config, prices=prices).form_lines(config)
        except LheError as exc:
            lines = [f"estimate: {exc}"]
        if isinstance(self.prices, str):
            lines[1] = f"cost: none, the price file is bad ({self.prices})"
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_estimate, "\n".join(lines), True)

    def _show_estimate(self, text: str, computed: bool = False) -> None:
        if not self.is_attached:           # dismissed while the forecast was computed
            return
        self.estimates += computed
        self.query_one("#estimate", Static).update(Text(text))   # text, not markup: errors may hold [ ]

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
