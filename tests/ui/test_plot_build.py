"""Plots are built on a worker thread: what the widget shows once a build lands equals the text built
inside `render`, a figure shown during a build is built after it, and the UI loop is never held."""

from __future__ import annotations

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Region

from lhe_tui.ui import plotting
from lhe_tui.ui.plotting import Figure, Mark, PlotView, Series

from .test_run_view import wait_until


def figure(n: int) -> Figure:
    x = list(range(1, n + 1))
    return Figure(series=(Series(x, [v * v for v in x], label="square"), Series(x, x, label="id", color="success")),
                  marks=(Mark(n // 2, label="half"),), title=f"n={n}", xlabel="turn")


class OnePlot(App):
    def compose(self) -> ComposeResult:
        yield PlotView(id="plot")


async def shown_text(n: int, *, threaded: bool, monkeypatch) -> str:
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", threaded)
    app = OnePlot()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(n))
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        return plot.render().plain


def cells(strips) -> list[list[tuple[str, object]]]:
    """Lines as (character, style) per cell: equal however the segments happen to be split."""
    return [[(ch, seg.style) for seg in strip for ch in seg.text] for strip in strips]


async def widget_output(n: int, size: tuple[int, int], *, threaded: bool, monkeypatch,
                        theme: str | None = None):
    """The text the widget shows, its drawn lines (what the screen gets), and its build strips."""
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", threaded)
    app = OnePlot()
    async with app.run_test(size=size) as pilot:
        if theme is not None:
            app.theme = theme
        plot = app.query_one(PlotView)
        plot.show(figure(n))
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        await pilot.pause()
        width, height = plot.size
        drawn = plot.render_lines(Region(0, 0, width, height))
        return plot.render(), drawn, plot._built.strips


async def test_the_strips_shown_equal_the_inline_render(monkeypatch):
    for size in [(80, 24), (50, 12), (23, 7)]:      # the last one cuts the legend
        for theme in [None, "textual-light"]:
            text, drawn, strips = await widget_output(60, size, threaded=True, monkeypatch=monkeypatch,
                                                      theme=theme)
            inline_text, inline_drawn, inline_strips = await widget_output(
                60, size, threaded=False, monkeypatch=monkeypatch, theme=theme)
            assert inline_strips is None and strips is not None       # the inline path keeps to `render`
            width = size[0]
            lines = ["".join(seg.text for seg in strip) for strip in strips]
            assert all(strip.cell_length == width for strip in strips) and len(strips) == size[1]
            # (a too long legend loses its trailing spaces at the edge, on both paths)
            assert [line.rstrip() for line in lines] == [line.rstrip() for line in inline_text.plain.split("\n")]
            assert text.plain == inline_text.plain
            # And pixel for pixel: the same characters in the same colours once Textual has drawn them.
            assert cells(drawn) == cells(inline_drawn), (size, theme)


async def test_a_theme_change_and_a_resize_build_again(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    app = OnePlot()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(30))
        await wait_until(pilot, lambda: plot.settled)
        first = plot._built
        app.theme = "textual-light"
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        assert plot._built is not first and plot._built.key[2] == "textual-light"
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        assert plot._built.key[1] == (60, 20)
        assert all(strip.cell_length == 60 for strip in plot._built.strips)
        assert len(plot._built.strips) == 20


async def test_threaded_build_shows_what_render_would_build(monkeypatch):
    threaded = await shown_text(40, threaded=True, monkeypatch=monkeypatch)
    inline = await shown_text(40, threaded=False, monkeypatch=monkeypatch)
    assert threaded == inline
    assert "n=40" in threaded and "square" in threaded and "half" in threaded


async def test_a_figure_shown_during_a_build_is_built_next(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    app = OnePlot()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(PlotView)
        for n in range(10, 200, 10):          # faster than builds land
            plot.show(figure(n))
            await pilot.pause(0.01)
        await wait_until(pilot, lambda: plot.settled)
        assert "n=190" in plot.render().plain
        assert plot.builds < 19                # intermediate figures were skipped, not queued


async def test_a_style_change_builds_strips_in_the_new_style(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    app = OnePlot()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(30))
        await wait_until(pilot, lambda: plot.settled)
        builds = plot.builds
        plot.styles.background = "darkred"
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled and plot._built.base_style == plot.visual_style.rich_style)
        assert plot.builds > builds
        assert plot._built.strips[-1].text.strip().startswith("━ square")   # the legend line, not the plot
        assert all(seg.style.bgcolor == plot.visual_style.rich_style.bgcolor for seg in plot._built.strips[-1]
                   if seg.text.strip() == "")
