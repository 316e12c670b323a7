"""Plain-text reports for the terminal: run summary, sessions list, per-turn table. Same metric functions as the UI."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lhe_tui.core.lineage import Lineage
from lhe_tui.core.prices import NOT_REPORTED, ModelPrice, PriceTable, TokenTotals, fmt_cost, fmt_tokens
from lhe_tui.reports.fitted_table import Column, fitted_table

if TYPE_CHECKING:
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


"""Output that goes to no terminal (a pipe, a file) and no COLUMNS: as wide as this, so nothing is cut."""


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


def turn_accuracy_table(correct: list[list[bool]], update: list[list[bool]], every: int = 1, *,
                        status: list[str | None] | None = None, turns: int | None = None, k: int = 1,
                        step_rule: str = "own") -> Table:
    """Per-turn curves (task, turn and answer accuracy) with how many samples each point counts (a failed
    sample counts as wrong past its failure: lhe_tui.metrics._ragged); for K > 1 also the step (key) count
    each turn ends at. `update`: the turn-accuracy flags under `step_rule` (named in the caption)."""
    from lhe_tui.metrics import (  # numpy: when asked for
        answer_accuracy,
        sample_counts,
        task_accuracy,
        turn_accuracy,
    )

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


