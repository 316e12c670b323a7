"""Plain-text reports for the terminal: run summary, sessions list, per-turn table. Same metric functions as the UI."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lhe_tui.metrics import RunSummary


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def fmt_p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt_horizon(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.1f}"
    return str(value)


def summary_table(session: dict[str, Any], summary: RunSummary, tokens: tuple[int, int]) -> Table:
    label = session["provider_label"]
    protocol = session.get("protocol", "lenient")
    table = Table(title=f"session {session['id']}  ({label}, mode {session['mode']}, K={session['k']}, "
                        f"protocol {protocol})",
                  show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    firsts = ", ".join(f"s{i}:{'-' if t is None else t}" for i, t in enumerate(summary.first_errors))
    rows = [
        ("status", session["status"] + (f" ({session['message']})" if session.get("message") else "")),
        ("protocol / prompt", f"{protocol} / {session.get('prompt', 'lhe-v1')}"),
        ("samples x turns", f"{summary.n_samples} x {summary.n_turns}"),
        ("first error turn", firsts or "-"),
        ("mean turn accuracy", fmt_pct(summary.mean_turn_accuracy)),
        ("task accuracy at last turn", fmt_pct(summary.final_task_accuracy)),
        *summary_metric_rows(summary),
        ("tokens in / out", f"{tokens[0]:,} / {tokens[1]:,}"),
        ("wall time", "-" if session.get("wall_time_s") is None else f"{session['wall_time_s']:.1f} s"),
        ("session id", session["id"]),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def summary_metric_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Fitted p and H_s; for K > 1 per turn and per step (key), as docs/protocol.md defines."""
    s = summary.s
    never = f" (not below {s:g} within {summary.n_turns} turns)" if summary.horizon_measured is None else ""
    if not summary.in_steps:
        return [("fitted step accuracy p", fmt_p(summary.fitted_p)),
                (f"horizon H_{s:g} measured", fmt_horizon(summary.horizon_measured) + never),
                (f"horizon H_{s:g} theory ln({s:g})/ln(p)", fmt_horizon(summary.horizon_theory))]
    k = summary.k
    return [("fitted step accuracy p per turn / per step", f"{fmt_p(summary.fitted_p)} / {fmt_p(summary.fitted_p_step)}"
             f" (p_step = p_turn^(1/{k}))"),
            (f"horizon H_{s:g} measured, turns / steps", f"{fmt_horizon(summary.horizon_measured)} / "
             f"{fmt_horizon(summary.horizon_measured_steps)}" + never),
            (f"horizon H_{s:g} theory ln({s:g})/ln(p), turns / steps",
             f"{fmt_horizon(summary.horizon_theory)} / {fmt_horizon(summary.horizon_theory_steps)}")]


SESSION_COLUMNS = ("id", "created", "provider/model", "K", "turns", "samples", "status", "task acc", "H_0.5",
                   "protocol")


def session_cells(row: dict[str, Any]) -> tuple[str, ...]:
    model = f"{row['provider']}/{row['model']}" + (" (sim)" if row.get("simulated") else "")
    kind = " probe" if row.get("kind") == "probe" else ""
    return (row["id"], (row.get("created_at") or "")[:19].replace("T", " "), model + kind, str(row["k"]),
            str(row["turns"]), str(row["n_samples"]), row["status"], fmt_pct(row.get("final_task_accuracy")),
            fmt_horizon(row.get("horizon_05")), row.get("protocol") or "lenient")


def sessions_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="sessions", title_justify="left")
    for column in SESSION_COLUMNS:
        table.add_column(column, no_wrap=column == "id")
    for row in rows:
        table.add_row(*session_cells(row))
    return table


def turn_accuracy_table(correct: list[list[bool]], step: list[list[bool]], every: int = 1, *,
                        status: list[str | None] | None = None, turns: int | None = None, k: int = 1) -> Table:
    """Per-turn curves with how many samples each point counts (a failed sample counts as wrong past its
    failure: lhe_tui.metrics._ragged); for K > 1 also the step (key) count each turn ends at."""
    from lhe_tui.metrics import sample_counts, step_accuracy, task_accuracy, turn_accuracy   # numpy: when asked for

    ragged = dict(status=status, turns=turns)
    turn_curve, step_curve = turn_accuracy(correct, **ragged), step_accuracy(step, **ragged)
    task_curve, counts = task_accuracy(correct, **ragged), sample_counts(correct, **ragged)
    table = Table(title="per-turn accuracy across samples", title_justify="left")
    columns = ("turn", *(("steps",) if k > 1 else ()), "samples", "turn acc", "step acc", "task acc")
    for column in columns:
        table.add_column(column, justify="right")
    for index, (ta, sa, ka, n) in enumerate(zip(turn_curve, step_curve, task_curve, counts)):
        turn = index + 1
        if turn != 1 and turn % every and turn != len(turn_curve):
            continue
        steps = (str(turn * k),) if k > 1 else ()
        table.add_row(str(turn), *steps, str(n), fmt_pct(ta), fmt_pct(sa), fmt_pct(ka))
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    (console or Console(soft_wrap=False, width=200)).print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "/".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.2f}" if value <= 1.0 else f"{value:g}"
    return str(value)


def compare_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One `compare_rows` row as the text `lhe-tui compare` prints (the TUI's compare table shows the same)."""
    return tuple(_cell(v) for v in row.values())


def compare_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="compare sessions", title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="left" if column in ("session", "label") else "right",
                         no_wrap=column == "session")
    for row in rows:
        table.add_row(*compare_cells(row))
    return table


PROBE_COLUMNS = ("error rate", "samples", "turn accuracy", "95% CI", "step accuracy")


def probe_cells(r: Any) -> tuple[str, ...]:
    """One `probe_table` row as text, for `lhe-tui show` and the TUI's probe view."""
    return (f"{r.rate:g}", str(r.n), fmt_pct(r.accuracy), f"{fmt_pct(r.ci_low)} .. {fmt_pct(r.ci_high)}",
            fmt_pct(r.step_accuracy))


def probe_table_view(rows: list) -> Table:
    table = Table(title="probe: accuracy at the target turn per history error rate", title_justify="left")
    for column in PROBE_COLUMNS:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(*probe_cells(r))
    return table


def probe_bars(rows: list, width: int = 40) -> str:
    """A text bar chart of accuracy per rate, for terminals without the TUI."""
    lines = []
    for r in rows:
        filled = round((r.accuracy or 0.0) * width)
        lines.append(f"r={r.rate:<5g} |{'#' * filled}{' ' * (width - filled)}| {fmt_pct(r.accuracy)}")
    return "\n".join(lines)


def probe_report(db: Any, session_id: str) -> None:
    from lhe_tui.probe import probe_table

    rows = probe_table(db, session_id)
    print_table(probe_table_view(rows))
    print(probe_bars(rows))
