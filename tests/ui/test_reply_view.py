"""The reply pane keeps its size: it shows the header line and the end of a long reply (the answer), and
an update never asks for a layout of the screen."""

from __future__ import annotations

from textual.app import App, ComposeResult

from lhe_tui.core.events import TurnRecord
from lhe_tui.ui.feed import StreamState
from lhe_tui.ui.widgets.reply_view import ReplyView


class OneReply(App):
    CSS = "ReplyView { height: 6; width: 40; }"

    def compose(self) -> ComposeResult:
        yield ReplyView(id="reply")


def long_reply_stream() -> StreamState:
    reasoning = " ".join(f"step{i} adds a number." for i in range(60))
    record = TurnRecord(sample=1, turn=7, keys=("globs",), key_values=(5,), turn_sum=5, gold_sum=42,
                        seen_previous=37, expected_step=42, raw_reply="<answer>42</answer>", reasoning=reasoning,
                        answer_status="ok", model_answer=42, correct=True, step_correct=True, history_answer=42)
    return StreamState(sample=1, turn=7, keys=("globs",), record=record, version=1)


async def test_a_long_reply_shows_its_header_and_its_end():
    app = OneReply()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(ReplyView)
        layouts = []
        original = view.refresh
        view.refresh = lambda *a, **k: (layouts.append(k.get("layout", False)), original(*a, **k))[1]
        view.sync(long_reply_stream())
        await pilot.pause()
        shown = view.content.plain.splitlines()
        assert len(shown) == view.content_region.height == 5          # 6 rows less the top border
        assert shown[0].startswith("s1 · turn 7 · keys globs · correct: 42")
        assert shown[-1] == "<answer>42</answer>"
        assert "step59" in shown[-2] and "step0 " not in view.content.plain
        assert not any(layouts)
