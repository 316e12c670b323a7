"""The inject dialog (`I` in a live run): corrupt the latest answer in the history the model sees next,
by a typed offset or to a typed value, for the watched sample or for every sample at once.

`i` alone injects a random non-zero offset in ±10 into the watched sample without asking; this dialog
is for a chosen offset or value. The model's real answer stays in the store; the injection is an event.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

from lhe_tui.core.bounds import ANSWER_BOUND


@dataclass(frozen=True)
class InjectRequest:
    """What to inject: `offset` (None: a random non-zero one in ±10) or an exact `value`."""

    offset: int | None = None
    value: int | None = None
    all_samples: bool = False

    def describe(self) -> str:
        what = (f"the value {self.value}" if self.value is not None
                else "a random offset" if self.offset is None else f"an offset of {self.offset:+d}")
        return f"{what} into {'every sample' if self.all_samples else 'the watched sample'}"


def parse_injection(text: str, *, to_value: bool, all_samples: bool = False) -> InjectRequest:
    """The dialog's field as a request; ValueError with a one-line reason when it cannot be one."""
    text = text.strip().replace("\u2212", "-")   # a typographic minus pasted in
    if not text:
        if to_value:
            raise ValueError("type the value the history should show")
        return InjectRequest(all_samples=all_samples)
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if abs(number) > ANSWER_BOUND:   # the history answer is stored as a 64-bit integer, with sums on top
        raise ValueError(f"must be within ±{ANSWER_BOUND:,}")
    if to_value:
        return InjectRequest(value=number, all_samples=all_samples)
    if number == 0:
        raise ValueError("an offset of 0 changes nothing; leave it empty for a random one")
    return InjectRequest(offset=number, all_samples=all_samples)


class InjectScreen(ModalScreen[InjectRequest | None]):
    """Returns an InjectRequest, or None when cancelled."""

    DEFAULT_CSS = """
    InjectScreen { align: center middle; }
    InjectScreen #inject-form { width: 64; max-width: 100%; height: auto; background: $surface;
                                border: round $accent; padding: 0 1; }
    InjectScreen #inject-title { text-style: bold; color: $accent; }
    InjectScreen #inject-about { color: $text-muted; margin-bottom: 1; }
    InjectScreen RadioSet { width: 100%; border: none; padding: 0; layout: horizontal; height: auto; }
    InjectScreen RadioButton { margin-right: 2; }
    InjectScreen #inject-amount { margin: 1 0 0 0; }
    InjectScreen #inject-error { color: $error; height: auto; min-height: 1; }
    InjectScreen #inject-buttons { height: auto; align-horizontal: right; }
    InjectScreen Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, about: str, *, all_samples: bool = False) -> None:
        super().__init__()
        self.about = about
        self.all_samples = all_samples

    def compose(self) -> ComposeResult:
        with Vertical(id="inject-form"):
            yield Static("Inject an error into the history", id="inject-title")
            yield Static(self.about, id="inject-about")
            with RadioSet(id="inject-how"):
                yield RadioButton("by an offset", value=True, id="by-offset")
                yield RadioButton("to a value", id="to-value")
            yield Input(placeholder="offset, e.g. +5 or -3 (empty: random in ±10)", id="inject-amount",
                        compact=True)
            yield Checkbox("every sample at once", self.all_samples, id="inject-all", compact=True)
            yield Static("", id="inject-error")
            with Horizontal(id="inject-buttons"):
                yield Button("Inject", variant="warning", id="inject-go")
                yield Button("Cancel", id="inject-cancel")

    def on_mount(self) -> None:
        self.query_one("#inject-amount", Input).focus()

    @property
    def to_value(self) -> bool:
        return self.query_one("#to-value", RadioButton).value

    @on(RadioSet.Changed)
    def _how_changed(self) -> None:
        self.query_one("#inject-amount", Input).placeholder = (
            "the value the history should show, e.g. 42" if self.to_value
            else "offset, e.g. +5 or -3 (empty: random in ±10)")
        self.query_one("#inject-error", Static).update("")

    @on(Input.Submitted)
    @on(Button.Pressed, "#inject-go")
    def submit(self) -> None:
        try:
            request = parse_injection(self.query_one("#inject-amount", Input).value, to_value=self.to_value,
                                      all_samples=self.query_one("#inject-all", Checkbox).value)
        except ValueError as exc:
            self.query_one("#inject-error", Static).update(str(exc))
            return
        self.dismiss(request)

    @on(Button.Pressed, "#inject-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
