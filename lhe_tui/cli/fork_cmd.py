"""`lhe-tui fork ID --turn T …`: its options (the command runs in lhe_tui.cli.main, with lhe_tui.runs.fork)."""

from __future__ import annotations

import argparse
import sys

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
    from lhe_tui.cli.args import ID_HELP, THEME_HELP, add_db, add_run_options, int64
    from lhe_tui.runs.overrides import suppress_defaults

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
