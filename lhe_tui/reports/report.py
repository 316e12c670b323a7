"""Plain-text reports for the terminal: run summary, sessions list, per-turn table. Same metric functions as the UI."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len

from lhe_tui.core.prices import (NOT_REPORTED, ModelPrice, PriceTable, TokenTotals, cost_cell, fmt_cost,
                                 fmt_tokens)
from lhe_tui.core.lineage import Lineage, tree_order, tree_prefix

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lhe_tui.analysis.estimate import Forecast
    from lhe_tui.metrics import RunSummary


NO_DATA = "no data"
"""What every table says for a metric of a session with no answered turn (DESIGN §2): never 0%."""


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


PIPE_WIDTH = 200
"""Output that goes to no terminal (a pipe, a file) and no COLUMNS: as wide as this, so nothing is cut."""


def output_width(stream: Any = None) -> int:
    """The columns a report may use: $COLUMNS when set, else the terminal's width, else PIPE_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return int(columns)
    stream = sys.stdout if stream is None else stream
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        pass
    return PIPE_WIDTH


@dataclass(frozen=True)
class Column:
    """A report column. `keep`: the lower, the longer it stays when the table must narrow (0 never goes);
    `fold`: the narrowest it may wrap its text to instead (None: never wraps)."""

    name: str
    keep: int = 5
    right: bool = False
    fold: int | None = None


BORDER = 3   # a rich box column's padding and rule: " x |"


def natural_widths(columns: list[Column], rows: list[tuple[str, ...]]) -> list[int]:
    """Each column's width unwrapped: its widest cell line or its name."""
    return [max([cell_len(c.name)] + [max((cell_len(line) for line in str(row[i]).splitlines()), default=0)
                                      for row in rows]) for i, c in enumerate(columns)]


def fit_columns(columns: list[Column], rows: list[tuple[str, ...]], width: int) -> tuple[list[int], dict[int, int]]:
    """Which columns (indices, in order) a table `width` wide can show, and the widths the folding ones get.
    Folding columns narrow first (down to their `fold`), then columns go, the highest `keep` first."""
    natural = natural_widths(columns, rows)
    least = [n if c.fold is None else min(n, max(c.fold, cell_len(c.name))) for c, n in zip(columns, natural)]
    kept = list(range(len(columns)))

    def total(sizes: list[int]) -> int:
        return sum(sizes[i] for i in kept) + BORDER * len(kept) + 1

    while total(least) > width:      # columns go until the rest fit, the folding ones folded
        droppable = [i for i in kept if columns[i].keep > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].keep, i)))
    sizes = list(natural)
    over = total(sizes) - width
    while over > 0:                  # then the widest folding column narrows, one cell at a time
        foldable = [i for i in kept if sizes[i] > least[i]]
        if not foldable:
            break
        widest = max(foldable, key=lambda i: sizes[i])
        sizes[widest] -= 1
        over -= 1
    return kept, {i: sizes[i] for i in kept if sizes[i] < natural[i]}


def fitted_table(title: str, columns: list[Column], rows: list[tuple[str, ...]], *, width: int | None = None,
                 show_header: bool = True, styles: dict[str, str] | None = None) -> Table:
    """A rich Table of `rows` no wider than `width` (output_width()): folding columns wrap, columns the
    width cannot hold are left out and the caption names them."""
    width = output_width() if width is None else width
    kept, widths = fit_columns(columns, rows, width)
    from rich.table import Table  # (imported where used: `sessions` draws no rich table)

    table = Table(title=title, title_justify="left", show_header=show_header, caption_justify="left")
    for i in kept:
        c = columns[i]
        table.add_column(c.name, justify="right" if c.right else "left", no_wrap=c.fold is None,
                         overflow="fold", max_width=widths.get(i), style=(styles or {}).get(c.name))
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    table.caption = left_out_caption(columns, kept, width)
    return table


def left_out_caption(columns: list[Column], kept: list[int], width: int) -> str | None:
    dropped = [columns[i].name for i in range(len(columns)) if i not in kept]
    if not dropped:
        return None
    return f"left out to fit {width} columns: {', '.join(dropped)} (a wider terminal or COLUMNS=… shows them)"


