"""The notebook API: read a session store from Python, as plain records or pandas DataFrames.

A small, stable surface (see docs/analysis.md for a walkthrough)::

    from lhe_tui.reports import api
    store = api.open_store("sessions/lhe.db")     # read-only is enough
    api.sessions(store)                           # [SessionInfo, ...]
    api.turns(store, "latest")                    # [TurnRow, ...]
    api.curves(store, "latest")                   # [CurvePoint, ...]: per turn, with n and 95% bootstrap CIs
    api.summary(store, "latest")                  # Summary: H_0.5, the two fits of p, ... (turns and steps)
    api.tokens(store, "latest")                   # [SessionTokens]: token counts and cost (also by sample)
    api.curves_frame(store, "latest")             # the same as a pandas DataFrame (pandas is optional)
    api.sweep_frame(store, "swp-…")               # a sweep: one row per run, its axes as columns

Metric names are the paper's (DESIGN §2): turn accuracy is the update accuracy under the session's step rule
(`step_rule=` changes it: own, reference-live, reference-final), answer accuracy is answer == gold (the
reference code's index accuracy), task accuracy is every answer 1..t right; step accuracy for K > 1 is only
the derived p ** (1/K). docs/protocol.md lists the old field names and what they became.

Session ids may be given in full, by their start or end, or as `latest` (as on the command line). Records
are frozen dataclasses; `as_dicts(records)` makes plain dicts of them. The curves are computed by the same
metric functions, with the same ragged-sample rule (per-sample status), as `lhe-tui show`, `compare`, the
TUI, and `lhe-tui export --curves`, which writes exactly these records: a curve CSV read back gives equal
numbers. No Textual; pandas is imported only by the `*_frame` functions.

Token counts a server did not report are None in the records and missing (<NA>) in the DataFrames, never 0;
costs come from the price files (lhe_tui.core.prices, as `lhe-tui show` prices them) and are None for a model
with no price.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import LheError
from lhe_tui.core.prices import load_prices
from lhe_tui.store.database import DEFAULT_DB, open_database
from lhe_tui.store.queries import (flags_by_sample, list_sessions, load_events, load_session, load_turns,
                                   resolve_session_id, session_flags, session_step_rule, session_token_totals,
                                   token_totals_by_sample)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlite_utils import Database

    from lhe_tui.core.prices import ModelPrice, PriceTable, TokenTotals
    from lhe_tui.store.queries import SessionFlags

__all__ = [
    "N_BOOT", "LEVEL", "SEED", "SessionInfo", "TurnRow", "CurvePoint", "Summary", "SessionTokens",
    "open_store", "close_store", "sessions", "session", "arms", "probe", "turns", "events", "curves", "curve_points", "summary",
    "tokens", "as_dicts", "sessions_frame", "turns_frame", "curves_frame", "tokens_frame", "NoTurnsError",
    "sweep", "sweep_frame",
]

N_BOOT = 1000
"""Bootstrap resamples behind the curves' confidence bounds (whole samples, with replacement)."""
LEVEL = 0.95
"""The bounds' confidence level (percentile bootstrap)."""
SEED = 0
"""The bootstrap's seed: the same session gives the same bounds every time."""


class NoTurnsError(LheError):
    """The session has no stored turn, so it has no curves (one line; the CLI exits non-zero)."""


# ---- records -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionInfo:
    """One stored session, as `lhe-tui sessions` lists it."""

    id: str
    kind: str                          # "run" or "probe" (target-turn probe)
    status: str | None                 # finished, running, stopped, failed, interrupted, crashed (writer gone)
    provider: str                      # sim, openai, anthropic, local, ...
    model: str
    simulated: bool                    # True for the built-in simulated model (sim)
    mode: str                          # direct, cot or thinking
    k: int                             # keys per turn (turn complexity); a turn is k steps
    turns: int                         # configured turns per sample
    n_samples: int                     # configured samples
    seed: int | None                   # dataset seed
    created_at: str | None             # ISO time
    ended_at: str | None
    final_task_accuracy: float | None  # stored headline metrics (as of the run's end)
    horizon_05: int | None             # H_0.5 in turns
    mean_turn_accuracy: float | None   # stored mean turn accuracy (the store's `fitted_p` column)
    protocol: str                      # paper or lenient (docs/protocol.md)
    prompt: str                        # prompt template name (or path)
    has_data: bool = True              # some turn was answered; False: no metrics (None / NaN above), "no data"
    group_id: str | None = None        # the group (grp-…) whose arm this session is, or None
    arm: str | None = None             # its arm's name in that group
    parent_id: str | None = None       # a fork's parent session, or None
    fork_turn: int | None = None       # the turn a fork was made at (turns 1..fork_turn inherited)


