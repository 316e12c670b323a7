"""Chart ticks (issue 28: fractional turn ticks and an accuracy axis topping at 1.02 were approved into
snapshots): turns tick on whole numbers, an accuracy axis runs 0 to 1."""

from __future__ import annotations

import re

import pytest
from textual.app import App, ComposeResult

from lhe_tui.ui import plotting
from lhe_tui.ui.plotting import ACCURACY_AXIS, Figure, PlotView, Series, integer_ticks

from .test_run_view import wait_until


@pytest.mark.parametrize("low, high, most, expected", [
    (1, 7, 10, [1, 2, 3, 4, 5, 6, 7]),
    (1, 7, 3, [2, 4, 6]),
    (1, 37, 5, [10, 20, 30]),
    (0, 400, 5, [0, 100, 200, 300, 400]),
    (1.5, 1.9, 4, []),
    (3, 3, 4, [3]),
    (-12, 40, 4, [0, 20, 40]),
    (1, 3, 1, [2]),
    (1, 4, 1, [1]),
])
def test_integer_ticks(low, high, most, expected):
    assert integer_ticks(low, high, most) == expected


def test_integer_ticks_never_pass_their_bounds_or_count():
    for low in range(-30, 30, 7):
        for span in (0, 1, 3, 9, 55, 999, 12_345):
            for most in (1, 2, 3, 5, 8):
                ticks = integer_ticks(low, low + span, most)
                assert 1 <= len(ticks) <= most and low <= ticks[0] and ticks[-1] <= low + span
                steps = {b - a for a, b in zip(ticks, ticks[1:])}
                assert len(steps) <= 1 and all(str(s).strip("0") in ("1", "2", "5") for s in steps)


class OnePlot(App):
    def compose(self) -> ComposeResult:
        yield PlotView(id="plot")


async def shown(figure: Figure, monkeypatch) -> list[str]:
    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", False)
    app = OnePlot()
    async with app.run_test(size=(70, 20)) as pilot:
        plot = app.query_one(PlotView)
        plot.show(figure)
        await pilot.pause()
        await wait_until(pilot, lambda: plot.settled)
        return plot.render().plain.splitlines()


async def test_turns_tick_on_whole_numbers_and_accuracy_runs_0_to_1(monkeypatch):
    x = list(range(1, 38))
    lines = await shown(Figure(series=(Series(x, [0.97 ** t for t in x], label="task"),), xlabel="turn",
                               **ACCURACY_AXIS), monkeypatch)
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    x_labels = lines[axis + 1].split()
    assert x_labels and all(re.fullmatch(r"\d+", label) for label in x_labels), x_labels
    y_labels = [line.split("┤")[0].strip() for line in lines[:axis] if "┤" in line]
    assert y_labels == ["1", "0.75", "0.5", "0.25", "0"], y_labels


async def test_a_rate_axis_keeps_its_fractions_and_a_sum_ticks_on_whole_numbers(monkeypatch):
    lines = await shown(Figure(series=(Series([1, 2, 3, 4], [-3, 7, 2, 11]),), y_integer=True), monkeypatch)
    y_labels = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert y_labels and all(re.fullmatch(r"-?\d+", label) for label in y_labels), y_labels
    lines = await shown(Figure(series=(Series([0.0, 0.25, 0.5], [1.0, 0.5, 0.2]),), x_integer=False,
                               **ACCURACY_AXIS), monkeypatch)
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    assert any("." in label for label in lines[axis + 1].split())