def fitted_text(title: str, columns: list[Column], rows: list[tuple[str, ...]], *, width: int | None = None) -> str:
    """`fitted_table` drawn as plain text (cli.plain_table): the same columns, fitting and caption, for lists
    too long for rich to lay out quickly."""
    from lhe_tui.reports.plain_table import plain_table

    width = output_width() if width is None else width
    kept, folded = fit_columns(columns, rows, width)
    natural = natural_widths(columns, rows)
    sizes = [folded.get(i, natural[i]) for i in kept]
    over = sum(sizes) + BORDER * len(sizes) + 1 - width
    while over > 0 and max(sizes) > 1:    # the columns that never go still too wide: the widest folds
        sizes[sizes.index(max(sizes))] -= 1
        over -= 1
    return plain_table(title, [columns[i].name for i in kept], [columns[i].right for i in kept],
                       [tuple(row[i] for i in kept) for row in rows], sizes,
                       left_out_caption(columns, kept, width))


def cost_text(totals: TokenTotals, price: ModelPrice | None, prices: PriceTable | None = None) -> str:
    """A session's cost as shown: `$0.0123`, or why there is none (no tokens reported, no price for the model)."""
    if totals.tokens_in is None and totals.tokens_out is None:
        return NOT_REPORTED
    if price is None:
        return "no price for this model (tokens only)"
    text = fmt_cost(totals.cost(price))
    if totals.unreported:
        text += " (reported turns only)"
    if prices is not None and prices.as_of:
        text += f"  (prices as of {prices.as_of})"
    return text


def token_rows(totals: TokenTotals) -> list[tuple[str, str]]:
    rows = [("tokens in / out", f"{fmt_tokens(totals.tokens_in)} / {fmt_tokens(totals.tokens_out)}")]
    if totals.cached is not None or totals.cache_write is not None:
        rows.append(("cached input / cache writes", f"{fmt_tokens(totals.cached)} / {fmt_tokens(totals.cache_write)}"))
    if totals.reasoning is not None:
        rows.append(("reasoning tokens", fmt_tokens(totals.reasoning)))
    if totals.unreported and totals.turns:
        rows.append(("turns without token counts", f"{totals.unreported:,} of {totals.turns:,} (not reported)"))
    return rows


def summary_table(session: dict[str, Any], summary: RunSummary, tokens: TokenTotals, *,
                  prices: PriceTable | None = None, width: int | None = None) -> Table:
    label = session["provider_label"]
    protocol = session.get("protocol", "lenient")
    rows = summary_rows(session, summary, tokens, prices=prices)
    return fitted_table(f"session {session['id']}  ({label}, mode {session['mode']}, K={session['k']}, "
                        f"protocol {protocol})", [Column("what", keep=0, fold=16), Column("value", keep=0, fold=20)],
                        rows, width=width, show_header=False, styles={"what": "bold"})


def summary_rows(session: dict[str, Any], summary: RunSummary, tokens: TokenTotals, *,
                 prices: PriceTable | None = None) -> list[tuple[str, str]]:
    """(what, value): the rows of a session's summary, as `show` prints them (one column of `show grp-…`)."""
    protocol = session.get("protocol", "lenient")
    firsts = ", ".join(f"s{i}:{'-' if t is None else t}" for i, t in enumerate(summary.first_errors))
    status = [("status", session["status"] + (f" ({session['message']})" if session.get("message") else "")),
              ("protocol / prompt", f"{protocol} / {session.get('prompt', 'lhe-v1')}"),
              ("step rule", session.get("step_rule") or "own")]
    lineage = Lineage.from_row(session)
    if not lineage.is_plain:
        status.append(("lineage", lineage_text(lineage)))
    probe = probe_description(session)
    if probe is not None:   # a probe's turns are one per sample: horizons and first errors say nothing
        measured = [("probe", probe)]
    elif summary.no_data:   # every request failed: no number to show (not 0%)
        measured = [("samples x turns", f"{summary.n_samples} x {session.get('turns', '?')}"),
                    ("metrics", f"{NO_DATA}: no turn was answered")]
    else:
        measured = [("samples x turns", f"{summary.n_samples} x {summary.n_turns}"),
                    ("first error turn", firsts or "-"),
                    *fork_error_rows(session),
                    ("task accuracy at last turn", fmt_pct(summary.final_task_accuracy)),
                    ("mean answer accuracy (answer = gold)", fmt_pct(summary.mean_answer_accuracy)),
                    *summary_metric_rows(summary)]
    rows = [
        *status, *measured,
        *token_rows(tokens),
        ("cost", cost_text(tokens, prices.for_model(session.get("model")) if prices else None, prices)),
        ("wall time", "-" if session.get("wall_time_s") is None else f"{session['wall_time_s']:.1f} s"),
        ("session id", session["id"]),
    ]
    return rows


