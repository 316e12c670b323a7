"""A sweep's results, one record per run with its axes (for `plot swp-…`, `export swp-…` and lhe_tui.reports.api):
H_s with a bootstrap CI over samples (a run whose task accuracy never fell below s gives a lower bound: the
turns it played), H in steps, the two fits of p, final task accuracy, tokens and cost. The numbers come from
the same functions as `show` (lhe_tui.metrics over lhe_tui.store.queries.session_flags)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lhe_tui.store.sweeps import resolve_sweep_id, sweep_sessions
from lhe_tui.sweep.plan import SweepPlan, load_plan

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.core.prices import PriceTable

N_BOOT = 1000


@dataclass(frozen=True)
class RunResult:
    sweep_id: str
    run: str
    axes: dict[str, str]
    size: float | None
    session_id: str | None
    status: str                     # pending: never started
    kind: str
    provider: str
    model_id: str                   # the model name sent (the model axis holds its label)
    mode: str
    k: int
    samples: int
    turns: int
    turns_played: int               # the longest any sample played
    horizon: int | None             # H_s in turns, measured; with lower_bound: the turns played instead
    lower_bound: bool               # task accuracy never fell below s: H_s > horizon
    horizon_low: int | None         # 95% bootstrap bounds (None: unbounded above, or not measured)
    horizon_high: int | None
    horizon_steps: int | None       # horizon * K
    final_task_accuracy: float | None
    p_before_first_error: float | None
    mean_turn_accuracy: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    s: float = 0.5

    def row(self) -> dict[str, Any]:
        """Flat: the axes as columns (for CSV and pandas)."""
        data = asdict(self)
        axes = data.pop("axes")
        return {"sweep_id": data.pop("sweep_id"), "run": data.pop("run"), **axes, **data}


def sweep_results(db: Database, sweep_id: str, *, s: float = 0.5, n_boot: int = N_BOOT,
                  step_rule: str | None = None, prices: PriceTable | None = None) -> tuple[SweepPlan, list[RunResult]]:
    from lhe_tui.core.prices import load_prices

    sweep_id = resolve_sweep_id(db, sweep_id)
    plan = load_plan(db, sweep_id)
    stored = sweep_sessions(db, sweep_id)
    prices = prices or load_prices()
    out = []
    for run in plan.runs:
        out.append(_result(db, plan, run, stored.get(run.name), s, n_boot, step_rule, prices))
    return plan, out


def _result(db, plan, run, row, s, n_boot, step_rule, prices) -> RunResult:
    from lhe_tui.metrics import summarize
    from lhe_tui.metrics.bootstrap import horizon_ci
    from lhe_tui.store.queries import session_flags, session_token_totals

    c = run.config
    base = dict(sweep_id=plan.sweep_id, run=run.name, axes=run.axes, size=run.size, provider=c.provider,
                model_id=c.model_label, mode=c.mode, k=c.k, samples=c.samples, turns=c.turns, s=s)
    empty = dict(turns_played=0, horizon=None, lower_bound=False, horizon_low=None, horizon_high=None,
                 horizon_steps=None, final_task_accuracy=None, p_before_first_error=None, mean_turn_accuracy=None,
                 tokens_in=None, tokens_out=None, cost=None)
    if row is None:
        return RunResult(**base, session_id=None, status="pending", kind="probe" if plan.probe else "run", **empty)
    session_id = row["id"]
    totals = session_token_totals(db, session_id)
    money = dict(tokens_in=totals.tokens_in, tokens_out=totals.tokens_out,
                 cost=totals.cost(prices.for_model(c.model_label)) if prices.for_model(c.model_label) else None)
    if row["kind"] == "probe" or not row["done"]:
        return RunResult(**base, session_id=session_id, status=row["status"], kind=row["kind"],
                         **{**empty, **money})
    flags = session_flags(db, session_id, step_rule)
    summary = summarize(flags.correct, flags.update, s, status=flags.status, turns=flags.turns, k=flags.k)
    measured = summary.horizon_measured
    low, high = horizon_ci(flags.correct, s, n_boot=n_boot, status=flags.status, turns=flags.turns)
    horizon = measured if measured is not None else summary.n_turns
    return RunResult(**base, session_id=session_id, status=row["status"], kind=row["kind"],
                     turns_played=summary.n_turns, horizon=horizon, lower_bound=measured is None,
                     horizon_low=low, horizon_high=high,
                     horizon_steps=None if horizon is None else horizon * flags.k,
                     final_task_accuracy=summary.final_task_accuracy,
                     p_before_first_error=summary.p_before_first_error,
                     mean_turn_accuracy=summary.mean_turn_accuracy, **money)
