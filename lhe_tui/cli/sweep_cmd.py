"""`lhe-tui sweep FILE.toml [--estimate] [--headless] [--max-cost USD] [--parallel N]` and `resume swp-…`
(issue 24): the sweep's runs through lhe_tui.sweep; headless, a compact table refreshing in place (one line
per run), then the final table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

from lhe_tui.cli.headless import stop_on_signals
from lhe_tui.common.errors import ConfigError
from lhe_tui.core.prices import fmt_cost
from lhe_tui.reports.fitted_table import output_width

if TYPE_CHECKING:
    from lhe_tui.sweep.engine import SweepEngine


def cmd_sweep(args: argparse.Namespace) -> int:
    from lhe_tui.core.prices import load_prices
    from lhe_tui.sweep.plan import plan_sweep
    from lhe_tui.sweep.spec import load_spec

    if args.file.suffix.lower() != ".toml":
        raise ConfigError(f"sweep file {args.file} should be a .toml file (see sweeps/ for examples)")
    spec = load_spec(args.file)
    plan = plan_sweep(spec, max_cost=args.max_cost, parallel=args.parallel)
    if args.estimate:
        return print_estimate(plan)
    from lhe_tui.store.database import open_database
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.plan import store_plan

    db = open_database(args.db)
    if getattr(db, "readonly", False):
        raise ConfigError(f"{args.db} is read-only: a sweep cannot be stored there")
    from lhe_tui.providers.factory import check_credentials

    for run in plan.runs:                              # a missing API key: one line, before anything is stored
        try:
            check_credentials(run.config)
        except ConfigError as exc:
            raise ConfigError(f"sweep run {run.name}: {exc}") from None
    SweepEngine(plan, db, prices=load_prices())       # a run that cannot be priced under --max-cost: one line first
    store_plan(db, plan)
    print(f"lhe-tui: sweep {plan.sweep_id} ({plan.name}): {len(plan.runs)} runs", file=sys.stderr)
    return drive(args, db, plan.sweep_id, max_cost=None)


def resume_sweep(args: argparse.Namespace, db, given: str, overrides: dict) -> int:
    """`resume swp-…`: the unfinished runs resumed and the never-started ones started (--max-cost: a new
    budget for the whole sweep)."""
    from lhe_tui.store.sweeps import resolve_sweep_id

    sweep_id = resolve_sweep_id(db, given)
    unknown = set(overrides) - {"max_cost"}
    if unknown:
        raise ConfigError(f"resume {sweep_id}: only --max-cost applies to a sweep (its runs keep their own limits)")
    return drive(args, db, sweep_id, max_cost=overrides.get("max_cost"))


def drive(args: argparse.Namespace, db, sweep_id: str, *, max_cost: float | None) -> int:
    from lhe_tui.sweep.engine import SweepEngine
    from lhe_tui.sweep.plan import load_plan

    plan = load_plan(db, sweep_id)
    engine = SweepEngine(plan, db, parallel=getattr(args, "parallel", None), max_cost=max_cost)
    if not engine.work:
        print(f"lhe-tui: sweep {sweep_id} is finished: every run ran all its turns", file=sys.stderr)
        print_table(engine, Console(soft_wrap=False, width=output_width()))
        return 0
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        db.conn.close()
        return launch_tui(args, sweep=sweep_id, resume_overrides={"max_cost": max_cost} if max_cost else {})
    statuses = run_headless(engine)
    print_table(engine, Console(soft_wrap=False, width=output_width()))
    return exit_code(statuses, engine)


def exit_code(statuses: dict[str, str], engine: SweepEngine) -> int:
    if engine.pool is not None and engine.pool.stopped:
        print(f"lhe-tui: stopped: {engine.pool.stopped}", file=sys.stderr)
    failed = [name for name, status in statuses.items() if status == "failed"]
    for name in failed:
        print(f"lhe-tui: run {name} failed: {engine.progress[name].message}", file=sys.stderr)
    if any(status not in ("finished", "finished_with_errors", "failed") for status in statuses.values()):
        print(f"lhe-tui: sweep {engine.plan.sweep_id} stopped; `lhe-tui resume {engine.plan.sweep_id} --headless` "
              "continues it", file=sys.stderr)
        return 130
    return 1 if failed else 0


async def _run(engine: SweepEngine) -> dict[str, str]:
    stop_on_signals(engine.stop)
    return await engine.run()


def run_headless(engine: SweepEngine) -> dict[str, str]:
    """Run the sweep with its table refreshing in place on stderr (a terminal) twice a second."""
    console = Console(stderr=True)
    if not console.is_terminal:
        return asyncio.run(_run(engine))
    with Live(sweep_table(engine), console=console, refresh_per_second=2, transient=True) as live:
        async def main() -> dict[str, str]:
            async def refresh() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(sweep_table(engine))
            ticker = asyncio.create_task(refresh())
            try:
                return await _run(engine)
            finally:
                ticker.cancel()
        return asyncio.run(main())


def sweep_table(engine: SweepEngine) -> Table:
    from lhe_tui.reports.sweep_cells import run_cells

    header, rows = run_cells(engine)
    done = sum(p.done for p in engine.progress.values())
    total = sum(p.total for p in engine.progress.values())
    cost = sum(p.cost for p in engine.progress.values())
    table = Table(title=f"sweep {engine.plan.sweep_id} ({engine.plan.name}): {done:,}/{total:,} turns, "
                        f"cost {fmt_cost(cost) if any(p.price for p in engine.progress.values()) else '-'}", title_justify="left")
    for name in header:
        table.add_column(name, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def print_table(engine: SweepEngine, console: Console) -> None:
    console.print(sweep_table(engine))


def print_estimate(plan) -> int:
    from lhe_tui.core.prices import load_prices
    from lhe_tui.sweep.estimate import estimate_cells, estimate_sweep

    header, cells = estimate_cells(estimate_sweep(plan, load_prices()))
    table = Table(title=f"sweep {plan.name}: forecast of {len(plan.runs)} runs (nothing is sent)",
                  title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in cells:
        table.add_row(*row, end_section=row is cells[-2])
    Console(soft_wrap=False, width=200).print(table)
    return 0
