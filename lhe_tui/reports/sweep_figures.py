"""The paper's comparison figures from a sweep (`lhe-tui plot swp-… --kind horizon|probe|decay|k [--by AXIS]`),
in lhe_tui.reports.figures' style (deterministic SVG, Okabe-Ito colours, one column wide).

- horizon --by AXIS: H_s of each run with its 95% bootstrap CI against AXIS (a model's `size` when every model
  has one, on a log axis: the scaling figure), one line per combination of the other axes. A run whose task
  accuracy never fell below s is drawn as a lower bound (an open triangle pointing up at the turns it played),
  not as a point.
- probe --by model: accuracy at the target turn against the induced error rate, one line per run.
- decay --by AXIS: task accuracy (solid) and turn accuracy (dashed) of every run overlaid, coloured by AXIS.
- k: H in steps against K, one line per combination of the other axes.

The numbers: lhe_tui.sweep.results (H_s and its CI), lhe_tui.reports.figures.decay_curves, lhe_tui.runs.probe.probe_table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import ConfigError, LheError
from lhe_tui.reports.figures import (GREY, HEIGHT_IN, METADATA, N_BOOT, OKABE_ITO, STYLE, _figure, _matplotlib,
                                     check_output, decay_curves)
from lhe_tui.sweep.results import RunResult, sweep_results

if TYPE_CHECKING:
    from sqlite_utils import Database

SWEEP_KINDS = ("horizon", "probe", "decay", "k")
MARKERS = ("o", "s", "D", "v", "P", "X", "^", "<")


@dataclass
class Series:
    """One line of a figure: its label and points (x, y, low, high, lower bound?) in x order."""

    label: str
    points: list[tuple[Any, float, float | None, float | None, bool]] = field(default_factory=list)


def _x_of(result: RunResult, by: str, use_size: bool) -> Any:
    if by == "model" and use_size:
        return result.size
    value = result.axes.get(by)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def horizon_series(results: list[RunResult], by: str, axes: tuple[str, ...], *,
                   steps: bool = False) -> tuple[list[Series], bool]:
    """(series, numeric x): per combination of the other axes, the runs' H against `by` in the sweep's order
    (sorted by x when x is numeric). Runs never started or without a measure are left out."""
    if by not in axes:
        raise ConfigError(f"--by {by}: not an axis of this sweep (axes: {', '.join(axes)})")
    use_size = by == "model" and all(r.size is not None for r in results)
    series: dict[str, Series] = {}
    numeric = True
    for r in results:
        if r.horizon is None:
            continue
        rest = " ".join(f"{a}={r.axes[a]}" for a in axes if a != by)
        s = series.setdefault(rest, Series(rest or f"H_{r.s:g}"))
        x = _x_of(r, by, use_size)
        numeric = numeric and isinstance(x, float)
        scale = r.k if steps else 1
        y = r.horizon * scale
        low = None if r.horizon_low is None else r.horizon_low * scale
        high = None if r.horizon_high is None else r.horizon_high * scale
        s.points.append((x, float(y), low, high, r.lower_bound))
    out = list(series.values())
    if numeric:
        for s in out:
            s.points.sort(key=lambda p: p[0])
    return out, numeric


def draw_horizon(fig: Any, series: list[Series], numeric: bool, *, xlabel: str, ylabel: str, log_x: bool) -> None:
    ax = fig.add_subplot()
    categories: list[Any] = []
    if not numeric:
        for s in series:
            for p in s.points:
                if p[0] not in categories:
                    categories.append(p[0])
    for n, s in enumerate(series):
        color = OKABE_ITO[n % len(OKABE_ITO)]
        xs = [p[0] if numeric else categories.index(p[0]) for p in s.points]
        ys = [p[1] for p in s.points]
        ax.plot(xs, ys, color=color, linewidth=0.9, alpha=0.7)
        for x, p in zip(xs, s.points):
            _, y, low, high, bound = p
            if bound:   # never fell below s: H is past the turns played
                ax.plot([x], [y], marker="^", markerfacecolor="none", color=color, linestyle="none")
                continue
            err = [[y - low if low is not None else 0.0], [high - y if high is not None else 0.0]]
            ax.errorbar([x], [y], yerr=err, color=color, marker=MARKERS[n % len(MARKERS)], capsize=2,
                        elinewidth=0.8, linestyle="none")
            if high is None:   # the upper bound is past the turns played
                ax.annotate("", (x, y * 1.25), (x, y), arrowprops={"arrowstyle": "->", "color": color, "lw": 0.7})
        ax.plot([], [], color=color, marker=MARKERS[n % len(MARKERS)], label=s.label)
    ax.plot([], [], marker="^", markerfacecolor="none", color=GREY, linestyle="none", label="lower bound (never below s)")
    if not numeric:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories], rotation=30, ha="right")
    elif log_x:
        ax.set_xscale("log")
    top = max((max(p[1], p[3] or 0.0) for s in series for p in s.points), default=1.0)
    ax.set_ylim(0, top * 1.35)    # room for the arrows of CIs unbounded above
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=1, fontsize=6)


def plot_sweep(db: Database, sweep_id: str, out: Path | str, *, kind: str = "horizon", by: str | None = None,
               s: float = 0.5, n_boot: int = N_BOOT, step_rule: str | None = None) -> Path:
    """Draw a sweep figure into `out` (.png, .svg or .pdf). LheError with one line on bad input."""
    out = Path(out)
    fmt = check_output(out)
    if kind not in SWEEP_KINDS:
        raise ConfigError(f"--kind {kind}: a sweep draws {', '.join(SWEEP_KINDS)}")
    matplotlib = _matplotlib()
    plan, results = sweep_results(db, sweep_id, s=s, n_boot=n_boot, step_rule=step_rule)
    if by is None:
        by = "model" if "model" in plan.axes else plan.axes[0]
    with matplotlib.rc_context(STYLE):
        if kind == "horizon":
            series, numeric = horizon_series(results, by, plan.axes)
            _need(series, plan.sweep_id)
            use_size = by == "model" and numeric
            fig = _figure(HEIGHT_IN + 0.2 + 0.12 * len(series))
            draw_horizon(fig, series, numeric, xlabel="model size" if use_size else by,
                         ylabel=f"$H_{{{s:g}}}$ (turns, 95% CI)", log_x=use_size)
        elif kind == "k":
            if "k" not in plan.axes:
                raise ConfigError("--kind k: this sweep has no k axis")
            series, numeric = horizon_series(results, "k", plan.axes, steps=True)
            _need(series, plan.sweep_id)
            fig = _figure(HEIGHT_IN + 0.2 + 0.12 * len(series))
            draw_horizon(fig, series, numeric, xlabel="K (keys per turn)", ylabel=f"$H_{{{s:g}}}$ (steps)",
                         log_x=False)
        elif kind == "decay":
            fig = _figure(HEIGHT_IN + 0.3)
            _draw_decay_overlay(fig, db, results, by, plan.axes, n_boot, step_rule)
        else:
            if plan.probe is None:
                raise ConfigError(f"--kind probe: sweep {plan.sweep_id} has no [probe] block (its runs are not probes)")
            fig = _figure(HEIGHT_IN + 0.3)
            _draw_probe_lines(fig, db, results, plan.probe.target_turn)
        try:
            fig.savefig(out, format=fmt, metadata=METADATA[fmt])
        except OSError as exc:
            raise LheError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _need(series: list[Series], sweep_id: str) -> None:
    if not any(s.points for s in series):
        raise LheError(f"sweep {sweep_id} has no run with stored turns yet: nothing to plot")


def _draw_decay_overlay(fig: Any, db: Database, results: list[RunResult], by: str, axes: tuple[str, ...],
                        n_boot: int, step_rule: str | None) -> None:
    if by not in axes:
        raise ConfigError(f"--by {by}: not an axis of this sweep (axes: {', '.join(axes)})")
    ax = fig.add_subplot()
    values: list[str] = []
    drawn = 0
    for r in results:
        if r.session_id is None or r.kind != "run" or not r.turns_played:
            continue
        value = r.axes[by]
        if value not in values:
            values.append(value)
        color = OKABE_ITO[values.index(value) % len(OKABE_ITO)]
        d = decay_curves(db, r.session_id, n_boot=min(n_boot, 200), step_rule=step_rule)
        x = list(range(1, len(d.task) + 1))
        ax.plot(x, d.task, color=color, linewidth=1.0, alpha=0.8)
        ax.plot(x, d.turn, color=color, linewidth=0.6, linestyle="--", alpha=0.6)
        drawn += 1
    if not drawn:
        raise LheError("no run of this sweep has stored turns yet: nothing to plot")
    for value in values:
        ax.plot([], [], color=OKABE_ITO[values.index(value) % len(OKABE_ITO)], label=f"{by}={value}")
    ax.plot([], [], color=GREY, label="task accuracy")
    ax.plot([], [], color=GREY, linestyle="--", label="turn accuracy")
    ax.axhline(0.5, color=GREY, linewidth=0.5, linestyle=(0, (1, 2)))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("turn")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=6)


def _draw_probe_lines(fig: Any, db: Database, results: list[RunResult], target: int) -> None:
    from lhe_tui.runs.probe import probe_table

    ax = fig.add_subplot()
    drawn = 0
    for n, r in enumerate(results):
        if r.session_id is None or r.kind != "probe":
            continue
        rows = probe_table(db, r.session_id)
        if not rows:
            continue
        color = OKABE_ITO[n % len(OKABE_ITO)]
        err = [[max(0.0, row.accuracy - row.ci_low) for row in rows], [max(0.0, row.ci_high - row.accuracy) for row in rows]]
        ax.errorbar([row.rate for row in rows], [row.accuracy for row in rows], yerr=err, color=color,
                    marker=MARKERS[n % len(MARKERS)], capsize=2, linewidth=1.0, elinewidth=0.7, label=r.run)
        drawn += 1
    if not drawn:
        raise LheError("no probe of this sweep has stored turns yet: nothing to plot")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("induced error rate r in the history")
    ax.set_ylabel(f"accuracy at turn {target}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1, fontsize=6)