@dataclass(frozen=True)
class TurnRow:
    """One answered turn of one sample (the store's `turns` table)."""

    session_id: str
    sample: int                        # 0-based sample index
    turn: int                          # 1-based turn
    steps: int                         # keys answered by the end of this turn: turn * K
    keys: tuple[str, ...]              # this turn's K keys
    key_values: tuple[int, ...]        # their values
    turn_sum: int                      # sum of this turn's values
    gold_sum: int                      # the correct running sum after this turn
    model_answer: int | None           # the parsed answer; None for a format miss or an invalid answer
    answer_status: str                 # ok, format (no tag), invalid (not an integer), ...
    answer_correct: bool               # answer accuracy: model_answer == gold_sum
    turn_correct: bool                 # turn accuracy: the update from the previous turn is right (step rule)
    seen_previous: int | None          # the own rule's base: the last answer the history showed (+ missed keys)
    expected_update: int | None        # seen_previous + this turn's sum: what the own rule checks against
    history_answer: int | None         # the answer the model sees for this turn next (injections change it)
    injected: bool                     # this turn's answer was replaced in the history
    inherited: bool                    # a fork's turn copied from its parent (paid for there: `tokens` skips it)
    tokens_in: int | None              # all the input, cached and cache writes included; None: not reported
    tokens_out: int | None             # all the output, reasoning included
    tokens_cached: int | None          # of tokens_in, read from the prompt cache (None: not reported)
    tokens_cache_write: int | None     # of tokens_in, written to the cache (Anthropic; None: not reported)
    tokens_reasoning: int | None       # of tokens_out, reasoning (None: not reported)
    cost_usd: float | None             # from the price files; None: no price for the model, or no counts
    latency_s: float | None
    retries: int | None                # transient provider errors retried for this turn
    raw_reply: str | None              # the model's reply, verbatim
    reasoning: str | None              # reasoning text (thinking mode / <think> blocks), not sent back
    empty_retries: int = 0             # paper protocol: times an empty reply was asked for again
    provider_error: str | None = None  # answer_status "failed": why the request failed (no reply); else None


@dataclass(frozen=True)
class CurvePoint:
    """One turn of a session's accuracy curves (means over the samples that count at the turn).

    A sample counts at every turn it finished; a failed one also counts, as wrong, up to the run's frontier;
    a stopped or running one is not counted past its last turn (docs/protocol.md, "Ragged samples"). The
    bounds are a percentile bootstrap over whole samples (N_BOOT resamples, LEVEL, SEED)."""

    session_id: str
    turn: int                          # 1-based turn
    steps: int                         # keys answered by the end of the turn: turn * K (= turn when K = 1)
    n: int                             # samples the turn and answer points count
    task_n: int                        # samples the task point counts: n, and the samples ended early by
                                       # --until after an error (wrong in task accuracy from then on)
    task_accuracy: float               # share with every answer 1..turn correct
    task_ci_low: float
    task_ci_high: float
    turn_accuracy: float               # share whose update from the previous turn is right (the step rule)
    turn_ci_low: float
    turn_ci_high: float
    answer_accuracy: float             # share whose answer at this turn is the gold sum (secondary)
    answer_ci_low: float
    answer_ci_high: float