def group_summary_table(group_id: str, arms: list[tuple[str, list[tuple[str, str]]]], *,
                        width: int | None = None) -> Table:
    """`show grp-…`: one table, a row per summary line and a column per arm (`arms`: (arm name, its
    summary_rows)). A line one arm lacks (a fork's lineage) is '-' in the others."""
    labels: list[str] = []
    for _, rows in arms:
        labels += [what for what, _ in rows if what not in labels]
    values = [dict(rows) for _, rows in arms]
    columns = [Column("what", keep=0, fold=16)] + [Column(name, keep=1 + n, fold=12) for n, (name, _) in enumerate(arms)]
    cells = [(what, *(v.get(what, "-") for v in values)) for what in labels]
    return fitted_table(f"group {group_id}  ({len(arms)} arms over one task)", columns, cells, width=width,
                        styles={"what": "bold"})


def fork_error_rows(session: dict[str, Any]) -> list[tuple[str, str]]:
    """A fork's first error after its fork turn per sample, and how many turns on from the fork it came."""
    after = session.get("first_errors_after_fork")
    turn = session.get("fork_turn")
    if after is None or turn is None:
        return []
    cells = [f"s{i}:{'-' if t is None else f'{t} (+{t - turn})'}" for i, t in sorted(after.items())]
    return [(f"first error after turn {turn}", ", ".join(cells) or "-")]


def lineage_text(lineage: Lineage) -> str:
    """A fork's parent, turn and edit, an arm's group, in words (the summary's `lineage` row)."""
    parts = []
    if lineage.is_fork:
        samples = lineage.parent_samples
        which = f"; parent sample{'s' if len(samples) != 1 else ''} {', '.join(map(str, samples[:8]))}" + \
            ("..." if len(samples) > 8 else "") if samples else ""
        text = f"fork of {lineage.parent_id} at turn {lineage.fork_turn} (turns 1-{lineage.fork_turn} inherited{which})"
        if lineage.edit is not None:
            text += f"; {lineage.edit.describe()} at turn {lineage.fork_turn}"
        if lineage.parent_model:
            text += f"; inherited replies by {lineage.parent_model}"
        parts.append(text)
    if lineage.group_id is not None:
        parts.append(f"arm {lineage.arm} of group {lineage.group_id}")
    return "; ".join(parts)


def probe_description(session: dict[str, Any]) -> str | None:
    """What a target-turn probe session is, in words (None for a run)."""
    if session.get("kind") != "probe":
        return None
    config = session.get("config") or {}
    spec = (config.get("extra") or {}).get("probe") or {}
    target = spec.get("target_turn", session.get("turns"))
    rates = ", ".join(f"{r:g}" for r in spec.get("rates") or ())
    per_rate = spec.get("samples_per_rate")
    history = f"turns 1-{target - 1}" if isinstance(target, int) and target > 2 else "the turns before it"
    return (f"target-turn probe: the model answers turn {target} only, after a synthetic history of {history} "
            f"whose answers are each wrong with probability r; r = {rates or '?'}"
            + (f", {per_rate} sample{'s' if per_rate != 1 else ''} per rate" if per_rate else ""))


