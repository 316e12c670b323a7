"""`lhe-tui`: the command-line entry point. User errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from lhe_tui.cli.fork_cmd import cmd_fork
from lhe_tui.cli.read_cmds import cmd_compare, cmd_export, cmd_plot, cmd_sessions, cmd_show
from lhe_tui.cli.run_cmd import cmd_resume, cmd_run, say_paper
from lhe_tui.common.errors import LheError


def _cmd_probe(args: argparse.Namespace) -> int:
    from lhe_tui.runs.probe import check_target_turn, parse_rates, prepare_probe
    from lhe_tui.runs.run_flags import config_from_args
    from lhe_tui.store.database import open_database

    check_target_turn(args.target_turn)     # before the TUI opens or anything is stored
    rates = parse_rates(args.rates)
    config = config_from_args(args)
    say_paper(config)
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


COMMANDS = {"demo": _cmd_demo, "run": cmd_run, "sessions": cmd_sessions, "show": cmd_show, "export": cmd_export,
            "replay": _cmd_replay, "resume": cmd_resume, "probe": _cmd_probe, "compare": cmd_compare,
            "doctor": _cmd_doctor, "plot": cmd_plot}
COMMANDS.update(datasette=_cmd_datasette, serve=_cmd_serve)   # the store and the TUI in a browser


COMMANDS["fork"] = cmd_fork


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