@dataclass(frozen=True)
class Summary:
    """A session's headline numbers, per turn and (K > 1) per step; docs/protocol.md defines them."""

    session_id: str
    s: float                           # the success threshold of the horizon (0.5)
    k: int                             # keys per turn
    samples: int
    turns: int                         # the curves' length: most turns any sample counts at
    step_rule: str                     # the step rule the turn accuracy was scored under
    mean_answer_accuracy: float | None  # answer == gold, pooled over every counted turn of every sample
    final_task_accuracy: float | None  # the task curve at its last turn
    mean_turn_accuracy: float | None   # fit 1: the mean of every update flag (turns after first errors too)
    p_before_first_error: float | None  # fit 2: 1 - first errors / turns at risk (the theory's p)
    p_before_first_error_ci_low: float | None   # its percentile bootstrap bounds (N_BOOT, LEVEL, SEED)
    p_before_first_error_ci_high: float | None
    mean_step_accuracy_derived: float | None       # mean_turn_accuracy ** (1 / k) (= it when k = 1)
    p_step_before_first_error_derived: float | None  # p_before_first_error ** (1 / k)
    horizon_measured_turns: int | None     # H_s: first turn the task curve is below s; None = never
    horizon_measured_steps: int | None     # the same in steps: * k
    horizon_theory_turns: float | None     # ln(s) / ln(p_before_first_error) (inf when p = 1)
    horizon_theory_steps: float | None     # ln(s) / ln(p_step_before_first_error_derived)
    first_errors: tuple[int | None, ...]   # per sample, the first wrong turn (None: none yet)
    no_data: bool = False                  # no turn was answered: every number above is None


@dataclass(frozen=True)
class SessionTokens:
    """A session's (or one sample's) summed token counts and cost, over the turns it played: a fork's
    inherited turns are its parent's. A sum is None when no turn reported that count (never 0)."""

    session_id: str
    sample: int | None                 # None: the whole session
    model: str
    turns: int                         # turns summed
    tokens_in: int | None
    tokens_out: int | None
    tokens_cached: int | None
    tokens_cache_write: int | None
    tokens_reasoning: int | None
    turns_not_reported: int            # turns whose input or output count the server did not report
    cost_usd: float | None             # the reported counts priced; None: no price for the model, or no counts


# ---- store and sessions --------------------------------------------------------------------------------
def open_store(path: str | Path = DEFAULT_DB) -> Database:
    """Open an existing store for reading (never created, never migrated when it cannot be written: a
    read-only folder is fine). A missing or damaged file raises lhe_tui.common.errors.StoreError (one line)."""
    return open_database(path, create=False, write=False)


def close_store(store: Database) -> None:
    """Close the store's connection."""
    store.conn.close()


def _id(store: Database, session_id: str) -> str:
    return resolve_session_id(store, session_id)


def sessions(store: Database) -> list[SessionInfo]:
    """Every session of the store, newest first (as `lhe-tui sessions` and the TUI list them)."""
    names = [f.name for f in fields(SessionInfo)]
    return [SessionInfo(**{**{name: row.get(name) for name in names}, "simulated": bool(row.get("simulated")),
                           "mean_turn_accuracy": row.get("fitted_p"), **_metrics_of(row)})
            for row in list_sessions(store)]


def _metrics_of(row: dict[str, Any]) -> dict[str, Any]:
    """A listed session's metrics: None for one with no answered turn (whatever an older lhe-tui stored)."""
    if row.get("answered", 1):
        return {"has_data": True}
    return {"has_data": False, "final_task_accuracy": None, "horizon_05": None, "mean_turn_accuracy": None}


def session(store: Database, session_id: str) -> dict[str, Any]:
    """One session's stored row as a dict, with `config` (the full run config, `prompt` and `prompt_text`
    included), `dictionary` (word -> value), `protocol` and `prompt`."""
    return load_session(store, _id(store, session_id))


def turns(store: Database, session_id: str, *, prices: PriceTable | None = None,
          step_rule: str | None = None) -> list[TurnRow]:
    """Every stored turn of the session, by sample then turn, each priced (`prices`: default the price files,
    lhe_tui.core.prices.load_prices); `turn_correct` under `step_rule` (None: the session's)."""
    sid = _id(store, session_id)
    k = _k(store, sid)
    price = _price(store, sid, prices)
    records = load_turns(store, sid)
    rule = step_rule if step_rule is not None else session_step_rule(store, sid)
    update = iter([flag for sample in flags_by_sample(store, sid, step_rule=rule)[1] for flag in sample])
    return [TurnRow(session_id=sid, sample=r.sample, turn=r.turn, steps=r.turn * k, keys=r.keys,
                    key_values=r.key_values, turn_sum=r.turn_sum, gold_sum=r.gold_sum, model_answer=r.model_answer,
                    answer_status=r.answer_status, answer_correct=r.correct, turn_correct=next(update),
                    seen_previous=r.seen_previous, expected_update=r.expected_step, history_answer=r.history_answer,
                    injected=r.injected, inherited=r.inherited, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                    tokens_cached=r.tokens_cached, tokens_cache_write=r.tokens_cache_write,
                    tokens_reasoning=r.tokens_reasoning,
                    cost_usd=None if price is None else price.cost(r.tokens_in, r.tokens_out, r.tokens_cached,
                                                                     r.tokens_cache_write),
                    latency_s=r.latency_s, retries=r.retries, raw_reply=r.raw_reply, reasoning=r.reasoning,
                    empty_retries=r.empty_retries, provider_error=r.provider_error)
            for r in records]