def summary_metric_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """The two fits of p and H_s; for K > 1 per turn and per step (key, derived), as docs/protocol.md defines."""
    s = summary.s
    never = f" (not below {s:g} within {summary.n_turns} turns)" if summary.horizon_measured is None else ""
    if not summary.in_steps:
        return [("mean turn accuracy", fmt_p(summary.mean_turn_accuracy)),
                ("p before the first error", fmt_p(summary.p_before_first_error)),
                (f"horizon H_{s:g} measured", fmt_horizon(summary.horizon_measured) + never),
                (f"horizon H_{s:g} theory ln({s:g})/ln(p before the first error)",
                 fmt_horizon(summary.horizon_theory))]
    k = summary.k
    return [("mean turn accuracy / step accuracy (derived)",
             f"{fmt_p(summary.mean_turn_accuracy)} / {fmt_p(summary.mean_step_accuracy)} (derived: p_turn^(1/{k}))"),
            ("p before the first error per turn / per step (derived)",
             f"{fmt_p(summary.p_before_first_error)} / {fmt_p(summary.p_step_before_first_error)}"),
            (f"horizon H_{s:g} measured, turns / steps", f"{fmt_horizon(summary.horizon_measured)} / "
             f"{fmt_horizon(summary.horizon_measured_steps)}" + never),
            (f"horizon H_{s:g} theory ln({s:g})/ln(p before the first error), turns / steps",
             f"{fmt_horizon(summary.horizon_theory)} / {fmt_horizon(summary.horizon_theory_steps)}")]


# The columns a reader looks for first come first: the TUI's table shows them at 80 columns, and the CLI's
# leaves out the later ones (the highest `keep` first) when the terminal is narrow.
SESSION_SPEC = (Column("id", keep=0), Column("status", keep=1), Column("task acc", keep=1, right=True),
                Column("H_0.5", keep=1, right=True), Column("provider/model", keep=2, fold=12),
                Column("turns", keep=3, right=True), Column("samples", keep=4, right=True),
                Column("K", keep=5, right=True), Column("created", keep=6), Column("protocol", keep=7))
SESSION_COLUMNS = tuple(c.name for c in SESSION_SPEC)
# The CLI's list adds the cost, the first column left out on a narrow terminal.
CLI_SESSION_SPEC = (*SESSION_SPEC, Column("cost", keep=8, right=True))


def session_cells(row: dict[str, Any], depth: int = 0) -> tuple[str, ...]:
    """`depth`: a fork's level under its parent (lhe_tui.core.lineage.tree_order): the id is indented. An arm
    of a group is named before its model (`arm inj: sim/sim-1`)."""
    model = f"{row['provider']}/{row['model']}" + (" (sim)" if row.get("simulated") else "")
    if row.get("group_id"):
        model = f"arm {row.get('arm')}: {model}"
    elif row.get("sweep_id"):
        model = f"run {row.get('sweep_run')}: {model}"
    kind = f" {probe_cell(row.get('probe_accuracy') or [], row.get('turns'))}" if row.get("kind") == "probe" else ""
    fork = f" @{row['fork_turn']}" if row.get("parent_id") and row.get("fork_turn") is not None else ""
    if row.get("answered", 1):
        accuracy, horizon_05 = fmt_pct(row.get("final_task_accuracy")), fmt_horizon(row.get("horizon_05"))
    else:
        accuracy = horizon_05 = NO_DATA
    return (tree_prefix(depth) + row["id"] + fork, row["status"], accuracy, horizon_05,
            model + kind, str(row["turns"]), str(row["n_samples"]), str(row["k"]),
            (row.get("created_at") or "")[:19].replace("T", " "), row.get("protocol") or "lenient")


def probe_cell(accuracy: list[tuple[float, int, float]], target: object) -> str:
    """A probe in a list: its target turn and its accuracy there at the lowest and highest history error rate."""
    if not accuracy:
        return f"probe @{target} (no answers)"
    (r0, _, a0), (r1, _, a1) = accuracy[0], accuracy[-1]
    ends = f"{fmt_pct(a0)} at r={r0:g}" + (f" → {fmt_pct(a1)} at r={r1:g}" if len(accuracy) > 1 else "")
    return f"probe @{target}: {ends}"


def sessions_table(rows: list[dict[str, Any]], *, width: int | None = None,
                   costs: dict[str, str] | None = None) -> str:
    """The session list as text (`fitted_text`: a store holds hundreds of sessions). `costs`: each session's cost cell (core.prices.cost_cell), as a column the fitting drops first. Forks are
    listed under their parents (tree_order), a group's arms together under a line naming the group and its
    arms (`grouped_rows`; issue 15)."""
    cells = []
    for entry, depth in grouped_rows(rows):
        if isinstance(entry, GroupLine):
            row_cells = group_cells(entry, depth)
            cost = "-"
        else:
            row_cells = session_cells(entry, depth)
            if entry.get("group_id") or entry.get("sweep_id"):
                row_cells = ("  " + row_cells[0], *row_cells[1:])
            cost = (costs or {}).get(entry["id"], "-")
        cells.append(row_cells if costs is None else (*row_cells, cost))
    return fitted_text("sessions", list(SESSION_SPEC if costs is None else CLI_SESSION_SPEC), cells, width=width)


