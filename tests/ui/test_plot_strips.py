"""A threaded plot build is drawn from lines split on the build thread (PlotView.render_line), not by
converting the built Text again at every repaint. What shows must be what Textual's own path shows, cell
for cell, in any theme, and a theme change must recolour at once (the widget's style is applied on the UI
thread, per style, never baked in by the build thread)."""

from __future__ import annotations

from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip

from lhe_tui.ui import plotting
from lhe_tui.ui.plotting import Band, Figure, Mark, PlotView, Series

from .test_run_view import wait_until


def figure(n: int) -> Figure:
    x = list(range(1, n + 1))
    return Figure(series=(Series(x, [v * v for v in x], label="square"),
                          Series(x, x, label="id", color="success", kind="scatter")),
                  bands=(Band(x, [v * v + 5 for v in x], [v * v - 5 for v in x]),),
                  marks=(Mark(n // 2, label="half", color="error"),), title=f"n={n}", xlabel="turn")


class OnePlot(App):
    def compose(self) -> ComposeResult:
        yield PlotView(id="plot")


def colour(c) -> tuple | None:
    return None if c is None else tuple(c.get_truecolor())


def cells(strips: list[Strip]) -> list[list[tuple]]:
    out = []
    for strip in strips:
        row = []
        for seg in strip:
            style = seg.style or Style()
            look = (colour(style.color), colour(style.bgcolor), bool(style.bold), bool(style.dim),
                    bool(style.italic), bool(style.underline), bool(style.reverse), bool(style.strike))
            row.extend((ch, *look) for ch in seg.text)
        out.append(row)
    return out


def both_paths(plot: PlotView) -> tuple[list[list[tuple]], list[list[tuple]]]:
    plot.refresh()
    fast = plot.render_lines(plot.size.region)
    assert plot._strips is not None and plot._strips[0][0] == plot._build_key()   # drawn from the lines
    lines, plot._built_lines = plot._built_lines, None
    try:
        plot.refresh()
        slow = plot.render_lines(plot.size.region)
    finally:
        plot._built_lines = lines
    return cells(fast), cells(slow)


async def test_strips_from_the_build_thread_match_the_render_path_cell_for_cell(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    app = OnePlot()
    async with app.run_test(size=(90, 26)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(60))
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        fast, slow = both_paths(plot)
        assert fast == slow
        assert any(ch[0] not in " " for row in fast for ch in row)
        for theme in ("textual-light", "dracula"):
            app.theme = theme
            await pilot.pause()
            await wait_until(pilot, lambda: plot.settled)
            fast, slow = both_paths(plot)
            assert fast == slow, theme


async def test_a_theme_change_recolours_the_shown_chart_before_its_rebuild(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    app = OnePlot()
    async with app.run_test(size=(90, 26)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(30))
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        dark = plot.visual_style.rich_style.bgcolor
        app.theme = "textual-light"
        await pilot.pause()
        light = plot.visual_style.rich_style.bgcolor
        assert light != dark
        plot.refresh()
        strips = plot.render_lines(plot.size.region)
        backgrounds = {seg.style.bgcolor for strip in strips for seg in strip if seg.style}
        assert dark not in backgrounds