def _model(store: Database, session_id: str) -> str:
    row = store.execute("SELECT model FROM sessions WHERE id = ?", [session_id]).fetchone()
    return (row[0] if row else "") or ""


def _price(store: Database, session_id: str, prices: PriceTable | None) -> ModelPrice | None:
    return (prices if prices is not None else load_prices()).for_model(_model(store, session_id))


def _session_tokens(session_id: str, sample: int | None, model: str, totals: TokenTotals,
                    price: ModelPrice | None) -> SessionTokens:
    return SessionTokens(session_id=session_id, sample=sample, model=model, turns=totals.turns,
                         tokens_in=totals.tokens_in, tokens_out=totals.tokens_out, tokens_cached=totals.cached,
                         tokens_cache_write=totals.cache_write, tokens_reasoning=totals.reasoning,
                         turns_not_reported=totals.unreported, cost_usd=totals.cost(price))


def tokens(store: Database, session_id: str | None = None, *, by_sample: bool = False,
           prices: PriceTable | None = None) -> list[SessionTokens]:
    """Token counts and cost per session (every session of the store when `session_id` is None), or per
    sample of it (`by_sample`; samples with no played turn are left out), summed by the same query as
    `lhe-tui show` and `sessions` (lhe_tui.store.queries.session_token_totals) and priced from `prices`
    (default: the price files)."""
    table = prices if prices is not None else load_prices()
    ids = [info.id for info in sessions(store)] if session_id is None else [_id(store, session_id)]
    out = []
    for sid in ids:
        model = _model(store, sid)
        price = table.for_model(model)
        if by_sample:
            out += [_session_tokens(sid, sample, model, totals, price)
                    for sample, totals in sorted(token_totals_by_sample(store, sid).items())]
        else:
            out.append(_session_tokens(sid, None, model, session_token_totals(store, sid), price))
    return out


def _k(store: Database, session_id: str) -> int:
    row = store.execute("SELECT k FROM sessions WHERE id = ?", [session_id]).fetchone()
    return max(1, (row[0] if row else 1) or 1)


def events(store: Database, session_id: str) -> list[dict[str, Any]]:
    """The session's events (injections, retries, pauses, errors, ...) in order: id, sample, turn, kind,
    `payload` (a dict), `at` (epoch seconds) and `created_at`."""
    sid = _id(store, session_id)
    return [{k: v for k, v in row.items() if k != "session_id"} for row in load_events(store, sid)]


# ---- curves and summary --------------------------------------------------------------------------------
def curve_points(session_id: str, flags: SessionFlags, *, n_boot: int = N_BOOT, seed: int = SEED,
                 level: float = LEVEL) -> list[CurvePoint]:
    """The per-turn curves of stored flags (lhe_tui.store.queries.session_flags): the one function behind
    `curves` and `lhe-tui export --curves`."""
    from lhe_tui.metrics import answer_accuracy, bootstrap_ci, sample_counts, task_accuracy, turn_accuracy

    ragged = dict(status=flags.status, turns=flags.turns)
    boot = dict(n_boot=n_boot, seed=seed, level=level, **ragged)
    counts = sample_counts(flags.correct, **ragged)
    task_counts = sample_counts(flags.correct, task=True, **ragged)
    curves = {"task": task_accuracy(flags.correct, **ragged), "turn": turn_accuracy(flags.update, **ragged),
              "answer": answer_accuracy(flags.correct, **ragged)}
    bounds = {kind: bootstrap_ci(flags.update if kind == "turn" else flags.correct, kind, **boot)  # type: ignore[arg-type]
              for kind in curves}
    return [CurvePoint(session_id=session_id, turn=t + 1, steps=(t + 1) * flags.k, n=int(counts[t]),
                       task_n=int(task_counts[t]),
                       **{f"{kind}_{name}": float(values[t]) for kind in curves
                          for name, values in (("accuracy", curves[kind]), ("ci_low", bounds[kind][0]),
                                               ("ci_high", bounds[kind][1]))})
            for t in range(len(counts))]


