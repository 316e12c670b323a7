"""`lhe-tui`: the command-line entry point. User errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from lhe_tui.common.errors import ConfigError, LheError


def _cmd_run(args: argparse.Namespace) -> int:
    from lhe_tui.cli.args import config_from_args
    from lhe_tui.runs.session import prepare_run
    from lhe_tui.store.database import open_database

    from lhe_tui.runner.budget import budget_for

    config = config_from_args(args)
    budget_for(config)   # --max-cost on a model with no price: one line, before anything runs
    _say_paper(config)
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


def _say_paper(config) -> None:
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
    from lhe_tui.runs.arms import plan_group, prepare_group, shared_local_server, with_configs
    from lhe_tui.runner.budget import budget_for

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
        from lhe_tui.ui.arms import parse_arms
        from lhe_tui.ui.launch import launch_tui

        return launch_tui(args, config=config, arms=parse_arms(config, args.arm))
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


def _resume_group(args: argparse.Namespace, db, group_id: str, overrides: dict) -> int:
    """`resume GROUP_ID --headless`: the group's unfinished arms together, as `run --arm` ran them."""
    from dataclasses import replace

    from lhe_tui.runs.arms import prepare_group_resume, remaining_turns, shared_local_server, unfinished_arms
    from lhe_tui.cli.headless import run_group_headless
    from lhe_tui.providers.local_server import serving
    from lhe_tui.runner.budget import budget_for

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
    from lhe_tui.core.prices import load_prices
    from lhe_tui.analysis.estimate import TokenRatio, forecast, measured_ratio, until_lines

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


def _cmd_resume(args: argparse.Namespace) -> int:
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    db = open_database(args.db, create=False)
    overrides = {name: getattr(args, name) for name in ("max_cost", "max_tokens_total", "rpm", "tpm")
                 if getattr(args, name, None) is not None}
    from lhe_tui.store.groups import is_group_id, resolve_group_id

    if is_group_id(args.session_id):
        return _resume_group(args, db, resolve_group_id(db, args.session_id), overrides)
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
    return _resume_headless(db, session_id, overrides)


def _resume_headless(db, session_id: str, overrides: dict | None = None) -> int:
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


def _cmd_probe(args: argparse.Namespace) -> int:
    from lhe_tui.cli.args import config_from_args
    from lhe_tui.runs.probe import check_target_turn, parse_rates, prepare_probe
    from lhe_tui.store.database import open_database

    check_target_turn(args.target_turn)     # before the TUI opens or anything is stored
    rates = parse_rates(args.rates)
    config = config_from_args(args)
    _say_paper(config)
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        return launch_tui(args, config=config, probe=(args.target_turn, rates))
    db = open_database(args.db)
    from lhe_tui.cli.headless import run_probe_headless
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.providers.local_server import serving

    server, config, provider = prepare_own_server(config)
    with serving(server):
        prepared = prepare_probe(config, db, args.target_turn, rates, provider=provider)
        return run_probe_headless(prepared, db, server)


def _cmd_compare(args: argparse.Namespace) -> int:
    from lhe_tui.reports.report import compare_table, print_table
    from lhe_tui.analysis.compare import compare_rows, default_turns, no_data_note, parse_turns, session_curves, with_data
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    db = open_database(args.db, create=False, write=False)
    turns = parse_turns(args.at)
    given = [resolve_session_id(db, sid) for sid in args.session_ids if not sid.startswith("grp-")]
    twice = next((sid for n, sid in enumerate(given) if sid in given[:n]), None)
    if twice is not None:
        raise ConfigError(f"compare: session {twice} is given twice; compare a session with another one")
    arms = _compared_arms(db, args)
    if arms is not None:
        if args.tui:
            raise ConfigError("compare --tui of a group's arms is not there yet: leave out --tui")
        from lhe_tui.reports.report import print_group_comparison

        fork = arms[1][0]   # `fork@T` when a fork is compared with its parent
        after = int(fork[5:]) if fork.startswith("fork@") and fork[5:].isdigit() else None
        print_group_comparison(db, arms, turns, after=after, step_rule=args.step_rule)
        return 0
    ids = [resolve_session_id(db, sid) for sid in args.session_ids]
    if args.tui:
        if args.step_rule is not None:
            raise ConfigError("compare --tui scores each session under its stored step rule: leave out --step-rule")
        from lhe_tui.ui.app import LheApp

        db.conn.close()
        app = LheApp(args.db, compare=ids, theme=getattr(args, "theme", None), compare_turns=turns)
        app.run()
        return app.return_code or 0
    curves, left_out = with_data([session_curves(db, sid, step_rule=args.step_rule) for sid in ids])
    if not curves:
        raise LheError(f"nothing to compare: {no_data_note(left_out)}")
    turns = turns or default_turns(max(c.n_turns for c in curves))
    print_table(compare_table(compare_rows(curves, turns, cost=True)))
    if left_out:
        print(no_data_note(left_out))
    return 0


