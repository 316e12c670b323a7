"""`lhe-tui fork ID --turn T …`: its options (the command runs in lhe_tui.cli.main, with lhe_tui.runs.fork)."""

from __future__ import annotations

import argparse
import sys

from lhe_tui.cli.run_cmd import resume_group, resume_headless
from lhe_tui.common.errors import ConfigError

EDIT_HELP = "the edit at turn T (at most one): "


def _turn(text: str) -> int | str:
    from lhe_tui.core.config import LIMITS
    from lhe_tui.core.lineage import FIRST_ERROR

    if text.strip() == FIRST_ERROR:
        return FIRST_ERROR
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a turn number or {FIRST_ERROR}, got {text!r}") from None
    if not 0 <= value <= LIMITS["turns"]:
        raise argparse.ArgumentTypeError(f"must be within 0..{LIMITS['turns']:,}, got {_digits(text)}")
    return value


def _digits(text: str) -> str:
    text = text.strip()
    return repr(text) if len(text) <= 24 else f"a number of {len(text)} digits"


def _answer(text: str) -> int:
    """--set-answer V, --offset D: a whole number an answer in the store can be (within ±10^15)."""
    from lhe_tui.core.bounds import ANSWER_BOUND

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -ANSWER_BOUND <= value <= ANSWER_BOUND:
        raise argparse.ArgumentTypeError(f"must be within ±{ANSWER_BOUND:,}, got {_digits(text)}")
    return value


def add_fork_command(sub: argparse._SubParsersAction) -> None:
    from lhe_tui.cli.help_text import ID_HELP, THEME_HELP
    from lhe_tui.runs.overrides import suppress_defaults
    from lhe_tui.runs.run_flags import add_db, add_run_options, int64

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
    which.add_argument("--sample", type=int64, action="append", default=None, metavar="S",
                       help="fork only this sample of the parent (repeatable); its turns are numbered from 0")
    which.add_argument("--all-samples", action="store_true", help="fork every sample (the default)")
    edit = fork.add_mutually_exclusive_group()
    edit.add_argument("--set-answer", type=_answer, default=None, metavar="V",
                      help=EDIT_HELP + "the history shows V as the answer at T")
    edit.add_argument("--offset", type=_answer, default=None, metavar="D",
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


def _fork_request(args: argparse.Namespace, parent_id: str):
    from lhe_tui.core.lineage import ForkEdit
    from lhe_tui.runs.fork import ForkRequest
    from lhe_tui.runs.overrides import overrides_from_namespace

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
    return resume_headless(db, fork_id)      # a fork is written unfinished: running it is resuming it


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
    return resume_group(args, db, new_group, {})