def arms(store: Database, group_id: str) -> list[tuple[str, str]]:
    """A group's arms as (arm name, session id), in the order they were given at the run."""
    from lhe_tui.store.groups import group_arms, resolve_group_id

    return group_arms(store, resolve_group_id(store, group_id))


def curves(store: Database, session_id: str, *, n_boot: int = N_BOOT, seed: int = SEED,
           level: float = LEVEL, step_rule: str | None = None) -> list[CurvePoint]:
    """The session's per-turn curves with n and bootstrap bounds, turn accuracy under `step_rule` (None: the
    session's). NoTurnsError for a session with no stored turn; a probe session (one turn per sample, at the
    target turn) has no per-turn curves either. A group id (grp-…): every arm's points, arm after arm
    (`session_id` tells them apart; `arms` names them)."""
    from lhe_tui.store.groups import is_group_id

    if is_group_id(session_id):
        return [point for _, sid in arms(store, session_id)
                for point in curves(store, sid, n_boot=n_boot, seed=seed, level=level, step_rule=step_rule)]
    sid = _id(store, session_id)
    if load_session(store, sid)["kind"] == "probe":
        raise LheError(f"session {sid} is a target-turn probe: it has no per-turn curves (`lhe-tui show {sid}` "
                       "gives its accuracy per error rate; `lhe-tui export --format csv` its turns with probe_rate)")
    flags = session_flags(store, sid, step_rule)
    if not any(flags.correct):
        raise NoTurnsError(f"session {sid} has no stored turns: no curves to give")
    if not flags.answered:
        raise NoTurnsError(f"session {sid} has no data (no turn was answered): no curves to give")
    return curve_points(sid, flags, n_boot=n_boot, seed=seed, level=level)


def summary(store: Database, session_id: str, s: float = 0.5, *,
            step_rule: str | None = None) -> Summary | list[Summary]:
    """H_s measured and predicted (ln(s)/ln(p), Proposition 1, p before the first error), the two fits of p
    (mean turn accuracy; p before the first error, with its bootstrap bounds), first errors: turns and steps.
    A group id (grp-…): a list, one Summary per arm in arm order."""
    from lhe_tui.metrics import p_before_first_error_ci, summarize
    from lhe_tui.store.groups import is_group_id

    if is_group_id(session_id):
        return [summary(store, sid, s, step_rule=step_rule) for _, sid in arms(store, session_id)]  # type: ignore[misc]
    sid = _id(store, session_id)
    if load_session(store, sid)["kind"] == "probe":
        raise LheError(f"session {sid} is a target-turn probe: it has no run metrics (H_s, p); "
                       f"`api.probe(store, {sid!r})` gives its accuracy at the target turn per error rate")
    flags = session_flags(store, sid, step_rule)
    ragged = dict(status=flags.status, turns=flags.turns)
    r = summarize(flags.correct, flags.update, s, k=flags.k, answered=flags.answered, **ragged)
    ci = p_before_first_error_ci(flags.correct, n_boot=N_BOOT, level=LEVEL, seed=SEED, **ragged)
    return Summary(session_id=sid, s=r.s, k=r.k, samples=r.n_samples, turns=r.n_turns, step_rule=flags.step_rule,
                   mean_answer_accuracy=r.mean_answer_accuracy, final_task_accuracy=r.final_task_accuracy,
                   mean_turn_accuracy=r.mean_turn_accuracy, p_before_first_error=r.p_before_first_error,
                   p_before_first_error_ci_low=None if ci is None else ci[0],
                   p_before_first_error_ci_high=None if ci is None else ci[1],
                   mean_step_accuracy_derived=r.mean_step_accuracy,
                   p_step_before_first_error_derived=r.p_step_before_first_error,
                   horizon_measured_turns=r.horizon_measured, horizon_measured_steps=r.horizon_measured_steps,
                   horizon_theory_turns=r.horizon_theory, horizon_theory_steps=r.horizon_theory_steps,
                   first_errors=tuple(r.first_errors), no_data=r.no_data)


