"""The run's status in two lines: who and how (provider/model, mode, K, state), then where and how well."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from lhe_tui.core.events import endpoints_line
from lhe_tui.core.prices import fmt_cost, load_prices
from lhe_tui.common.errors import LheError
from lhe_tui.task.protocol import protocol_of
from lhe_tui.ui.feed import RunModel
from lhe_tui.ui.widgets._style import component_style

if TYPE_CHECKING:
    from lhe_tui.metrics import RunSummary


def human_count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 10_000 else f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


STATE_STYLE = {"running": "ok", "starting": "muted", "paused": "warning", "finished": "primary",
               "interrupted": "warning", "failed": "error", "finished_with_errors": "warning"}


@dataclass
class SourceInfo:
    """What the screen's source adds: LIVE or REPLAY, and a replay's speed and clock."""

    live: bool = True
    replay_state: str = ""       # e.g. "▶ 10x", "‖ 1x"
    elapsed: float | None = None
    paused: bool = False         # a replay stopped short of its end: the state word says paused


class StatusBar(Static):
    COMPONENT_CLASSES = {"status-bar--ok", "status-bar--warning", "status-bar--error", "status-bar--primary",
                         "status-bar--muted", "status-bar--label", "status-bar--sim"}

    DEFAULT_CSS = """
    StatusBar { height: 2; background: $panel; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar > .status-bar--ok { color: $success; text-style: bold; }
    StatusBar > .status-bar--warning { color: $warning; text-style: bold; }
    StatusBar > .status-bar--error { color: $error; text-style: bold; }
    StatusBar > .status-bar--primary { color: $primary; text-style: bold; }
    StatusBar > .status-bar--muted { color: $text-muted; }
    StatusBar > .status-bar--label { text-style: bold; }
    StatusBar > .status-bar--sim { color: $warning; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._last: Text | None = None
        self._styles: dict[str, object] = {}

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._styles.clear())

    def _s(self, name: str):
        """A component's style, resolved once per theme (two style lookups each, ~8 per sync at 10 Hz)."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = component_style(self, f"status-bar--{name}")
        return style

    def sync(self, model: RunModel, summary: RunSummary | None, source: SourceInfo) -> None:
        text = self.compose_text(model, summary, source)
        if self._last is not None and text.plain == self._last.plain and text.spans == self._last.spans:
            return
        self._last = text
        self.update(text, layout=False)   # fixed height and width: a new text never needs a screen layout

    def _metrics(self, t: Text, summary: RunSummary) -> None:
        """The two fits of p (3 decimals: the line fits 100 columns), then H0.5 (theory in brackets, from p
        before the first error): `turn acc 0.980 · p<1st err 0.995 · H0.5 44 (th 138)`; for K > 1 per turn
        then per step (key, derived): `p<1st err 0.995/t 0.998/st`, `H0.5 12t=36st (th 34t=103st)`."""
        steps = summary.in_steps
        t.append(" · turn acc ")
        mean = summary.mean_turn_accuracy
        t.append("-" if mean is None else f"{mean:.3f}", self._s("label"))
        t.append(" · p<1st err ")
        p = summary.p_before_first_error
        if p is None:
            t.append("-", self._s("label"))
        else:
            t.append(f"{p:.3f}" + ("/t" if steps else ""), self._s("label"))
            if steps and summary.p_step_before_first_error is not None:
                t.append(f" {summary.p_step_before_first_error:.3f}/st", self._s("label"))
        t.append(" · H0.5 ")
        if summary.horizon_measured is not None:
            measured = str(summary.horizon_measured)
            if steps:
                measured += f"t={summary.horizon_measured_steps}st"
            t.append(measured, self._s("error"))
        else:
            t.append(f">{summary.n_turns}{'t' if steps else ''}" if summary.n_turns else "-", self._s("label"))
        theory = summary.horizon_theory
        if theory is not None and not math.isinf(theory):
            text = f"{theory:.0f}"
            if steps and summary.horizon_theory_steps is not None:
                text += f"t={summary.horizon_theory_steps:.0f}st"
            t.append(f" (th {text})", self._s("muted"))

    def _cost(self, model: RunModel) -> float | None:
        """The run's cost so far from the price files (None: no price for the model, or a bad price file,
        which the command line has already reported)."""
        name = model.config.get("model") or ""
        if getattr(self, "_price_model", None) != name:
            try:
                price = load_prices().for_model(name) if name else None
            except LheError:
                price = None
            self._price_model, self._price = name, price
        if self._price is None:
            return None
        return self._price.cost(model.tokens_in, model.tokens_out, model.tokens_cached, model.tokens_cache_write)

    def compose_text(self, model: RunModel, summary: RunSummary | None, source: SourceInfo) -> Text:
        c = model.config
        t = Text(no_wrap=True, overflow="ellipsis")
        label = model.provider_label or f"{c.get('provider', '?')}:{c.get('model') or '?'}"
        if model.simulated and "simulated" not in label:
            label += " (simulated)"
        if model.simulated:
            name, _, rest = label.partition(" (simulated)")
            t.append(name, self._s("label"))
            t.append(" (simulated)", self._s("sim"))
            t.append(rest)
        else:
            t.append(label, self._s("label"))
        probe = " · probe" if model.kind == "probe" else ""
        rule = c.get("step_rule") if c else None
        rule_text = f" · step rule {rule}" if rule and rule != "own" else ""   # the default goes unsaid
        t.append(f" · {c.get('mode', '?')} · {protocol_of(c) if c else '?'}{rule_text} · "
                 f"K={c.get('k', '?')}{probe} · ")
        t.append("LIVE " if source.live else "REPLAY ", self._s("label"))
        status = "paused" if source.paused else model.status
        t.append(status.replace("_", " "), self._s(STATE_STYLE.get(status, "muted")))
        if source.replay_state:
            t.append(f" {source.replay_state}", self._s("primary"))
        if model.lineage_label:   # before the id: at 80 columns the id is what the ellipsis takes
            t.append(f" · {model.lineage_label}", self._s("primary"))
        if model.session_id:
            t.append(f" · {model.session_id}", self._s("muted"))
        t.append("\n")
        watched = model.sample(model.watched)
        turn = (watched.current_turn or watched.last_turn) if watched else 0
        t.append(f"s{model.watched} turn {turn}/{model.n_turns or '?'}")
        t.append(f" · {clock(source.elapsed)}")
        t.append(f" · done {model.samples_done}/{len(model.samples)}")
        ended = [f"{n} {'ended early (--until)' if status == 'early' else status}"
                 for status in ("early", "stopped", "failed") if (n := model.samples_ended(status))]
        if ended:
            t.append(f" ({', '.join(ended)})", self._s("warning"))
        if model.endpoints and model.running:   # several servers: each one's load, or its state
            down = any(e.state != "up" for e in model.endpoints)
            t.append(f" · {endpoints_line(model.endpoints)}", self._s("warning" if down else "label"))
        # the model's own count, never a stale summary's: no answered turn (or a run that failed before one)
        if not model.running and (model.answered is False or (model.answered is None and model.status == "failed")):
            t.append(" · no data (no turn was answered)", self._s("warning"))
        elif summary is not None and not summary.no_data:
            self._metrics(t, summary)
        if model.tokens_reported:
            t.append(f" · tok {human_count(model.tokens_in)}/{human_count(model.tokens_out)}")
            cost = self._cost(model)
            if cost is not None:
                t.append(f" · {fmt_cost(cost)}")
        else:
            t.append(" · tok not reported", self._s("muted"))
        if model.retries:
            t.append(f" · {model.retries} retr{'y' if model.retries == 1 else 'ies'}", self._s("warning"))
        if model.empty_retries:
            t.append(f" · {model.empty_retries} empty re-asked", self._s("warning"))
        if model.held():
            t.append(f" · {model.held()}", self._s("warning"))
        if model.last_retry and model.running:
            t.append(f" · {model.last_retry}", self._s("warning"))
        elif model.message and (not model.running or model.status == "starting"):
            t.append(f" · {model.message}", self._s("muted" if model.status in ("starting", "not started")
                                                   else "error"))
        return t
