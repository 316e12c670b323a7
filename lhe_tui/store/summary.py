"""A session's headline metrics, computed from its stored turns with the shared metric functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lhe_tui.store.queries import session_flags

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.metrics import RunSummary


def session_summary(db: Database, session_id: str, s: float = 0.5, *, step_rule: str | None = None) -> RunSummary:
    """`step_rule`: score turn accuracy under this rule (None: the session's stored one)."""
    from lhe_tui.metrics import summarize   # numpy: only when a summary is made, not whenever a store opens

    flags = session_flags(db, session_id, step_rule)
    return summarize(flags.correct, flags.update, s, status=flags.status, turns=flags.turns, k=flags.k,
                     answered=flags.answered)