def probe(store: Database, session_id: str) -> list[Any]:
    """A target-turn probe's own figures: per history error rate r, the samples, the accuracy at the target
    turn with its 95% bootstrap bounds (lhe_tui.runs.probe.ProbeRow), as `lhe-tui show` prints them."""
    from lhe_tui.runs.probe import probe_table

    sid = _id(store, session_id)
    if load_session(store, sid)["kind"] != "probe":
        raise LheError(f"session {sid} is a run, not a target-turn probe: `api.summary` and `api.curves` read it")
    return probe_table(store, sid)


def finite_or_text(value: float | None) -> float | str | None:
    """inf as the string "inf" (JSON has no infinity), else the value."""
    return "inf" if value is not None and isinstance(value, float) and math.isinf(value) else value


# ---- plain dicts and DataFrames ------------------------------------------------------------------------
def as_dicts(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Records (any of this module's dataclasses) as plain dicts, fields in declaration order."""
    return [asdict(r) for r in records]


def _pandas():
    try:
        import pandas
    except ImportError:
        raise LheError("DataFrames need pandas, which lhe-tui does not install: pip install pandas "
                       "(the record functions work without it)") from None
    return pandas


_COUNT_COLUMNS = ("tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "tokens_reasoning")


def _frame(read: Any, record_type: type) -> Any:
    pandas = _pandas()   # before reading: a missing pandas fails fast
    frame = pandas.DataFrame(as_dicts(read()), columns=[f.name for f in fields(record_type)])
    for column in _COUNT_COLUMNS:   # whole numbers with <NA> where not reported (not floats, never 0)
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    if "cost_usd" in frame.columns:
        frame["cost_usd"] = frame["cost_usd"].astype("float64")   # NaN where there is no cost
    return frame


def sessions_frame(store: Database) -> Any:
    """`sessions` as a pandas DataFrame (one row a session, SessionInfo's columns)."""
    return _frame(lambda: sessions(store), SessionInfo)


def turns_frame(store: Database, session_id: str, *, prices: PriceTable | None = None,
                step_rule: str | None = None) -> Any:
    """`turns` as a pandas DataFrame (TurnRow's columns; token counts nullable integers, <NA> where not
    reported; cost_usd NaN where there is none)."""
    return _frame(lambda: turns(store, session_id, prices=prices, step_rule=step_rule), TurnRow)


def tokens_frame(store: Database, session_id: str | None = None, **options: Any) -> Any:
    """`tokens` as a pandas DataFrame (SessionTokens' columns; options as for `tokens`)."""
    return _frame(lambda: tokens(store, session_id, **options), SessionTokens)


def curves_frame(store: Database, session_id: str, **options: Any) -> Any:
    """`curves` as a pandas DataFrame (CurvePoint's columns; options as for `curves`)."""
    return _frame(lambda: curves(store, session_id, **options), CurvePoint)


# ---- sweeps (issue 24) ----------------------------------------------------------------------------------
def sweep(store: Database, sweep_id: str, *, s: float = 0.5, n_boot: int = N_BOOT,
          step_rule: str | None = None) -> list[Any]:
    """A sweep's runs (`swp-…`, or its start or end), one RunResult each (lhe_tui.sweep.results): its axes, status,
    H_s with a 95% bootstrap CI (`lower_bound`: never below s, H is past the turns played), H in steps, the two
    fits of p, tokens and cost. The same numbers as `lhe-tui export swp-…` and `plot swp-…`."""
    from lhe_tui.sweep.results import sweep_results

    return sweep_results(store, sweep_id, s=s, n_boot=n_boot, step_rule=step_rule)[1]


def sweep_frame(store: Database, sweep_id: str, **options: Any) -> Any:
    """`sweep` as a pandas DataFrame: one row per run, the sweep's axes as columns (pivot on them)."""
    pandas = _pandas()
    frame = pandas.DataFrame([r.row() for r in sweep(store, sweep_id, **options)])
    for column in ("tokens_in", "tokens_out", "horizon", "horizon_low", "horizon_high", "horizon_steps"):
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    return frame
