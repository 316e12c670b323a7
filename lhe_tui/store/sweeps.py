"""Sweeps in the store (issue 24): the `sweeps` table (the plan: runs, axes, configs, options) and the sessions
linked to a sweep (`sessions.sweep_id`, `sessions.sweep_run`; migration m007)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import StoreError
from lhe_tui.core.lineage import new_id
from lhe_tui.store.queries import has_column, one_match

if TYPE_CHECKING:
    from sqlite_utils import Database

SWEEP_PREFIX = "swp-"


def new_sweep_id() -> str:
    return new_id(SWEEP_PREFIX)


def is_sweep_id(given: str) -> bool:
    return given.startswith(SWEEP_PREFIX)


def has_sweeps(db: Database) -> bool:
    return "sweeps" in db.table_names()


def save_sweep(db: Database, sweep_id: str, name: str, source: str, plan: dict[str, Any]) -> None:
    from lhe_tui.store.writer import now_iso

    with db.conn:
        db["sweeps"].insert({"id": sweep_id, "name": name, "source": source, "created_at": now_iso(),
                             "plan_json": json.dumps(plan)}, pk="id")


def resolve_sweep_id(db: Database, given: str) -> str:
    """A full sweep id, or its start or end when only one sweep matches (as `resolve_session_id`)."""
    if not has_sweeps(db):
        raise StoreError(f"no sweep {given!r} (this store has no sweeps)")
    body = given[len(SWEEP_PREFIX):] if is_sweep_id(given) else given
    rows = [r[0] for r in db.execute(
        "SELECT id FROM sweeps WHERE id = :given OR substr(id, 1, :n) = :given OR substr(id, -:m) = :body "
        "ORDER BY id", {"given": given, "n": len(given), "m": len(body), "body": body}).fetchall()]
    return one_match(given, rows, "sweep")


def load_sweep_row(db: Database, sweep_id: str) -> dict[str, Any]:
    row = next(db.query("SELECT id, name, source, created_at, plan_json FROM sweeps WHERE id = ?", [sweep_id]), None)
    if row is None:
        raise StoreError(f"no sweep {sweep_id!r} (see `lhe-tui sessions`)")
    try:
        row["plan"] = json.loads(row.pop("plan_json") or "{}")
    except ValueError:
        raise StoreError(f"sweep {sweep_id}: its stored plan is unreadable") from None
    return row


def link_session(db: Database, session_id: str, sweep_id: str, run_name: str) -> None:
    """Mark a session (its row written by its writer's RunStarted) as the sweep's run `run_name`."""
    with db.conn:
        db.execute("UPDATE sessions SET sweep_id = ?, sweep_run = ? WHERE id = ?", [sweep_id, run_name, session_id])


def sweep_sessions(db: Database, sweep_id: str) -> dict[str, dict[str, Any]]:
    """{run name: its latest session's id, status, kind, n_samples, turns, turns done}."""
    if not has_column(db, "sessions", "sweep_id"):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in db.query("SELECT s.id, s.sweep_run, s.status, s.kind, s.n_samples, s.turns, s.message, "
                        "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) AS done "
                        "FROM sessions s WHERE s.sweep_id = ? ORDER BY s.created_at, s.rowid", [sweep_id]):
        out[row["sweep_run"]] = row
    return out


def list_sweeps(db: Database) -> list[dict[str, Any]]:
    if not has_sweeps(db):
        return []
    return list(db.query("SELECT id, name, source, created_at FROM sweeps ORDER BY created_at, id"))
