"""The one adapter between our widgets and plotext (through textual-plotext 1.0.1, which needs plotext<6).

Widgets describe what to draw as a `Figure` (plain data: series, vertical marks, labels) and hand it to
a `PlotView`. Only this module touches plotext: each PlotView draws on its own plot object (no
module-global plot state), colours come from the app's theme variables by name (`"success"`,
`"error"`, `"primary"`, ...), and long series are thinned to what the widget can show.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rich.color import Color as RichColor
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.color import Color, ColorParseError
from textual.strip import Strip
from textual_plotext import PlotextPlot

from lhe_tui.analysis.decay_curves import thin_rows
from lhe_tui.ui.background import lower_this_threads_priority


@dataclass(frozen=True)
class Series:
    x: Sequence[float]
    y: Sequence[float]
    label: str = ""
    color: str = "primary"        # a theme variable name, or "muted" / "band"
    kind: str = "line"            # line | scatter
    marker: str = "braille"


@dataclass(frozen=True)
class Band:
    """A shaded area between two curves over the same x (e.g. a bootstrap CI); values in [0, top]."""

    x: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]
    color: str = "band"


@dataclass(frozen=True)
class Mark:
    """A vertical line at x, with an optional label written next to it."""

    x: float
    color: str = "error"
    label: str = ""


@dataclass(frozen=True)
class Figure:
    series: tuple[Series, ...] = ()
    bands: tuple[Band, ...] = ()
    marks: tuple[Mark, ...] = ()
    title: str = ""
    xlabel: str = ""
    ylim: tuple[float, float] | None = None
    xlim: tuple[float, float] | None = None
    empty: str = "no data yet"
    notes: tuple[str, ...] = field(default=())
    x_integer: bool = True                 # ticks on whole numbers (turns); False: plotext's own
    y_integer: bool = False
    xticks: tuple[float, ...] = ()         # where the ticks go (before the two above)
    yticks: tuple[float, ...] = ()

    @property
    def has_data(self) -> bool:
        return any(len(s.x) for s in self.series)


UNIT_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
ACCURACY_AXIS = {"ylim": (0.0, 1.0), "yticks": UNIT_TICKS}
"""An accuracy axis, 0 to 1: Figure(..., **ACCURACY_AXIS)."""


def integer_ticks(low: float, high: float, most: int) -> list[int]:
    """Whole numbers over [low, high], at most `most` of them, a 1-2-5 step apart (1, 2, 5, 10, 20, ...)."""
    first, last = math.ceil(low), math.floor(high)
    if last < first or most < 1:
        return []
    scale = 1
    while True:
        for step in (scale, 2 * scale, 5 * scale):
            ticks = range(-(-first // step) * step, last + 1, step)
            if len(ticks) <= most:   # none (no multiple of a step this long inside): one tick
                return list(ticks) or [first]
        scale *= 10


def _extent(values: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    found = [v for seq in values for v in seq]
    return (min(found), max(found)) if found else None


def thin(x: Sequence[float], y: Sequence[float], most: int) -> tuple[list[float], list[float]]:
    """Keep at most `most` evenly spaced points (always the last one)."""
    if len(x) <= most or most < 2:
        return list(x), list(y)
    picks = thin_rows(len(x), most)
    return [x[i] for i in picks], [y[i] for i in picks]


MOST_POINTS = 1024
"""The most points (evenly spaced turns) a chart of a long run is computed at: more than twice the columns of
any plot, which draws two points a column at most (`build_text`); more would only be lists of floats made and
dropped at every redraw (issue 26). The sum chart and the decay curves (live and arms views) take it."""

BUILD_IN_THREAD = True
"""Build plots on a worker thread (False: in `render`, as plotext usually is; tests use it for snapshots)."""

_builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plot-build", initializer=lower_this_threads_priority)
"""One thread for every plot: builds never overlap (plotext keeps some state per module), and a busy
run can never have more than one plot build competing with it."""


@dataclass(frozen=True)
class _BuildInput:
    """Everything a build needs, taken on the UI thread (theme colours, plotext theme, size)."""

    key: tuple
    figure: Figure
    width: int
    height: int
    colours: dict[str, tuple[int, int, int]]
    plotext_theme: str


class PlotView(PlotextPlot):
    """A plot widget that draws a `Figure` with the current theme's colours.

    plotext takes 50-150 ms to build a chart, which on the UI loop shows as lag (and a full layout renders
    every plot again). So the text is built on a worker thread (the GIL hands the loop back every few ms)
    and `render` returns the last built text: a new figure, size or theme shows one build later.
    """

    DEFAULT_CSS = """
    PlotView {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._figure = Figure()
        self._version = 0                        # bumped by show(): part of the build key
        self._built: tuple[tuple, Text] | None = None
        # The built chart as lines of segments without the widget's own style (threaded builds), and
        # those lines as strips over the widget's style (made on the UI thread, per style).
        self._built_lines: tuple[tuple, list[list[Segment]]] | None = None
        self._strips: tuple[tuple, list[Strip]] | None = None
        self._building = False
        self._stale = False                      # asked for again while a build was running
        self.builds = 0                          # finished builds (tests)

    @property
    def figure(self) -> Figure:
        return self._figure

    def show(self, figure: Figure) -> None:
        self._figure = figure
        self._version += 1
        width, height = self.size
        if BUILD_IN_THREAD and self._built is not None and figure.has_data and width >= 12 and height >= 5:
            # A repaint now would only convert the last built chart into lines again (20-100 ms on the UI
            # loop with a run going, half the plots' repaints): start the build, `_on_built` repaints.
            self._request_build(self._build_input(self._build_key()))
        else:
            self.refresh()

    @property
    def settled(self) -> bool:
        """The last render showed the current figure at the current size (tests wait for this)."""
        return self._built is not None and self._built[0] == self._build_key() and not self._building

    def colour(self, name: str) -> tuple[int, int, int]:
        variables = self.app.theme_variables
        # Every Textual theme defines these; colours never come from code.
        foreground = Color.parse(variables["foreground"])
        surface = Color.parse(variables["surface"])
        if name == "muted":
            return foreground.blend(surface, 0.45).rgb
        if name == "band":
            return Color.parse(variables["primary"]).blend(surface, 0.7).rgb
        try:
            return Color.parse(variables[name]).rgb
        except (KeyError, ColorParseError):  # unknown or non-colour variable
            return foreground.rgb

    def _build_key(self) -> tuple:
        return (self._version, tuple(self.size), self.app.theme)

    def render(self) -> RenderResult:
        figure = self._figure
        width, height = self.size
        if not figure.has_data or width < 12 or height < 5:
            return Text(figure.empty if not figure.has_data else "", style="italic")
        key = self._build_key()
        if self._built is not None and self._built[0] == key:
            return self._built[1]
        job = self._build_input(key)
        if not BUILD_IN_THREAD:
            text = build_text(self.plt, job)
            self._built = (key, text)
            self.builds += 1
            return text
        self._request_build(job)
        return self._built[1] if self._built is not None else Text("")

    def _build_input(self, key: tuple) -> _BuildInput:
        figure = self._figure
        names = {s.color for s in figure.series} | {b.color for b in figure.bands} | {m.color for m in figure.marks}
        width, height = self.size
        return _BuildInput(key=key, figure=figure, width=width, height=height,
                           colours={name: self.colour(name) for name in names},
                           plotext_theme=self._get_plotext_theme_name(self.app.theme))

    def _request_build(self, job: _BuildInput) -> None:
        if self._building:
            self._stale = True
            return
        self._building = True
        loop = asyncio.get_running_loop()

        def build() -> None:
            lines = None
            try:
                text = build_text(self.plt, job)
                lines = text_lines(text, job.width)
            except Exception as exc:  # noqa: BLE001 - shown in the widget rather than lost in a thread
                text = Text(f"plot failed: {exc}", style="italic")
            try:
                loop.call_soon_threadsafe(self._on_built, job.key, text, lines)
            except RuntimeError:  # the app has closed its loop
                pass

        _builder.submit(build)

    def _on_built(self, key: tuple, text: Text, lines: list[list[Segment]] | None = None) -> None:
        self._building = False
        self._built = (key, text)
        self._built_lines = (key, lines) if lines is not None else None
        self.builds += 1
        self._stale = False
        self.refresh()   # render builds again if the figure, size or theme moved on meanwhile

    def render_line(self, y: int) -> Strip:
        """The built chart's line y over the widget's current style, when the last build is at this size.

        Textual's own path turns the built Text into strips again at every repaint (20-100 ms on the UI
        loop for a decay plot with a run going: the largest part of the UI lag left, issue 6). The build
        thread splits the text into segments; here they only get the widget's style, once per build and
        style (a theme or focus change recolours at once, not one build later). Anything else (a selection,
        no chart, another size) takes the `render` path, which also asks for the next build.
        """
        built = self._built_lines
        if built is None or self.text_selection is not None:
            return super().render_line(y)
        key, lines = built
        width, height = self.size
        if key[1] != (width, height) or not self._figure.has_data:
            return super().render_line(y)
        current = self._build_key()
        if key != current:
            self._request_build(self._build_input(current))   # shown when built; this one meanwhile
        base = self.visual_style.rich_style
        if self._strips is None or self._strips[0] != (key, base):
            self._strips = ((key, base), [Strip([Segment(text, base + style) for text, style, _ in line])
                                          for line in lines])
        strips = self._strips[1]
        return strips[y] if y < len(strips) else Strip.blank(width, base)


def build_text(plt, job: _BuildInput) -> Text:
    """The chart as text: pure, safe off the UI thread (colours and theme are already resolved)."""
    figure, width, height, colours = job.figure, job.width, job.height, job.colours
    legend = legend_text(figure, colours)
    plot_height = height - (1 if legend is not None else 0)
    plt.clear_data()
    # plotext drops a title wider than the plot: shorten it instead.
    room = width - 10
    title = figure.title if len(figure.title) <= room else figure.title[:max(0, room - 1)] + "…"
    plt.title(title)
    plt.xlabel(figure.xlabel)
    most = max(8, 2 * width)
    for band in figure.bands:
        # Drawn first, as two thin bounds, so the curves stay on top and nothing is painted over.
        if len(band.x) < 2:
            continue
        x, high = thin(band.x, band.high, most)
        _, low = thin(band.x, band.low, most)
        plt.plot(x, high, color=colours[band.color], marker="braille")
        plt.plot(x, low, color=colours[band.color], marker="braille")
    for series in figure.series:
        if not len(series.x):
            continue
        x, y = thin(series.x, series.y, most)
        draw = plt.scatter if series.kind == "scatter" else plt.plot
        draw(x, y, color=colours[series.color], marker=series.marker)
    for mark in figure.marks:
        plt.vertical_line(mark.x, color=colours[mark.color])
    plt.ylim(*(figure.ylim or (None, None)))
    plt.xlim(*(figure.xlim or (None, None)))
    if figure.xticks:
        plt.xticks(list(figure.xticks), [f"{t:g}" for t in figure.xticks])
    elif figure.x_integer:
        extent = figure.xlim or _extent([*(s.x for s in figure.series), *(b.x for b in figure.bands),
                                         [m.x for m in figure.marks]])
        if extent is not None:
            ticks = integer_ticks(*extent, most=max(2, (width - 6) // 8))
            plt.xticks(ticks, [str(t) for t in ticks])
    if figure.yticks:
        plt.yticks(list(figure.yticks), [f"{t:g}" for t in figure.yticks])
    elif figure.y_integer:
        extent = figure.ylim or _extent([*(s.y for s in figure.series), *(b.low for b in figure.bands),
                                         *(b.high for b in figure.bands)])
        if extent is not None:
            ticks = integer_ticks(*extent, most=max(2, plot_height // 3))
            plt.yticks(ticks, [str(t) for t in ticks])
    # What textual-plotext's own render does (size twice, see its issue #5; theme from the app),
    # at our height so a legend line fits under the plot instead of over the curves.
    plt.plotsize(width, plot_height)
    plt._set_size(width, plot_height)
    plt.theme(job.plotext_theme)
    text = Text.from_ansi(plt.build().rstrip("\n"))
    if legend is not None:
        text.append("\n")
        text.append_text(legend)
    return text


_lines_console = Console(color_system="truecolor", force_terminal=True, legacy_windows=False)
"""Used by the build thread alone: splits a built chart into lines of segments."""


def text_lines(text: Text, width: int) -> list[list[Segment]]:
    """`text` as lines of segments at `width` (no padding), styled by its own spans only."""
    options = _lines_console.options.update(width=width, min_width=width, max_width=width)
    return _lines_console.render_lines(text, options, pad=False, new_lines=False)


def legend_text(figure: Figure, colours: dict[str, tuple[int, int, int]]) -> Text | None:
    entries = [(s.label, s.color) for s in figure.series if s.label]
    entries += [("CI 95%", b.color) for b in figure.bands]
    entries += [(m.label, m.color) for m in figure.marks if m.label]
    if not entries:
        return None
    legend = Text(no_wrap=True, overflow="ellipsis")
    legend.append(" ")
    for label, colour in entries:
        r, g, b = colours[colour]
        legend.append("━ ", Style(color=RichColor.from_rgb(r, g, b), bold=True))
        legend.append(label + "  ")
    return legend
