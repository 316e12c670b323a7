"""The watched sample's reply as it streams in: reasoning dimmed, the answer apart and highlighted."""

from __future__ import annotations

import re

from rich.text import Text
from textual.widgets import Static

from lhe_tui.ui.feed import StreamState
from lhe_tui.ui.turn_records import UNREAD
from lhe_tui.ui.widgets._style import component_style

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
MAX_REASONING = 2000


def describe_result(stream: StreamState) -> tuple[str, str]:
    """(words, component name) for the finished turn's verdict."""
    r = stream.record
    if r is None:
        return "streaming…", "reply-view--muted"
    if r.provider_failed:
        return f"no reply, the provider failed: {r.provider_error}", "reply-view--error"
    if r.answer_status == UNREAD:
        return "this turn could not be read back from the store", "reply-view--warning"
    if r.answer_status != "ok":
        return f"{r.answer_status} miss (no usable <answer>)", "reply-view--warning"
    if r.correct:
        return f"correct: {r.model_answer}", "reply-view--ok"
    return f"wrong: {r.model_answer}, gold {r.gold_sum} ({r.model_answer - r.gold_sum:+d})", "reply-view--error"


class ReplyView(Static, can_focus=False):
    """A fixed-height pane showing the end of the reply (the answer and the reasoning just before it).

    It keeps its size whatever the reply's length, so an update repaints this pane only: a growing,
    scrolling body used to lay out the whole screen on every new line (100-500 ms with the charts up).
    """

    COMPONENT_CLASSES = {"reply-view--reasoning", "reply-view--answer", "reply-view--ok", "reply-view--error",
                         "reply-view--warning", "reply-view--muted", "reply-view--header"}

    DEFAULT_CSS = """
    ReplyView { height: 6; width: 1fr; border-top: hkey $panel-lighten-1; padding: 0 1; }
    ReplyView > .reply-view--reasoning { color: $text-muted; text-style: italic; }
    ReplyView > .reply-view--answer { color: $primary; text-style: bold; }
    ReplyView > .reply-view--ok { color: $success; }
    ReplyView > .reply-view--error { color: $error; }
    ReplyView > .reply-view--warning { color: $warning; }
    ReplyView > .reply-view--muted { color: $text-muted; }
    ReplyView > .reply-view--header { text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._shown: tuple[int, int] | None = None
        self._text = Text()

    def _style(self, name: str):
        return component_style(self, name)

    def sync(self, stream: StreamState, *, force: bool = False) -> bool:
        key = (id(stream), stream.version)
        if key == self._shown and not force:
            return False
        self._shown = key
        self._text = self.render_stream(stream)
        self.update(self.tail(self._text), layout=False)
        return True

    def on_resize(self) -> None:
        self.update(self.tail(self._text), layout=False)

    def tail(self, text: Text) -> Text:
        """What fits, wrapped at the pane's width: the header line (turn, keys, verdict) and the end of
        the reply under it (the answer, and the reasoning just before it)."""
        width, height = self.content_region.width, self.content_region.height
        if width <= 0 or height <= 0:
            return text
        lines = text.wrap(self.app.console, width)
        if len(lines) <= height:
            return text
        header = text.split("\n")[0].wrap(self.app.console, width)
        keep = max(0, height - len(header))
        return Text("\n").join([*header, *lines[len(lines) - keep:]][:height])

    def render_stream(self, stream: StreamState) -> Text:
        text = Text()
        if stream.sample < 0 or (stream.turn == 0 and stream.record is None):
            text.append("waiting for the first turn…", self._style("reply-view--muted"))
            return text
        verdict, verdict_style = describe_result(stream)
        text.append(f"s{stream.sample} · turn {stream.turn}", self._style("reply-view--header"))
        text.append(f" · keys {', '.join(stream.keys)} · ")
        text.append(verdict, self._style(verdict_style))
        record = stream.record
        if record is not None:
            retries = f" · {record.retries} retr{'y' if record.retries == 1 else 'ies'}" if record.retries else ""
            text.append(f" · {record.latency_s:.2f} s{retries}", self._style("reply-view--muted"))
        if record is not None and record.injected:
            text.append(f" · history shows {record.history_answer} (injected)", self._style("reply-view--warning"))
        reasoning = record.reasoning if record is not None else "".join(stream.reasoning)
        reply = record.raw_reply if record is not None else "".join(stream.text)
        if reasoning:
            if len(reasoning) > MAX_REASONING:
                reasoning = "…" + reasoning[-MAX_REASONING:]
            text.append("\n")
            text.append(reasoning.strip(), self._style("reply-view--reasoning"))
        if reply:
            text.append("\n")
            position = 0
            for match in ANSWER_TAG.finditer(reply):
                text.append(reply[position:match.start()])
                text.append(match.group(0), self._style("reply-view--answer"))
                position = match.end()
            text.append(reply[position:])
        return text
