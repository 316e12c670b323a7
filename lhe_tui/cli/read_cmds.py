"""The commands that read stored runs: sessions, show, compare, plot and export."""

from __future__ import annotations

import argparse
import sys

from lhe_tui.common.errors import ConfigError, LheError


def cmd_compare(args: argparse.Namespace) -> int:
    from lhe_tui.analysis.compare import (compare_rows, default_turns, no_data_note, parse_turns, session_curves,
                                          with_data)
    from lhe_tui.reports.compare_tables import compare_table
    from lhe_tui.reports.fitted_table import print_table
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
        from lhe_tui.reports.compare_tables import print_group_comparison

        fork = arms[1][0]   # `fork@T` when a fork is compared with its parent
        after = int(fork[5:]) if fork.startswith("fork@") and fork[5:].isdigit() else None
        print_group_comparison(db, arms, turns, after=after, step_rule=args.step_rule)
        return 0
    ids = [resolve_session_id(db, sid) for sid in args.session_ids]
    if args.tui:
        if args.step_rule is not None:
            raise ConfigError("compare --tui scores each session under its stored step rule: leave out --step-rule")
        from lhe_tui.ui.launch import launch_compare

        db.conn.close()
        return launch_compare(args.db, ids, theme=getattr(args, "theme", None), turns=turns)
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


def cmd_plot(args: argparse.Namespace) -> int:
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


def cmd_sessions(args: argparse.Namespace) -> int:
    from lhe_tui.reports.session_list import sessions_table
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import list_sessions, session_costs

    db = open_database(args.db, create=False, write=False)
    rows = list_sessions(db)
    if not rows:
        print(f"no sessions in {args.db}")
        return 0
    sys.stdout.write(sessions_table(rows, costs=session_costs(db, rows)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lhe_tui.cli.headless import print_summary
    from lhe_tui.reports.fitted_table import print_table
    from lhe_tui.reports.report import turn_accuracy_table
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
        from lhe_tui.reports.probe_tables import probe_report

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
    from lhe_tui.store.groups import group_arms, is_group_id, resolve_group_id

    if not is_group_id(given):
        return None
    group_id = resolve_group_id(db, given)
    return group_id, group_arms(db, group_id)


def _print_forecast(db, session_id: str) -> None:
    """`show`: the forecast recomputed from the stored config beside the stored counts."""
    from lhe_tui.analysis.estimate import forecast_stored
    from lhe_tui.core.prices import load_prices
    from lhe_tui.reports.fitted_table import print_table
    from lhe_tui.reports.report import forecast_table
    from lhe_tui.store.queries import load_session, session_token_totals

    try:
        session = load_session(db, session_id)
        result = forecast_stored(session["config"], prices=load_prices(), fork_turn=session.get("fork_turn"))
    except LheError as exc:        # e.g. its dataset file is gone: the rest of the report still shows
        print(f"forecast vs actual: cannot recompute the forecast ({exc})")
        return
    print_table(forecast_table(result, session_token_totals(db, session_id)))


def cmd_export(args: argparse.Namespace) -> int:
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
