"""A probe's results as cells, a table and bars."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lhe_tui.reports.fitted_table import print_table
from lhe_tui.reports.report import fmt_pct

if TYPE_CHECKING:
    from rich.table import Table

PROBE_COLUMNS = ("error rate", "samples", "answer accuracy", "95% CI", "turn accuracy")


def probe_cells(r: Any) -> tuple[str, ...]:
    """One `probe_table` row as text, for `lhe-tui show` and the TUI's probe view."""
    return (f"{r.rate:g}", str(r.n), fmt_pct(r.accuracy), f"{fmt_pct(r.ci_low)} .. {fmt_pct(r.ci_high)}",
            fmt_pct(r.turn_accuracy))


def probe_table_view(rows: list) -> Table:
    from rich.table import Table

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
    from lhe_tui.runs.probe import probe_table

    rows = probe_table(db, session_id)
    print_table(probe_table_view(rows))
    print(probe_bars(rows))
