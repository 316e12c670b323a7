"""A sweep's board: one line of cells per run, shared by the CLI's live table and the TUI's sweep screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lhe_tui.core.prices import fmt_cost

if TYPE_CHECKING:
    from lhe_tui.sweep.engine import SweepEngine


def run_cells(engine: SweepEngine) -> tuple[list[str], list[tuple[str, ...]]]:
    """One line per run: its axes, status, turns x/N, the sparklines, H_0.5 so far, cost, rate-limit wait."""
    from lhe_tui.sweep.progress import sparkline

    axes = list(engine.plan.axes)
    header = [*axes, "status", "turns", "task acc", "turn acc", "H_0.5", "cost", "wait"]
    rows = []
    for run in engine.plan.runs:
        p = engine.progress[run.name]
        h, measured = p.horizon()
        wait = p.wait()
        rows.append((*(str(run.axes.get(a, "")) for a in axes), p.status, f"{p.done}/{p.total}",
                     sparkline(p.task_accuracy()), sparkline(p.turn_accuracy()),
                     "-" if h is None else (str(h) if measured else f">{h}"),
                     fmt_cost(p.cost, missing="-") if p.price is not None else "-",
                     f"{p.held_by} {wait:.1f}s" if wait > 0 else ""))
    return header, rows
