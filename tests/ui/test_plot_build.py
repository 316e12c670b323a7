"""Plots are built on a worker thread: what the widget shows once a build lands equals the text built
inside `render`, a figure shown during a build is built after it, and the UI loop is never held."""

from __future__ import annotations

import threading

from textual.app import App, ComposeResult

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


async def test_threaded_build_shows_what_render_would_build(monkeypatch):
    threaded = await shown_text(40, threaded=True, monkeypatch=monkeypatch)
    inline = await shown_text(40, threaded=False, monkeypatch=monkeypatch)
    assert threaded == inline
    assert "n=40" in threaded and "square" in threaded and "half" in threaded


async def test_a_figure_shown_during_a_build_is_built_next(monkeypatch):
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", True)
    real_build = plotting.build_text
    started, release = threading.Event(), threading.Event()

    def held_build(plt, job):  # the first build lasts until every figure has been shown, however fast the machine
        started.set()
        assert release.wait(30), "the test never released the build"
        return real_build(plt, job)

    monkeypatch.setattr(plotting, "build_text", held_build)
    app = OnePlot()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure(10))
        await wait_until(pilot, started.is_set)
        for n in range(20, 200, 10):          # all shown while the first build runs
            plot.show(figure(n))
            await pilot.pause()
        release.set()
        await wait_until(pilot, lambda: plot.settled)
        assert "n=190" in plot.render().plain
        assert plot.builds == 2                # the first, then the last: the ones between were skipped, not queued
