"""Run a sweep's runs in one event loop: at most `parallel` at a time, one rate limiter per provider account
shared by the runs that use it, one budget for the whole sweep, each run its own session linked to the sweep.

A run that fails (or cannot even start: a provider that cannot be made) does not stop the others. `stop()`
(Ctrl+C) stops every running run, keeping their turns, and starts no more. Running it again over the same
store (`resume swp-…`) resumes the unfinished runs and starts the ones never started. UI-free.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lhe_tui.core.events import RunStarted
from lhe_tui.core.prices import PriceTable, load_prices
from lhe_tui.common.errors import ConfigError, LheError
from lhe_tui.runner.budget import BudgetPool, PooledBudget
from lhe_tui.runner.rate_limit import RateLimiter
from lhe_tui.runs.session import PreparedRun, build_task
from lhe_tui.store.sweeps import link_session, sweep_sessions
from lhe_tui.sweep.plan import PlannedRun, SweepPlan
from lhe_tui.sweep.progress import PENDING, RunProgress
from lhe_tui.sweep.spec import account_of

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.task import Task

DEFAULT_PARALLEL = 4
NOT_STARTED = "not started"
DONE = {"finished", "finished_with_errors"}


@dataclass
class Work:
    """One run to play now: new (`resume` False) or continued from its stored session."""

    run: PlannedRun
    session_id: str
    resume: bool


class SweepEngine:
    def __init__(self, plan: SweepPlan, db: Database, *, parallel: int | None = None,
                 max_cost: float | None = None, prices: PriceTable | None = None,
                 stream_deltas: bool = False) -> None:
        self.plan = plan
        self.db = db
        self.parallel = parallel or plan.parallel or DEFAULT_PARALLEL
        self.prices = prices or load_prices()
        self.stream_deltas = stream_deltas
        self.limiters = {account: RateLimiter(limits.get("rpm"), limits.get("tpm"))
                         for account, limits in plan.limits.items()}
        max_cost = max_cost if max_cost is not None else plan.max_cost
        self.pool = BudgetPool(max_cost, None, plan.sweep_id) if max_cost is not None else None
        self.progress: dict[str, RunProgress] = {}
        self.active: dict[str, PreparedRun] = {}
        self.stopping = False
        self.on_prepared: list = []          # callables (run name, PreparedRun): e.g. the board's live views
        self._tasks: dict[tuple, Task] = {}
        self.work = self._plan_work()

    # ---- what is left ---------------------------------------------------------------------------
    def _plan_work(self) -> list[Work]:
        stored = sweep_sessions(self.db, self.plan.sweep_id)
        work = []
        for run in self.plan.runs:
            price = self.prices.for_model(run.config.model_label)
            if self.pool is not None and self.pool.max_cost is not None and price is None:
                raise ConfigError(f"--max-cost needs a price for model {run.config.model_label!r} (sweep run "
                                  f"{run.name}): add it to a price file (--prices PATH)")
            total = (run.config.samples * len(self.plan.probe.rates) if self.plan.probe is not None
                     else run.total_turns)
            progress = RunProgress(run.name, total, run.config.samples, run.config.turns, price=price, axes=run.axes)
            self.progress[run.name] = progress
            row = stored.get(run.name)
            if row is None:
                work.append(Work(run, run.session_id, resume=False))
                continue
            progress.load_stored(self.db, row["id"])
            if self.pool is not None:
                from lhe_tui.store.queries import session_token_totals

                self.pool.add_spent(session_token_totals(self.db, row["id"]), price)
            if row["status"] in DONE or (row["done"] >= total and row["status"] != "running"):
                progress.status = row["status"] or "finished"
                continue
            progress.status = row["status"] or "interrupted"
            if row["kind"] == "probe":      # a probe is not resumable: it is run again, as a new session
                from lhe_tui.runs.session import new_session_id

                progress.done = 0
                work.append(Work(run, new_session_id(), resume=False))
            else:
                work.append(Work(run, row["id"], resume=True))
        return work

    @property
    def runs_left(self) -> list[str]:
        return [w.run.name for w in self.work]

    # ---- controls -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every running run (each ends interrupted, its turns kept) and start no more."""
        self.stopping = True
        for prepared in list(self.active.values()):
            prepared.runner.stop()

    # ---- running --------------------------------------------------------------------------------
    def _task(self, run: PlannedRun) -> Task:
        c = run.config
        key = (c.seed, c.k, c.samples, c.turns, c.dict_size, c.min_value, c.max_value, c.dataset, c.dataset_offset)
        if key not in self._tasks:
            self._tasks[key] = build_task(c)
        return self._tasks[key]

    def _prepare(self, work: Work) -> PreparedRun:
        from lhe_tui.runs.session import prepare_resume, prepare_run

        run = work.run
        if work.resume:
            prepared = prepare_resume(self.db, work.session_id, stream_deltas=self.stream_deltas)
        elif self.plan.probe is not None:
            from lhe_tui.runs.probe import prepare_probe

            prepared = prepare_probe(run.config, self.db, self.plan.probe.target_turn, self.plan.probe.rates,
                                     session_id=work.session_id, stream_deltas=self.stream_deltas)
        else:
            prepared = prepare_run(run.config, self.db, session_id=work.session_id, task=self._task(run),
                                   stream_deltas=self.stream_deltas)
        runner = prepared.runner
        limiter = self.limiters.get(account_of(run.config))
        if limiter is not None:
            runner.limiter = limiter          # shared by every run of this account
        if self.pool is not None:
            runner.budget = PooledBudget(self.pool, self.progress[run.name].price)
        name, sweep_id = run.name, self.plan.sweep_id

        def link(event: object) -> None:      # after the writer: its RunStarted wrote the session's row
            if isinstance(event, RunStarted):
                link_session(self.db, event.session_id, sweep_id, name)

        prepared.bus.subscribe(link)
        prepared.bus.subscribe(self.progress[run.name])
        for hook in self.on_prepared:
            hook(run.name, prepared)
        return prepared

    async def _play(self, work: Work, slots: asyncio.Semaphore) -> str:
        progress = self.progress[work.run.name]
        async with slots:
            if self.stopping or (self.pool is not None and self.pool.stopped is not None):
                return NOT_STARTED
            try:
                prepared = self._prepare(work)
            except LheError as exc:
                progress.status, progress.message = "failed", f"could not start: {exc}"
                return "failed"
            self.active[work.run.name] = prepared
            try:
                return await prepared.runner.run()
            except Exception as exc:  # noqa: BLE001 - one run's bug must not end the others
                progress.status, progress.message = "failed", f"internal error: {exc.__class__.__name__}: {exc}"
                return "failed"
            finally:
                self.active.pop(work.run.name, None)
                try:
                    await prepared.provider.aclose()
                except Exception:  # noqa: BLE001
                    pass

    async def run(self) -> dict[str, str]:
        """Play what is left; {run name: status} for every run of the sweep (those done before included)."""
        slots = asyncio.Semaphore(self.parallel)
        try:
            results = await asyncio.gather(*(self._play(w, slots) for w in self.work))
        except asyncio.CancelledError:
            self.stop()
            raise
        for work, status in zip(self.work, results):
            progress = self.progress[work.run.name]
            if status not in (NOT_STARTED, "failed") and progress.status in (PENDING, "running"):
                progress.status = status          # its RunFinished was not seen (should not happen)
        return {name: p.status for name, p in self.progress.items()}
