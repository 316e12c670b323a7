"""`lhe-tui fork ID --turn T …`: a stored run's prefix, optionally edited, continued live (lhe_tui.fork)."""

from __future__ import annotations

import argparse
import sys

from lhe_tui.errors import ConfigError

EDIT_HELP = "the edit at turn T (at most one): "


def _turn(text: str) -> int | str:
    from lhe_tui.fork import FIRST_ERROR

    if text.strip() == FIRST_ERROR:
        return FIRST_ERROR
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a turn number or {FIRST_ERROR}, got {text!r}") from None


def add_fork_command(sub: argparse._SubParsersAction) -> None:
    from lhe_tui.cli.args import ID_HELP, THEME_HELP, add_db, add_run_options
    from lhe_tui.cli.overrides import suppress_defaults

    fork = sub.add_parser(
        "fork", conflict_handler="resolve",
        help="start a new run from a stored run's history up to turn T (edited at T if asked), live from T+1",
        description="Fork a stored run: the new session's samples start with the parent's history up to turn T, "
                    "exactly as the model saw it (injections included), optionally edited at T, and go on live "
                    "from T+1. Run flags given here (--model, --provider, --mode, --window, --turns, ...) replace "
                    "the parent's; the task (dictionary and keys) stays. A group id forks every arm.")
    fork.add_argument("session_id", help=ID_HELP + "; or a group id (grp-...): every arm is forked")
    fork.add_argument("--turn", type=_turn, required=True, metavar="T|first-error",
                      help="the last inherited turn; first-error: the samples' first error (they must agree)")
    which = fork.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, action="append", default=None, metavar="S",
                       help="fork only this sample of the parent (repeatable); its turns are numbered from 0")
    which.add_argument("--all-samples", action="store_true", help="fork every sample (the default)")
    edit = fork.add_mutually_exclusive_group()
    edit.add_argument("--set-answer", type=int, default=None, metavar="V",
                      help=EDIT_HELP + "the history shows V as the answer at T")
    edit.add_argument("--offset", type=int, default=None, metavar="D",
                      help=EDIT_HELP + "the history shows the answer at T plus D")
    run_dests = set()
    before = {a.dest for a in fork._actions}
    add_run_options(fork)
    run_dests = {a.dest for a in fork._actions if a.option_strings} - before
    # --heal here is an edit (the gold answer at T), not the run's healed-history policy
    edit.add_argument("--heal", action="store_true", dest="fork_heal",
                      help=EDIT_HELP + "the history shows the gold answer at T (a healed counterfactual)")
    run_dests.discard("heal")
    suppress_defaults(fork, run_dests)
    fork.set_defaults(fork_run_dests=run_dests)
    fork.add_argument("--headless", action="store_true", help="no TUI: a progress bar, then a summary")
    fork.add_argument("--theme", default=argparse.SUPPRESS, help=THEME_HELP)
    add_db(fork)


def request_from_args(args: argparse.Namespace, parent_id: str):
    from lhe_tui.cli.overrides import overrides_from_namespace
    from lhe_tui.core.lineage import ForkEdit
    from lhe_tui.fork import ForkRequest

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


def cmd_fork(args: argparse.Namespace) -> int:
    from lhe_tui.fork import create_fork, plan_fork
    from lhe_tui.runner.budget import budget_for
    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import resolve_session_id

    db = open_database(args.db, create=False)
    parent_id = resolve_session_id(db, args.session_id)
    plan = plan_fork(db, request_from_args(args, parent_id))
    budget_for(plan.config)          # --max-cost on a model with no price: one line, before anything is written
    if getattr(db, "readonly", False):
        raise ConfigError(f"{args.db} is read-only: a fork cannot be stored there")
    fork_id = create_fork(db, plan)
    print(f"{plan.describe()}: session {fork_id}", file=sys.stderr)
    if not args.headless:
        from lhe_tui.ui.launch import launch_tui

        db.conn.close()
        return launch_tui(args, resume_id=fork_id, resume_overrides={})
    from lhe_tui.cli.headless import run_headless
    from lhe_tui.providers.local_server import prepare_own_server, serving
    from lhe_tui.resume_state import load_resume_state
    from lhe_tui.session import prepare_resume

    state = load_resume_state(db, fork_id)
    server, _, provider = prepare_own_server(state.config)
    with serving(server):
        prepared = prepare_resume(db, fork_id, provider=provider, stream_deltas=False, state=state)
        config = prepared.runner.config
        done = sum(len(h) for h in prepared.runner.history.values())
        return run_headless(prepared, db, config.samples * config.turns - done, server)