@dataclass(frozen=True)
class GroupLine:
    """The line a group's arms are listed under: the group id and its arms (their list rows, in arm order)."""

    group_id: str
    arms: tuple[dict[str, Any], ...]

    @property
    def names(self) -> list[str]:
        return [str(row.get("arm") or row.get("sweep_run")) for row in self.arms]


def grouped_rows(rows: list[dict[str, Any]]) -> list[tuple[GroupLine | dict[str, Any], int]]:
    """(entry, depth): the rows with forks under their parents (depth: how far down), except that a group's
    arms (a sweep's runs) follow a GroupLine, all at the place (and depth) of its first arm in that order."""
    ordered = tree_order(rows)
    members: dict[str, list[dict[str, Any]]] = {}
    for row, _ in ordered:
        group = row.get("group_id") or row.get("sweep_id")
        if group:
            members.setdefault(group, []).append(row)
    for arms in members.values():   # the list is newest first; a group's arms go in the order they were given
        arms.reverse()
    out: list[tuple[GroupLine | dict[str, Any], int]] = []
    for row, depth in ordered:
        group = row.get("group_id") or row.get("sweep_id")
        if not group:
            out.append((row, depth))
        elif members.get(group) and row is members[group][-1]:    # the group's newest arm: its place
            out.append((GroupLine(group, tuple(members[group])), depth))
            out.extend((member, depth) for member in members[group])
    return out


def group_cells(line: GroupLine, depth: int = 0) -> tuple[str, ...]:
    """A group line's cells in SESSION_SPEC's columns: its id, its arms' status (one word when they agree),
    its arms' names and their shared task's shape."""
    first = line.arms[0]
    statuses = sorted({str(row.get("status")) for row in line.arms})
    status = statuses[0] if len(statuses) == 1 else "/".join(statuses)
    what = (f"sweep of {len(line.arms)} runs" if line.group_id.startswith("swp-")
            else f"group of {len(line.arms)} arms: {', '.join(line.names)}")
    return (tree_prefix(depth) + line.group_id, status, "", "", what,
            str(first.get("turns")), str(first.get("n_samples")), str(first.get("k")),
            (first.get("created_at") or "")[:19].replace("T", " "), "")


def turn_accuracy_table(correct: list[list[bool]], update: list[list[bool]], every: int = 1, *,
                        status: list[str | None] | None = None, turns: int | None = None, k: int = 1,
                        step_rule: str = "own") -> Table:
    """Per-turn curves (task, turn and answer accuracy) with how many samples each point counts (a failed
    sample counts as wrong past its failure: lhe_tui.metrics._ragged); for K > 1 also the step (key) count
    each turn ends at. `update`: the turn-accuracy flags under `step_rule` (named in the caption)."""
    from lhe_tui.metrics import answer_accuracy, sample_counts, task_accuracy, turn_accuracy   # numpy: when asked for

    ragged = dict(status=status, turns=turns)
    turn_curve, answer_curve = turn_accuracy(update, **ragged), answer_accuracy(correct, **ragged)
    task_curve, counts = task_accuracy(correct, **ragged), sample_counts(correct, **ragged)
    from rich.table import Table

    table = Table(title="per-turn accuracy across samples", title_justify="left", caption_justify="left")
    notes = [f"turn acc: the update from the previous turn is right (step rule {step_rule}); answer acc: "
             "answer = gold (secondary)"]
    if every > 1 and len(turn_curve) > 2:
        notes.append(f"one row every {every} turns of {len(turn_curve)} (and the first and last); "
                     f"--all or --every N for more")
    table.caption = "\n".join(notes)
    columns = ("turn", *(("steps",) if k > 1 else ()), "samples", "task acc", "turn acc", "answer acc")
    for column in columns:
        table.add_column(column, justify="right")
    for index, (ka, ta, aa, n) in enumerate(zip(task_curve, turn_curve, answer_curve, counts)):
        turn = index + 1
        if turn != 1 and turn % every and turn != len(turn_curve):
            continue
        steps = (str(turn * k),) if k > 1 else ()
        table.add_row(str(turn), *steps, str(n), fmt_pct(ka), fmt_pct(ta), fmt_pct(aa))
    return table


