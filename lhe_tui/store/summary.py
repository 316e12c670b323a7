"""A session's headline metrics, computed from its stored turns with the shared metric functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lhe_tui.store.queries import session_flags

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.metrics import RunSummary
    from lhe_tui.store.tally import RunTally


def session_summary(db: Database, session_id: str, s: float = 0.5, *, step_rule: str | None = None,
                    tally: RunTally | None = None) -> RunSummary:
    """`step_rule`: score turn accuracy under this rule (None: the session's stored one). `tally`: its
    writer's tally of the turns, read instead of them (`session_flags`)."""
    from lhe_tui.metrics import summarize   # numpy: only when a summary is made, not whenever a store opens

    flags = session_flags(db, session_id, step_rule, tally)
    return summarize(flags.correct, flags.update, s, status=flags.status, turns=flags.turns, k=flags.k,
                     answered=flags.answered)
