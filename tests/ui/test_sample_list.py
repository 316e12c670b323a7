"""The sample list (Line API): its lines and colours per theme, the user's choices (keys, click) asking to
watch a sample while the screen's own do not, and a changed sample redrawing only its own line."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.color import Color

from lhe_tui.ui.feed import SampleState
from lhe_tui.ui.widgets import sample_list as sample_list_module
from lhe_tui.ui.widgets.sample_list import SampleList


class ListApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.watched: list[int] = []

    def compose(self) -> ComposeResult:
        yield SampleList()

    def on_sample_list_watch(self, message: SampleList.Watch) -> None:
        self.watched.append(message.index)


def state(index: int, status: str = "running", *, first_error: int | None = None, turn: int = 0) -> SampleState:
    s = SampleState(index)
    s.status, s.first_error, s.current_turn = status, first_error, turn
    return s


def mixed() -> list[SampleState]:
    return [state(0, "pending"), state(1, turn=5), state(2, "finished", turn=40),
            state(3, first_error=3, turn=9), state(12, "failed", first_error=17, turn=20)]


def line(widget: SampleList, y: int):
    return widget.render_line(y)


def text(widget: SampleList, y: int) -> str:
    return line(widget, y).text


def tail_colour(widget: SampleList, y: int):
    segments = [s for s in line(widget, y) if s.text.strip()]
    return segments[-1].style.color.triplet


async def test_one_line_per_sample_glyph_index_and_state():
    app = ListApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(SampleList)
        widget.sync(mixed(), 0)
        await pilot.pause()
        width = widget.size.width
        assert width == 13                    # 14 columns, one for the border
        lines = [text(widget, y) for y in range(6)]
        assert lines[:5] == [t.ljust(width) for t in
                             ("· s0  ", "▶ s1  t5", "● s2  ok", "▶ s3  ✗3", "! s12 ✗17")]
        assert lines[5] == " " * width        # below the last sample: blank
        assert widget.option_count == 5
        assert widget.get_option_at_index(3).prompt.plain == "▶ s3  ✗3"
        assert all(line(widget, y).cell_length == width for y in range(6))


async def test_tail_colours_follow_the_theme():
    app = ListApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(SampleList)
        seen = {}
        for theme in ("textual-dark", "gruvbox"):
            app.theme = theme
            await pilot.pause()
            widget.sync(mixed(), 0)
            await pilot.pause()
            variables = app.theme_variables
            assert tail_colour(widget, 3) == Color.parse(variables["error"]).rgb
            assert tail_colour(widget, 2) == Color.parse(variables["success"]).rgb
            label = widget.get_option_at_index(3).prompt
            assert label.spans[0].style.color.triplet == Color.parse(variables["error"]).rgb
            seen[theme] = tail_colour(widget, 3)
        assert seen["textual-dark"] != seen["gruvbox"]


async def test_colours_are_resolved_once_per_theme():
    app = ListApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(SampleList)
        widget.sync(mixed(), 0)
        await pilot.pause()
        styles = widget._style_cache
        assert styles is not None
        samples = mixed()
        samples[1].first_error = 2
        widget.sync(samples, 1)
        await pilot.pause()
        assert widget._style_cache is styles          # not looked up again per line or per sync


async def test_keys_and_clicks_ask_to_watch_but_the_screens_own_choice_does_not():
    app = ListApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(SampleList)
        widget.sync([state(i, turn=1) for i in range(30)], 0)
        await pilot.pause()
        widget.show_watched(4)                         # programmatic: highlighted, no message
        await pilot.pause()
        assert widget.highlighted == 4 and app.watched == []
        widget.focus()
        await pilot.press("down")
        await pilot.press("up", "up")
        await pilot.press("end")
        await pilot.press("home")
        await pilot.press("pagedown")
        await pilot.press("enter")
        await pilot.pause()
        page = widget.size.height
        assert app.watched == [5, 4, 3, 29, 0, page, page]
        assert widget.highlighted == page
        await pilot.click(SampleList, offset=(3, 2))  # the third visible line
        await pilot.pause()
        top = widget.scroll_offset.y
        assert app.watched[-1] == top + 2 and widget.highlighted == top + 2
        # the highlighted line is drawn in the cursor's style
        cursor_bg = widget.get_component_rich_style("sample-list--highlighted").bgcolor
        assert list(line(widget, 2))[0].style.bgcolor == cursor_bg


async def test_the_watched_sample_is_scrolled_into_view():
    app = ListApp()
    async with app.run_test(size=(40, 12)) as pilot:
        widget = app.query_one(SampleList)
        widget.sync([state(i, turn=1) for i in range(64)], 50)
        await pilot.pause()
        top, height = widget.scroll_offset.y, widget.size.height
        assert top <= 50 < top + height
        assert text(widget, 50 - top).startswith("▶ s50")
        widget.show_watched(3)
        await pilot.pause()
        assert widget.scroll_offset.y <= 3 < widget.scroll_offset.y + height
        assert app.watched == []


async def test_a_changed_sample_redraws_only_its_own_line(monkeypatch):
    app = ListApp()
    async with app.run_test(size=(40, 20)) as pilot:
        widget = app.query_one(SampleList)
        samples = [state(i, turn=1) for i in range(10)]
        widget.sync(samples, 0)
        await pilot.pause()
        drawn: list[int] = []
        draw = widget._draw
        monkeypatch.setattr(widget, "_draw", lambda row, style: drawn.append(row) or draw(row, style))
        refreshed = []
        refresh = widget.refresh
        monkeypatch.setattr(widget, "refresh", lambda *regions, **kw: refreshed.append(regions) or refresh(*regions, **kw))
        samples[6].first_error = 1                     # a state change shows at once
        widget.sync(samples, 0)
        await pilot.pause()
        assert drawn == [6]
        assert [r.y for regions in refreshed for r in regions] == [6]
        assert text(widget, 6).startswith("▶ s6  ✗1")


async def test_turn_counters_alone_follow_once_a_second(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(sample_list_module, "monotonic", lambda: clock[0])
    app = ListApp()
    async with app.run_test(size=(40, 20)) as pilot:
        widget = app.query_one(SampleList)
        samples = [state(i, turn=1) for i in range(4)]
        widget.sync(samples, 0)
        await pilot.pause()
        for s in samples:
            s.current_turn = 2
        clock[0] += 0.5
        widget.sync(samples, 0)
        await pilot.pause()
        assert text(widget, 2).startswith("▶ s2  t1")  # held back
        clock[0] += 0.6
        widget.sync(samples, 0)
        await pilot.pause()
        assert text(widget, 2).startswith("▶ s2  t2")
