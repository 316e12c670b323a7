"""The run and resume commands: one run, a group of arms or a resumed session, in the TUI or headless, and the forecasts --estimate prints."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from lhe_tui.common.errors import LheError


def cmd_run(args: argparse.Namespace) -> int:
    from lhe_tui.runner.budget import budget_for
    from lhe_tui.runs.run_flags import config_from_args
    from lhe_tui.runs.session import prepare_run
    from lhe_tui.store.database import open_database

    config = config_from_args(args)
    budget_for(config)   # --max-cost on a model with no price: one line, before anything runs
    say_paper(config)
    _say_sim_ignores(args, config)
    if getattr(args, "arm", None):
        return _run_arms(args, config)
    if args.estimate or args.estimate_reply_tokens is not None or args.estimate_latency is not None:
        return _estimate(config, args.estimate_reply_tokens, args.estimate_latency, db_path=args.db,
                         assume_p=args.assume_p)
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        return launch_tui(args, config=config)
    from lhe_tui.cli.headless import run_headless
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.providers.local_server import serving

    config.validate()                      # bad flags fail before any file is created
    server, config, provider = prepare_own_server(config)
    db = open_database(args.db)
    with serving(server):    # --provider local: its own llama.cpp server, as resume and probe
        prepared = prepare_run(config, db, provider=provider, stream_deltas=False)
        return run_headless(prepared, db, config.samples * config.turns, server)


def say_paper(config) -> None:
    """What --paper or --paper-settings set, once (it is stored with the session too)."""
    from lhe_tui.core.paper import describe

    line = describe(config)
    if line:
        print(f"lhe-tui: {line}", file=sys.stderr)


SIM_IGNORES = (("temperature", "--temperature"), ("top_p", "--top-p"), ("max_tokens", "--max-tokens"),
               ("extra_body", "--extra-body"), ("enable_thinking", "--enable-thinking"))


def _say_sim_ignores(args: argparse.Namespace, config) -> None:
    """Request settings given for the simulated model, which has no sampler: said once on stderr (the run goes
    on; they are stored as given)."""
    if config.provider != "sim":
        return
    given = [flag for name, flag in SIM_IGNORES if getattr(args, name, None) is not None]
    if getattr(args, "paper_settings", False):
        given.append("--paper-settings")
    if given:
        print(f"lhe-tui: note: the simulated model (sim) ignores {', '.join(given)}", file=sys.stderr)


def _run_arms(args: argparse.Namespace, config) -> int:
    """`run … --arm NAME:FLAGS --arm NAME:FLAGS`: the arms over one task, concurrently, one session each in a
    new group (lhe_tui.runs.arms). Bad arms are one line before anything is stored."""
    from lhe_tui.runner.budget import budget_for
    from lhe_tui.runs.arms import plan_group, prepare_group, shared_local_server, with_configs

    plan = plan_group(config, args.arm)
    for arm in plan.arms:
        budget_for(arm.config)           # an arm's --max-cost on a model with no price: one line
    if args.estimate or args.estimate_reply_tokens is not None or args.estimate_latency is not None:
        forecasts = []
        for arm in plan.arms:
            print(f"arm {arm.name}:")
            forecasts.append(_forecast(arm.config, args.estimate_reply_tokens, args.estimate_latency,
                                       db_path=args.db, assume_p=args.assume_p))
        from lhe_tui.analysis.estimate import total_line

        print(total_line(forecasts, what=f"the group's {len(forecasts)} arms"))
        return 0
    if not args.headless:
        from lhe_tui.runs.arms import arm_configs
        from lhe_tui.ui.launch import launch_tui

        return launch_tui(args, config=config, arms=arm_configs(config, list(args.arm)))
    from lhe_tui.cli.headless import run_group_headless
    from lhe_tui.providers.local_server import serving
    from lhe_tui.store.database import open_database

    server, configs, providers = shared_local_server([arm.config for arm in plan.arms])
    plan = with_configs(plan, configs)
    db = open_database(args.db)
    with serving(server):    # --provider local: one llama.cpp server for every local arm
        group = prepare_group(plan, db, providers=providers, stream_deltas=False)
        totals = [arm.config.samples * arm.config.turns for arm in plan.arms]
        return run_group_headless(group, db, totals, server)


def resume_group(args: argparse.Namespace, db, group_id: str, overrides: dict) -> int:
    """`resume GROUP_ID --headless`: the group's unfinished arms together, as `run --arm` ran them."""
    from dataclasses import replace

    from lhe_tui.cli.headless import run_group_headless
    from lhe_tui.providers.local_server import serving
    from lhe_tui.runner.budget import budget_for
    from lhe_tui.runs.arms import prepare_group_resume, remaining_turns, shared_local_server, unfinished_arms

    arms = unfinished_arms(db, group_id)    # a finished group, or an arm run elsewhere: one line here
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        db.conn.close()
        return launch_tui(args, resume_group=group_id, resume_overrides=overrides)
    if overrides:
        for arm in arms:
            arm.state.config = replace(arm.state.config, **overrides).validate()
            budget_for(arm.state.config)
    server, configs, providers = shared_local_server([arm.state.config for arm in arms])
    for arm, config in zip(arms, configs):
        arm.state.config = config
    with serving(server):
        group = prepare_group_resume(db, group_id, arms, providers=providers, stream_deltas=False)
        return run_group_headless(group, db, remaining_turns(group), server)


