"""Comparison tables: sessions side by side (compare), a group's arms paired turn by turn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lhe_tui.reports.fitted_table import Column, fitted_table, print_table
from lhe_tui.reports.report import fmt_pct

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


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


def compare_table(rows: list[dict[str, Any]], *, width: int | None = None) -> Table:
    def keep(column: str) -> int:
        if column == "session":
            return 0
        if column in ("H_0.5", "p<1st err", "label"):
            return 1
        if column.startswith("@"):
            return 2 + list(rows[0]).index(column)   # the later turns go first
        return 50
    columns = [Column(name, keep=keep(name), right=name not in ("session", "label"),
                      fold=16 if name == "label" else None) for name in rows[0]]
    return fitted_table("compare sessions", columns, [compare_cells(row) for row in rows], width=width)


def fmt_pp(value: float | None) -> str:
    """A difference of two accuracies, in percentage points."""
    return "-" if value is None else f"{100 * value:+.1f} pp"


def fmt_ci(low: float | None, high: float | None, scale: float = 100.0, unit: str = "") -> str:
    if low is None or high is None:
        return "-"
    return f"[{scale * low:+.1f}, {scale * high:+.1f}]{unit}"


def paired_turn_table(pc: Any, *, width: int | None = None) -> Table:
    """Per reported turn: each arm's turn and task accuracy over the pairs counted, B - A with its paired
    bootstrap interval, and how many samples are right in one arm only."""
    a, b = pc.name_a, pc.name_b
    columns = [Column("turn", keep=0, right=True), Column("pairs", keep=4, right=True),
               Column(f"turn acc {a}/{b}", keep=3, right=True), Column("Δ turn acc", keep=0, right=True),
               Column("95% CI", keep=0, right=True), Column("differ", keep=5, right=True),
               Column(f"task acc {a}/{b}", keep=3, right=True), Column("Δ task acc", keep=1, right=True),
               Column("95% CI ", keep=1, right=True)]
    rows = []
    for t, tk in zip(pc.turn, pc.task):
        rows.append((str(t.turn), str(t.n), f"{fmt_pct(t.a)}/{fmt_pct(t.b)}", fmt_pp(t.diff), fmt_ci(t.low, t.high),
                     str(t.n_differ), f"{fmt_pct(tk.a)}/{fmt_pct(tk.b)}", fmt_pp(tk.diff), fmt_ci(tk.low, tk.high)))
    title = (f"paired difference {b} - {a} over the same {pc.n_samples} samples (same keys); "
             f"{100 * pc.level:g}% paired bootstrap CI, {pc.n_boot} resamples, seed {pc.seed}")
    return fitted_table(title, columns, rows, width=width)


def paired_summary_table(pc: Any, *, width: int | None = None) -> Table:
    """Mean first-error turn and horizon H_0.5 of each arm, B - A and its paired interval."""
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}" if value != int(value) else str(int(value))

    fe, h = pc.first_error, pc.horizon
    never = " (an arm never drops below 0.5)" if h.diff is None else ""
    rows = [("mean first-error turn", num(fe.a), num(fe.b), "-" if fe.diff is None else f"{fe.diff:+.1f}",
             fmt_ci(fe.low, fe.high, 1.0), f"{fe.n} samples (no error: counted after the last turn)"),
            ("horizon H_0.5", num(h.a), num(h.b), "-" if h.diff is None else f"{h.diff:+.0f}",
             fmt_ci(h.low, h.high, 1.0), "turns" + never),
            ("first turn the arms differ", "", "", "-" if pc.first_divergence is None else str(pc.first_divergence),
             "", "some sample right in one arm only")]
    after = pc.first_error_after
    if after is not None:   # a fork and its parent are not arms: say it in a fork's words
        rows[-1] = ("first turn fork and parent differ", *rows[-1][1:5], "some sample right in one of them only")
    if after is not None:   # a fork against its parent: how far each went past the fork turn
        rows.insert(1, (f"mean first error after turn {pc.after}", num(after.a), num(after.b),
                        "-" if after.diff is None else f"{after.diff:+.1f}", fmt_ci(after.low, after.high, 1.0),
                        f"{after.n} samples (no error: counted after the last turn)"))
    columns = [Column("what", keep=0), Column(pc.name_a, keep=1, right=True), Column(pc.name_b, keep=1, right=True),
               Column(f"{pc.name_b} - {pc.name_a}", keep=0, right=True), Column("95% CI", keep=0, right=True),
               Column("note", keep=5, fold=20)]
    return fitted_table(f"{pc.name_b} vs {pc.name_a}", columns, rows, width=width)


def print_group_comparison(db: Any, arms: list[tuple[str, str]], turns: list[int] | None = None,
                           console: Console | None = None, after: int | None = None,
                           step_rule: str | None = None) -> None:
    """`compare` of a group (and the end of a headless group run): the arms' compare table, then the first arm
    against each other with paired bootstrap intervals."""
    from dataclasses import replace

    from lhe_tui.analysis.compare import compare_rows, default_turns, no_data_note, pair_comparisons, session_curves

    curves = [session_curves(db, sid, step_rule=step_rule) for _, sid in arms]
    curves = [replace(c, label=f"{name}: {c.label}") for (name, _), c in zip(arms, curves)]
    note = no_data_note([c for c in curves if c.no_data])   # no answered turn: no numbers to compare
    arms = [arm for arm, c in zip(arms, curves) if not c.no_data]
    curves = [c for c in curves if not c.no_data]
    if note:
        from rich.console import Console

        (console or Console()).print(note, highlight=False)
    if not curves:
        return
    shown = turns or default_turns(max(c.n_turns for c in curves))
    print_table(compare_table(compare_rows(curves, shown, cost=True)), console)
    for pc in (pair_comparisons(db, arms, shown, after=after, step_rule=step_rule) if len(arms) > 1 else []):
        print_table(paired_turn_table(pc), console)
        print_table(paired_summary_table(pc), console)
