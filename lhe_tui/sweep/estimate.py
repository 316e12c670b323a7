"""`lhe-tui sweep FILE --estimate`: per run its requests, tokens, cost with and without caching, and least
duration under its account's limits; then the sweep's total (its least duration: the slowest account's, every
run of an account sharing its limits). Nothing is sent or stored."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lhe_tui.core.prices import PriceTable, fmt_cost
from lhe_tui.analysis.estimate import Forecast, forecast
from lhe_tui.analysis.run_duration import fmt_duration, run_duration
from lhe_tui.sweep.plan import SweepPlan
from lhe_tui.sweep.spec import account_of


@dataclass(frozen=True)
class EstimateRow:
    name: str
    account: str
    forecast: Forecast

    @property
    def seconds(self) -> float:
        return self.forecast.duration().seconds


@dataclass(frozen=True)
class SweepEstimate:
    rows: tuple[EstimateRow, ...]
    limits: dict[str, dict[str, int]]

    @property
    def requests(self) -> int:
        return sum(r.forecast.requests for r in self.rows)

    @property
    def input_tokens(self) -> int:
        return sum(r.forecast.input_tokens for r in self.rows)

    @property
    def output_tokens(self) -> int:
        return sum(r.forecast.output_tokens for r in self.rows)

    def cost(self, cached: bool) -> float | None:
        """The total; None when a run has no price (the total would understate it)."""
        costs = [r.forecast.cost_cached if cached and r.forecast.caches else r.forecast.cost_uncached
                 for r in self.rows]
        return None if any(c is None for c in costs) else sum(costs)

    def seconds(self) -> float:
        """The least duration: per account, all its runs' requests and tokens through its shared buckets."""
        worst = 0.0
        for account in {r.account for r in self.rows}:
            rows = [r for r in self.rows if r.account == account]
            limits = self.limits.get(account, {})
            took = run_duration(sum(r.forecast.requests for r in rows), sum(r.forecast.limited_tokens for r in rows),
                                rpm=limits.get("rpm"), tpm=limits.get("tpm"))
            worst = max(worst, took.seconds)
        return worst


def estimate_sweep(plan: SweepPlan, prices: PriceTable, reply_tokens: int | None = None) -> SweepEstimate:
    rows = []
    for run in plan.runs:
        account = account_of(run.config)
        limits = plan.limits.get(account, {})
        config = replace(run.config, rpm=limits.get("rpm") or run.config.rpm, tpm=limits.get("tpm") or run.config.tpm)
        if plan.probe is not None:
            config = replace(config, turns=plan.probe.target_turn)
        rows.append(EstimateRow(run.name, account, forecast(config, reply_tokens=reply_tokens, prices=prices)))
    return SweepEstimate(tuple(rows), plan.limits)


def estimate_cells(estimate: SweepEstimate) -> tuple[list[str], list[tuple[str, ...]]]:
    """The table's header and rows, the total last."""
    header = ["run", "requests", "input tok", "output tok", "cost", "cost cached", "least time"]
    cells = []
    for row in estimate.rows:
        f = row.forecast
        cells.append((row.name, f"{f.requests:,}", f"{f.input_tokens:,}", f"{f.output_tokens:,}",
                      fmt_cost(f.cost_uncached, missing="no price"),
                      fmt_cost(f.cost_cached, missing="no price") if f.caches else "no cache",
                      fmt_duration(row.seconds) if f.rpm or f.tpm else "-"))
    cells.append(("total", f"{estimate.requests:,}", f"{estimate.input_tokens:,}", f"{estimate.output_tokens:,}",
                  _total_cost(estimate, False), _total_cost(estimate, True),
                  fmt_duration(estimate.seconds()) if estimate.limits else "-"))
    return header, cells


def _total_cost(estimate: SweepEstimate, cached: bool) -> str:
    """The total, or what the priced runs cost and how many have no price (`>= $3.20, 2 unpriced`)."""
    total = estimate.cost(cached)
    if total is not None:
        return fmt_cost(total)
    costs = [r.forecast.cost_cached if cached and r.forecast.caches else r.forecast.cost_uncached
             for r in estimate.rows]
    priced = [c for c in costs if c is not None]
    if not priced:
        return "no price"
    return f">= {fmt_cost(sum(priced))}, {len(costs) - len(priced)} unpriced"
