"""The arms view's status: a line for the group (live or replay, the watched sample, which arms the keys act
on), then one line per arm in its chart colour: state, progress, the watched sample's first error, task
accuracy, p, H0.5, clock, model and session. Cut at the width with an ellipsis, the most telling first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.widgets import Static

from lhe_tui.core.lineage import short_id
from lhe_tui.ui.feed import RunModel
from lhe_tui.ui.widgets._style import component_style
from lhe_tui.ui.widgets.status_bar import STATE_STYLE, clock

if TYPE_CHECKING:
    from lhe_tui.metrics import RunSummary


@dataclass(frozen=True)
class ArmLine:
    name: str
    colour: str
    model: RunModel
    summary: RunSummary | None
    targeted: bool
    elapsed: float | None
    failure: str = ""        # the run's worker failed: its error


class ArmsStatus(Static):
    COMPONENT_CLASSES = {"arms-status--ok", "arms-status--warning", "arms-status--error", "arms-status--primary",
                         "arms-status--muted", "arms-status--label", "arms-status--sim"}

    DEFAULT_CSS = """
    ArmsStatus { height: auto; background: $panel; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ArmsStatus > .arms-status--ok { color: $success; text-style: bold; }
    ArmsStatus > .arms-status--warning { color: $warning; text-style: bold; }
    ArmsStatus > .arms-status--error { color: $error; text-style: bold; }
    ArmsStatus > .arms-status--primary { color: $primary; text-style: bold; }
    ArmsStatus > .arms-status--muted { color: $text-muted; }
    ArmsStatus > .arms-status--label { text-style: bold; }
    ArmsStatus > .arms-status--sim { color: $warning; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._last: tuple | None = None
        self._styles: dict[str, Style] = {}     # resolved once per theme (a dozen lookups a line, 10 Hz)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._styles.clear())

    def _s(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = component_style(self, f"arms-status--{name}")
        return style

    def _colour(self, name: str) -> Style:
        key = f"colour:{name}"
        style = self._styles.get(key)
        if style is None:
            try:
                style = Style(color=Color.parse(self.app.theme_variables[name]).rich_color, bold=True)
            except (KeyError, ColorParseError):
                style = Style(bold=True)
            self._styles[key] = style
        return style

    def sync(self, head: Text, arms: list[ArmLine]) -> None:
        text = self.compose_text(head, arms)
        key = (text.plain, tuple(text.spans), self.app.theme)
        if key == self._last:
            return
        self._last = key
        self.update(text)

    def compose_text(self, head: Text, arms: list[ArmLine]) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append_text(head)
        for arm in arms:
            t.append("\n")
            t.append_text(self.arm_line(arm))
        return t

    def arm_line(self, arm: ArmLine) -> Text:
        model = arm.model
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("▶ " if arm.targeted else "  ", self._colour(arm.colour))
        t.append(arm.name, self._colour(arm.colour) + Style(underline=arm.targeted))
        status = "failed" if arm.failure else model.status
        t.append(f" {status.replace('_', ' ')}", self._s(STATE_STYLE.get(status, "muted")))
        fork_turn = model.fork_turn
        if fork_turn is not None:
            t.append(f" · fork @{fork_turn}", self._s("primary"))
        watched = model.sample(model.watched)
        turn = (watched.current_turn or watched.last_turn) if watched else 0
        if model.samples:
            t.append(f" · t{turn}/{model.n_turns or '?'} · done {model.samples_done}/{len(model.samples)}")
        if watched is not None:
            if watched.first_error is not None:
                t.append(f" · s{model.watched} 1st err ", self._s("muted"))
                t.append(f"t{watched.first_error}", self._s("error"))
            elif watched.records:
                t.append(f" · s{model.watched} no err", self._s("muted"))
        summary = arm.summary
        if summary is not None:
            if summary.final_task_accuracy is not None:
                t.append(" · task ")
                t.append(f"{summary.final_task_accuracy:.2f}", self._s("label"))
            if summary.mean_turn_accuracy is not None:
                t.append(f" · turn acc {summary.mean_turn_accuracy:.4f}")
            t.append(" · H0.5 ")
            if summary.horizon_measured is not None:
                t.append(str(summary.horizon_measured), self._s("error"))
            else:
                t.append(f">{summary.n_turns}" if summary.n_turns else "-", self._s("label"))
        injections = sum(len(s.injections) for s in model.samples)
        if injections:
            t.append(f" · ⚡{injections}", self._s("warning"))
        if arm.elapsed is not None:
            t.append(f" · {clock(arm.elapsed)}")
        c = model.config
        label = model.provider_label or (f"{c.get('provider', '?')}:{c.get('model') or '?'}" if c else "")
        if label:
            name, simulated, _ = label.partition(" (simulated)")
            t.append(f" · {name}", self._s("muted"))
            if simulated or model.simulated:
                t.append(" (sim)", self._s("sim"))
        if c:
            t.append(f" {c.get('mode', '?')}", self._s("muted"))
        if model.session_id:
            t.append(f" · {short_id(model.session_id)}", self._s("muted"))
        message = arm.failure or (model.message if not model.running or model.status == "starting" else "")
        if message:
            t.append(f" · {message}", self._s("error" if arm.failure or model.status == "failed" else "muted"))
        return t