def turn_detail_lines(session_id: str, r: Any) -> list[str]:
    """One stored turn (a TurnRecord) as text: what it asked, what came back, how it was scored."""
    answer = "no valid answer" if r.model_answer is None else str(r.model_answer)
    shown = "" if r.history_answer == r.model_answer else f"; its history shows {r.history_answer}" + \
        (" (injected)" if r.injected else "")
    lines = [f"session {session_id} sample {r.sample} turn {r.turn}" + (" (inherited from the parent)" if r.inherited else ""),
             f"keys: {', '.join(r.keys)} = {' + '.join(map(str, r.key_values))} = {r.turn_sum}",
             f"answer: {answer} ({r.answer_status}); gold {r.gold_sum}: {'right' if r.correct else 'wrong'}{shown}",
             f"update: {r.seen_previous} + {r.turn_sum} = {r.expected_step}: {'right' if r.step_correct else 'wrong'}",
             f"latency {r.latency_s:.2f} s, retries {r.retries}, tokens in/out "
             f"{'-' if r.tokens_in is None else r.tokens_in}/{'-' if r.tokens_out is None else r.tokens_out}"]
    if r.reasoning:
        lines += ["reasoning:", *(f"  {line}" for line in r.reasoning.splitlines())]
    lines += ["reply:", *(f"  {line}" for line in (r.raw_reply or "(empty)").splitlines())]
    return lines


def print_table(table: Table, console: Console | None = None) -> None:
    from rich.console import Console

    (console or Console(soft_wrap=False, width=output_width())).print(table)


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


def _ratio(actual: float | None, forecast: float | None) -> str:
    if actual is None or not forecast:
        return "-"
    return f"{actual / forecast:.2f}"


def forecast_table(forecast: Forecast, totals: TokenTotals, *, width: int | None = None) -> Table:
    """`show`: the forecast `run --estimate` makes for the stored config beside the stored (actual) counts."""
    def count(value: int | None) -> str:
        return fmt_tokens(value)

    cached_forecast = f"{forecast.cached_tokens:,}" if forecast.caches else "none"
    cost_forecast = forecast.cost_cached if forecast.caches else forecast.cost_uncached
    actual_cost = totals.cost(forecast.price)
    rows = [("requests (turns)", f"{forecast.requests:,}", f"{totals.turns:,}", _ratio(totals.turns, forecast.requests)),
            ("input tokens", f"{forecast.input_tokens:,}", count(totals.tokens_in),
             _ratio(totals.tokens_in, forecast.input_tokens)),
            ("cached input", cached_forecast, count(totals.cached),
             _ratio(totals.cached, forecast.cached_tokens if forecast.caches else None)),
            ("output tokens", f"{forecast.output_tokens:,}", count(totals.tokens_out),
             _ratio(totals.tokens_out, forecast.output_tokens)),
            ("cost", fmt_cost(cost_forecast), fmt_cost(actual_cost, missing=NOT_REPORTED if forecast.price else
                                                         "no price"), _ratio(actual_cost, cost_forecast))]
    notes = [f"characters / 4; {forecast.reply_tokens:,} output tokens a reply (the mode's default)"]
    if totals.turns < forecast.requests:
        notes.append(f"the run stored {totals.turns:,} of its {forecast.requests:,} turns: the forecast is the whole run's")
    if totals.tokens_in is None and totals.tokens_out is None:
        notes.append("the server reported no token counts")
    elif totals.unreported:
        notes.append(f"{totals.unreported:,} turns' counts not reported")
    return fitted_table(f"forecast vs actual ({'; '.join(notes)})",
                        [Column("what", keep=0, fold=12), Column("forecast", keep=0), Column("actual", keep=0),
                         Column("actual/forecast", keep=1)], rows, width=width, styles={"what": "bold"})


# ---------------------------------------------------------------------------- paired arms (issue 15)


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