def _compared_arms(db, args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """`compare GROUP_ID [--arms a,b]` or `compare S1 S2` of two arms of one group: (arm, session id) in the
    order compared (the first against each other); None for a comparison of unpaired sessions."""
    from lhe_tui.analysis.compare import parse_arm_names
    from lhe_tui.store.groups import group_arms, group_of, is_group_id, resolve_group_id
    from lhe_tui.store.queries import resolve_session_id

    names = parse_arm_names(args.arms)
    given = args.session_ids
    if any(is_group_id(g) for g in given):
        if len(given) != 1:
            raise ConfigError("compare: give one group id (its arms are compared), or session ids, not both")
        return group_arms(db, resolve_group_id(db, given[0]), names)
    if len(given) != 2:
        if names is not None:
            raise ConfigError("--arms needs a group id (compare grp-… --arms a,b)")
        return None
    ids = [resolve_session_id(db, sid) for sid in given]
    fork = _fork_pair(db, ids)
    if fork is not None:
        return fork
    groups = {group_of(db, sid) for sid in ids}
    if len(groups) != 1 or None in groups or ids[0] == ids[1]:
        if names is not None:
            raise ConfigError("--arms needs a group id (compare grp-… --arms a,b)")
        return None
    by_id = {sid: name for name, sid in group_arms(db, groups.pop())}
    return [(by_id[sid], sid) for sid in ids]


def _fork_pair(db, ids: list[str]) -> list[tuple[str, str]] | None:
    """`compare PARENT FORK` (either order) of a fork of all its parent's samples over the same keys: paired
    as arms are, the parent first; None otherwise."""
    from lhe_tui.core.lineage import Lineage
    from lhe_tui.store.queries import load_session

    sessions = [load_session(db, sid) for sid in ids]
    for parent, child in ((0, 1), (1, 0)):
        lineage = Lineage.from_row(sessions[child])
        if lineage.parent_id != ids[parent]:
            continue
        if list(lineage.parent_samples) != list(range(sessions[parent].get("n_samples") or 0)):
            return None      # a fork of some samples: its sample i is not the parent's sample i
        if sessions[child].get("turns") != sessions[parent].get("turns"):
            return None
        return [("parent", ids[parent]), (f"fork@{lineage.fork_turn}", ids[child])]
    return None


def _cmd_plot(args: argparse.Namespace) -> int:
    from lhe_tui.reports.figures import check_output, plot
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    check_output(args.out)       # a bad --out fails before the store is read
    db = open_database(args.db, create=False, write=False)
    from lhe_tui.store.sweeps import is_sweep_id

    if any(is_sweep_id(sid) for sid in args.session_ids):
        if len(args.session_ids) != 1:
            raise ConfigError("plot: give one sweep id (swp-…), or session ids, not both")
        from lhe_tui.reports.sweep_figures import plot_sweep

        out = plot_sweep(db, args.session_ids[0], args.out, kind=args.kind or "horizon", by=args.by,
                         step_rule=args.step_rule)
        print(f"wrote {out}", file=sys.stderr)
        return 0
    if args.kind in ("horizon", "k") or args.by is not None:
        raise ConfigError(f"--kind {args.kind or 'decay'} --by: a sweep's figures; give a sweep id (swp-…)")
    ids: list[str] = []
    labels: dict[str, str] = {}
    for given in args.session_ids:   # a group: its arms, named as at the run
        group = _group_arms(db, given)
        if group is None:
            ids.append(resolve_session_id(db, given))
        else:
            ids += [sid for _, sid in group[1]]
            labels.update({sid: name for name, sid in group[1]})
    for spec in args.label:
        given, sep, text = spec.partition("=")
        if not sep or not given.strip() or not text.strip():
            raise ConfigError(f"--label expects ID=TEXT, got {spec!r}")
        labels[resolve_session_id(db, given.strip())] = text.strip()
    notes: list[str] = []
    out = plot(db, ids, args.out, kind=args.kind, sample=args.sample, step_rule=args.step_rule, notes=notes,
               title=args.title, labels=labels)
    for note in notes:
        print(note, file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_sessions(args: argparse.Namespace) -> int:
    from lhe_tui.reports.report import sessions_table
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import list_sessions, session_costs

    db = open_database(args.db, create=False, write=False)
    rows = list_sessions(db)
    if not rows:
        print(f"no sessions in {args.db}")
        return 0
    sys.stdout.write(sessions_table(rows, costs=session_costs(db, rows)))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from lhe_tui.cli.headless import print_summary
    from lhe_tui.reports.report import print_table, turn_accuracy_table
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import load_session, resolve_session_id, session_flags

    db = open_database(args.db, create=False, write=False)
    group = _group_arms(db, args.session_id)
    if group is not None:
        from lhe_tui.cli.headless import print_group_summary

        print_group_summary(db, *group, step_rule=args.step_rule)
        print(f"(per turn: `lhe-tui compare {group[0]}`; one arm: `lhe-tui show SESSION_ID`)")
        return 0
    session_id = resolve_session_id(db, args.session_id)
    if args.turn is not None:
        return _show_turn(db, session_id, args)
    if args.request or args.json:
        raise ConfigError("--request and --json go with --turn T (and --sample S)")
    print_summary(db, session_id, step_rule=args.step_rule)
    if load_session(db, session_id)["kind"] == "probe":
        from lhe_tui.reports.report import probe_report

        probe_report(db, session_id)
        return 0
    _print_forecast(db, session_id)
    flags = session_flags(db, session_id, args.step_rule)
    n = max((len(c) for c in flags.correct), default=0)
    if args.every is not None and args.every < 1:
        raise ConfigError(f"--every must be at least 1, got {args.every}")
    if not flags.answered:   # no turn was answered: no per-turn numbers either (the summary says "no data")
        return 0
    every = 1 if args.all else args.every if args.every is not None else max(1, n // 50)
    print_table(turn_accuracy_table(flags.correct, flags.update, every=every, status=flags.status,
                                    turns=flags.turns, k=flags.k, step_rule=flags.step_rule))
    return 0


def _show_turn(db, session_id: str, args: argparse.Namespace) -> int:
    """`show ID --turn T [--sample S] [--request] [--json]`: one turn, or the request it was sent."""
    import json

    if args.request:
        from lhe_tui.runs.turn_request import rebuild_request

        request = rebuild_request(db, session_id, args.sample, args.turn)
        print(json.dumps(request.as_dict(), indent=1) if args.json else "\n".join(request.lines()))
        return 0
    from dataclasses import asdict

    from lhe_tui.store.queries import load_turn_range

    records = load_turn_range(db, session_id, args.sample, args.turn, args.turn)
    if not records:
        raise ConfigError(f"session {session_id} has no stored turn {args.turn} of sample {args.sample}")
    record = records[0]
    if args.json:
        print(json.dumps(asdict(record), indent=1))
        return 0
    from lhe_tui.reports.report import turn_detail_lines

    print("\n".join(turn_detail_lines(session_id, record)))
    return 0


def _group_arms(db, given: str) -> tuple[str, list[tuple[str, str]]] | None:
    """A group id given where a session id may be: (the group id, its arms as (name, session id)); None for
    a session id."""
    from lhe_tui.store.groups import group_arms
    from lhe_tui.store.groups import is_group_id, resolve_group_id

    if not is_group_id(given):
        return None
    group_id = resolve_group_id(db, given)
    return group_id, group_arms(db, group_id)


def _print_forecast(db, session_id: str) -> None:
    """`show`: the forecast recomputed from the stored config beside the stored counts."""
    from lhe_tui.reports.report import forecast_table, print_table
    from lhe_tui.core.prices import load_prices
    from lhe_tui.analysis.estimate import forecast_stored
    from lhe_tui.store.queries import load_session, session_token_totals

    try:
        session = load_session(db, session_id)
        result = forecast_stored(session["config"], prices=load_prices(), fork_turn=session.get("fork_turn"))
    except LheError as exc:        # e.g. its dataset file is gone: the rest of the report still shows
        print(f"forecast vs actual: cannot recompute the forecast ({exc})")
        return
    print_table(forecast_table(result, session_token_totals(db, session_id)))


def _cmd_export(args: argparse.Namespace) -> int:
    from lhe_tui.cli.export import exporter
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    if args.output is not None and not args.output.resolve().parent.is_dir():   # before the store is read
        raise LheError(f"cannot write {args.output}: folder {args.output.parent} does not exist")
    db = open_database(args.db, create=False, write=False)
    from lhe_tui.store.sweeps import is_sweep_id

    group = _group_arms(db, args.session_id)
    if is_sweep_id(args.session_id):
        from lhe_tui.cli.export import export_sweep

        text = export_sweep(db, args.session_id, args.format, args.curves, args.step_rule)
    elif group is not None:
        from lhe_tui.cli.export import export_group

        text = export_group(db, group[1], args.format, args.curves, args.step_rule)
    else:
        text = exporter(args.format, args.curves)(db, resolve_session_id(db, args.session_id), args.step_rule)
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise LheError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from lhe_tui.store.doctor import diagnose, recover

    report = diagnose(args.db)
    for line in report.lines(hint=args.recover is None):
        print(line, flush=True)
    if args.recover is not None:   # a recovery that worked is a success, whatever the store's state
        result = recover(args.db, args.recover)
        for line in result.lines():
            print(line)
        return 0 if result.sound else 1
    return 0 if report.sound else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from lhe_tui.ui.launch import launch_tui

    return launch_tui(args, demo=True)


def _cmd_replay(args: argparse.Namespace) -> int:
    from lhe_tui.ui.launch import launch_tui

    return launch_tui(args, replay_id=args.session_id)


def _cmd_datasette(args: argparse.Namespace) -> int:
    from lhe_tui.cli.web import cmd_datasette

    return cmd_datasette(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from lhe_tui.cli.web import cmd_serve

    return cmd_serve(args)


COMMANDS = {"demo": _cmd_demo, "run": _cmd_run, "sessions": _cmd_sessions, "show": _cmd_show, "export": _cmd_export,
            "replay": _cmd_replay, "resume": _cmd_resume, "probe": _cmd_probe, "compare": _cmd_compare,
            "doctor": _cmd_doctor, "plot": _cmd_plot}
COMMANDS.update(datasette=_cmd_datasette, serve=_cmd_serve)   # the store and the TUI in a browser


def _fork_request(args: argparse.Namespace, parent_id: str):
    from lhe_tui.runs.overrides import overrides_from_namespace
    from lhe_tui.core.lineage import ForkEdit
    from lhe_tui.runs.fork import ForkRequest

    overrides = overrides_from_namespace(args, args.fork_run_dests, what="a fork", allow_turns=True)
    turns = overrides.pop("turns", None)
    if turns is not None and turns < 1:
        raise ConfigError(f"--turns must be at least 1, got {turns}")
    edit = (ForkEdit("set", args.set_answer) if args.set_answer is not None else
            ForkEdit("offset", args.offset) if args.offset is not None else
            ForkEdit("heal") if args.fork_heal else None)
    if edit is not None and edit.kind == "offset" and edit.amount == 0:
        raise ConfigError("--offset 0 changes nothing; give a non-zero offset")
    samples = tuple(args.sample) if args.sample else None
    return ForkRequest(parent_id=parent_id, turn=args.turn, samples=samples, edit=edit, overrides=overrides,
                       turns=turns)


def _cmd_fork(args: argparse.Namespace) -> int:
    from lhe_tui.runs.fork import create_forks, plan_fork
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    db = open_database(args.db, create=False)
    from lhe_tui.store.groups import is_group_id

    if is_group_id(args.session_id):
        return _fork_group(args, db)
    parent_id = resolve_session_id(db, args.session_id)
    plan = plan_fork(db, _fork_request(args, parent_id))
    if getattr(db, "readonly", False):
        raise ConfigError(f"{args.db} is read-only: a fork cannot be stored there")
    # a missing price (--max-cost), key or local model: one line, before anything is written
    fork_id = create_forks(db, [plan])[0]
    print(f"{plan.describe()}: session {fork_id}", file=sys.stderr)
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        db.conn.close()
        return launch_tui(args, resume_id=fork_id, resume_overrides={})
    return _resume_headless(db, fork_id)      # a fork is written unfinished: running it is resuming it


def _fork_group(args: argparse.Namespace, db) -> int:
    """`fork grp-… --turn T …`: every arm forked at T with the same edit and flags, as a new group whose arms
    run together (as `resume grp-…`)."""
    from lhe_tui.runs.fork import create_forks, plan_group_fork
    from lhe_tui.store.groups import resolve_group_id

    group_id = resolve_group_id(db, args.session_id)
    if getattr(db, "readonly", False):
        raise ConfigError(f"{args.db} is read-only: a fork cannot be stored there")
    new_group, plans = plan_group_fork(db, group_id, _fork_request(args, group_id))
    for plan, fork_id in zip(plans, create_forks(db, plans)):     # all checked first, all or none stored
        print(f"arm {plan.lineage.arm}: {plan.describe()}: session {fork_id}", file=sys.stderr)
    print(f"group {new_group}", file=sys.stderr)
    return _resume_group(args, db, new_group, {})


COMMANDS["fork"] = _cmd_fork


def _cmd_sweep(args: argparse.Namespace) -> int:
    from lhe_tui.cli.sweep_cmd import cmd_sweep

    return cmd_sweep(args)


COMMANDS["sweep"] = _cmd_sweep


_PRICED = {None, "demo", "run", "sweep", "resume", "sessions", "show", "export", "compare", "replay", "serve"}


def _check_prices(args: argparse.Namespace) -> None:
    """A command that shows costs reads the price files first: a bad one is a one-line error before anything
    runs. `--prices` is handed on (to the TUI, a run process) as $LHE_TUI_PRICES."""
    if args.command not in _PRICED:
        return
    from lhe_tui.core.prices import PRICES_ENV, load_prices

    if getattr(args, "prices", None) is not None:
        os.environ[PRICES_ENV] = str(args.prices)
    load_prices()


def _store_missing(args: argparse.Namespace):
    """The --db path of a command that may create the store, when no store is there yet; else None."""
    from pathlib import Path

    db = getattr(args, "db", None)
    if db is None or args.command not in (None, "run", "probe", "demo"):
        return None
    path = Path(db)
    try:
        return None if path.exists() else path
    except OSError:      # a folder this user cannot enter: the command says so in its own words
        return None


def main(argv: list[str] | None = None) -> int:
    from lhe_tui.cli.args import build_parser

    args = None
    prices_env = os.environ.get("LHE_TUI_PRICES")
    try:
        args = build_parser().parse_args(argv)
        _check_prices(args)
        new_store = _store_missing(args)
        if args.command is None:
            from lhe_tui.ui.launch import launch_tui

            code = launch_tui(args)
        else:
            code = COMMANDS[args.command](args)
        if code == 0 and new_store is not None and new_store.exists():   # a typo in --db splits the runs: say
            print(f"lhe-tui: new store created at {new_store}", file=sys.stderr)   # so (an error stays one line)
        return code
    except sqlite3.Error as exc:     # the store failed under a command (a damaged page met while reading)
        from lhe_tui.store.database import DEFAULT_DB, store_error

        print(f"lhe-tui: error: {store_error(getattr(args, 'db', DEFAULT_DB), exc)}", file=sys.stderr)
        return 1
    except LheError as exc:
        print(f"lhe-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lhe-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:     # a file or folder this user may not use, a read-only file system, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lhe-tui: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:  # --prices holds for this command only (main is called in-process by tests and scripts)
        if prices_env is None:
            os.environ.pop("LHE_TUI_PRICES", None)
        else:
            os.environ["LHE_TUI_PRICES"] = prices_env


if __name__ == "__main__":
    sys.exit(main())
