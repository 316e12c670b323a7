"""Groups of sessions run side by side as arms over one task (issue 15): ids, lookup, members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import ConfigError, StoreError
from lhe_tui.core.lineage import new_id
from lhe_tui.store.queries import has_column, one_match

if TYPE_CHECKING:
    from sqlite_utils import Database

GROUP_PREFIX = "grp-"


def new_group_id() -> str:
    """`grp-` and a session-style id: told apart from a session id at a glance and by `is_group_id`."""
    return new_id(GROUP_PREFIX)


def is_group_id(given: str) -> bool:
    return given.startswith(GROUP_PREFIX)


def resolve_group_id(db: Database, given: str) -> str:
    """A full group id, or its start or end when only one group matches (as `resolve_session_id`)."""
    if not has_column(db, "sessions", "group_id"):
        raise StoreError(f"no group {given!r} (this store has no groups)")
    body = given[len(GROUP_PREFIX):] if is_group_id(given) else given
    rows = [r[0] for r in db.execute(
        "SELECT DISTINCT group_id FROM sessions WHERE group_id IS NOT NULL AND (group_id = :given OR "
        "substr(group_id, 1, :n) = :given OR substr(group_id, -:m) = :body) ORDER BY group_id",
        {"given": given, "n": len(given), "m": len(body), "body": body}).fetchall()]
    return one_match(given, rows, "group")


def group_members(db: Database, group_id: str) -> list[dict[str, Any]]:
    """The group's sessions (id, arm, status, ...) in the order its arms were given."""
    rows = list(db.query("SELECT id, arm, status, model, provider, created_at FROM sessions WHERE group_id = ? "
                         "ORDER BY created_at, rowid", [group_id]))
    if not rows:
        raise StoreError(f"no group {group_id!r} (see `lhe-tui sessions`)")
    return rows


def group_of(db: Database, session_id: str) -> str | None:
    """The group a session is an arm of, or None."""
    if not has_column(db, "sessions", "group_id"):
        return None
    row = db.execute("SELECT group_id FROM sessions WHERE id = ?", [session_id]).fetchone()
    return row[0] if row else None


def group_arms(db: Database, group_id: str, arms: list[str] | None = None) -> list[tuple[str, str]]:
    """(arm name, session id) of the group's arms in order; `arms`: only these, in this order (the first is
    the baseline the others are compared with). LheError (one line) for an arm the group does not have."""
    members = [(m.get("arm") or m["id"], m["id"]) for m in group_members(db, group_id)]
    if arms is None:
        return members
    by_name = dict(members)
    missing = [name for name in arms if name not in by_name]
    if missing:
        raise ConfigError(f"--arms: group {group_id} has no arm {missing[0]!r} (arms: "
                          f"{', '.join(name for name, _ in members)})")
    return [(name, by_name[name]) for name in arms]