def _estimate(config, reply_tokens: int | None, latency_s: float | None = None, *, db_path=None,
              assume_p: float | None = None) -> int:
    """`run --estimate`: the forecast of the configured run; nothing runs, nothing is stored."""
    _forecast(config, reply_tokens, latency_s, db_path=db_path, assume_p=assume_p)
    return 0


def _forecast(config, reply_tokens: int | None, latency_s: float | None = None, *, db_path=None,
              assume_p: float | None = None):
    """Print and return the forecast of `config`. Stored runs of the same model in the store calibrate its
    characters per token; with --until, the expected saving."""
    from lhe_tui.analysis.estimate import TokenRatio, forecast, measured_ratio, until_lines
    from lhe_tui.core.prices import load_prices

    ratio = TokenRatio()
    store = _existing_store(db_path)
    if store is not None:
        ratio = measured_ratio(store, config)
    prices = load_prices()
    result = forecast(config, reply_tokens=reply_tokens, prices=prices, ratio=ratio)
    print("\n".join(result.lines(config, latency_s)))
    if config.until is not None:
        print("\n".join(until_lines(config, result, reply_tokens=reply_tokens, prices=prices, ratio=ratio,
                                    assume_p=assume_p, store=store)))
    return result


def _existing_store(db_path):
    """The store at `db_path` opened read-only when there is one (for what it knows), else None."""
    from pathlib import Path

    from lhe_tui.store.database import open_database

    if db_path is None or not Path(db_path).exists():
        return None
    try:
        return open_database(db_path, create=False, write=False)
    except (LheError, sqlite3.Error):
        return None


def cmd_resume(args: argparse.Namespace) -> int:
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    db = open_database(args.db, create=False)
    overrides = {name: getattr(args, name) for name in ("max_cost", "max_tokens_total", "rpm", "tpm")
                 if getattr(args, name, None) is not None}
    from lhe_tui.store.groups import is_group_id, resolve_group_id

    if is_group_id(args.session_id):
        return resume_group(args, db, resolve_group_id(db, args.session_id), overrides)
    from lhe_tui.store.sweeps import is_sweep_id

    if is_sweep_id(args.session_id):
        from lhe_tui.cli.sweep_cmd import resume_sweep

        return resume_sweep(args, db, args.session_id, overrides)
    session_id = resolve_session_id(db, args.session_id)
    _refuse_live_writer(db, session_id)
    _refuse_finished(db, session_id)
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        db.conn.close()
        return launch_tui(args, resume_id=session_id, resume_overrides=overrides)
    return resume_headless(db, session_id, overrides)


def resume_headless(db, session_id: str, overrides: dict | None = None) -> int:
    """An unfinished stored run (a resume, or a fork just written) continued headless from its stored turns;
    `overrides`: budget and rate limits that replace the stored ones."""
    from lhe_tui.cli.headless import run_headless
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.providers.local_server import serving
    from lhe_tui.runs.resume_state import load_resume_state
    from lhe_tui.runs.session import prepare_resume

    state = load_resume_state(db, session_id)
    if overrides:
        from dataclasses import replace

        from lhe_tui.runner.budget import budget_for

        state.config = replace(state.config, **overrides).validate()
        budget_for(state.config)   # a price is needed for --max-cost: one line before anything runs
    server, _, provider = prepare_own_server(state.config)
    with serving(server):    # --provider local: its own llama.cpp server again, as `run` had
        prepared = prepare_resume(db, session_id, provider=provider, stream_deltas=False, state=state)
        config = prepared.runner.config
        done = sum(len(h) for h in prepared.runner.history.values())
        return run_headless(prepared, db, config.samples * config.turns - done, server)


def _refuse_live_writer(db, session_id: str) -> None:
    """`resume` of a session another process is running: one line (its writer lock would refuse it too)."""
    from lhe_tui.store.locks import SessionBusy, holder_label, writer_alive

    if writer_alive(db.path, session_id):
        raise SessionBusy(f"session {session_id} is being run by another process ({holder_label(db.path, session_id)}); "
                          "stop it there first (a session has one writer at a time)")


def _refuse_finished(db, session_id: str) -> None:
    """A finished session has nothing to resume: say so, and leave it (and its wall time) as it is."""
    from lhe_tui.store.queries import load_session, nothing_to_resume

    session = load_session(db, session_id)
    if session["kind"] != "run":
        return   # load_resume_state refuses it with its reason
    complete = nothing_to_resume(db, session)
    if complete is not None:
        done, expected = complete
        raise LheError(f"session {session_id} is already finished ({done} of {expected} turns): nothing to "
                       f"resume (`lhe-tui show {session_id}` reports it)")
