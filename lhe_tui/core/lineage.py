"""Where a session comes from: a fork of another session (issue 15) and/or an arm of a group run.

Stored in the `sessions` table's `parent_id`, `fork_turn`, `fork_json`, `group_id` and `arm` columns
(migration m005); carried by RunStarted so the live view and the replay mark a fork's inherited turns.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

EDIT_KINDS = ("set", "offset", "heal")
FIRST_ERROR = "first-error"
"""A fork's turn given as `first-error`: the chosen samples' first error (they must agree)."""


@dataclass(frozen=True)
class ForkEdit:
    """What a fork changes in the history at its fork turn: the answer the model sees there becomes `value`.

    kind: set (--set-answer V), offset (--offset D: the answer shown + D) or heal (--heal: the gold sum)."""

    kind: str
    amount: int | None = None     # set: the value; offset: D; heal: None

    def describe(self) -> str:
        if self.kind == "set":
            return f"answer set to {self.amount}"
        if self.kind == "offset":
            return f"answer {self.amount:+d}"
        return "healed to the gold sum"

    def short(self) -> str:
        """For labels: `healed`, `set 999`, `+3`."""
        return "healed" if self.kind == "heal" else f"set {self.amount}" if self.kind == "set" else f"{self.amount:+d}"


@dataclass(frozen=True)
class Lineage:
    """A session's parent (a fork) and group (an arm); every field None for a plain run.

    parent_samples[i] is the parent's sample that the fork's sample i continues (a fork numbers its samples
    from 0); parent_model names the model whose replies fill the inherited turns when the fork changed it."""

    parent_id: str | None = None
    fork_turn: int | None = None
    parent_samples: tuple[int, ...] = ()
    edit: ForkEdit | None = None
    parent_model: str | None = None
    group_id: str | None = None
    arm: str | None = None
    parent_group_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_fork(self) -> bool:
        return self.parent_id is not None

    @property
    def is_plain(self) -> bool:
        return self.parent_id is None and self.group_id is None

    def fork_json(self) -> str | None:
        if not self.is_fork:
            return None
        data: dict[str, Any] = {"samples": list(self.parent_samples)}
        if self.edit is not None:
            data["edit"] = {"kind": self.edit.kind, "amount": self.edit.amount}
        if self.parent_model is not None:
            data["parent_model"] = self.parent_model
        if self.parent_group_id is not None:
            data["parent_group_id"] = self.parent_group_id
        data.update(self.extra)
        return json.dumps(data)

    def to_row(self) -> dict[str, Any]:
        """The `sessions` columns (migration m005)."""
        return {"parent_id": self.parent_id, "fork_turn": self.fork_turn, "fork_json": self.fork_json(),
                "group_id": self.group_id, "arm": self.arm}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Lineage:
        """From a `sessions` row (columns missing in a row read before m005: a plain run)."""
        try:
            data = json.loads(row.get("fork_json") or "{}")
        except ValueError:
            data = {}
        edit = data.pop("edit", None)
        return cls(parent_id=row.get("parent_id"), fork_turn=row.get("fork_turn"),
                   parent_samples=tuple(data.pop("samples", ())),
                   edit=ForkEdit(edit["kind"], edit.get("amount")) if isinstance(edit, dict) else None,
                   parent_model=data.pop("parent_model", None), group_id=row.get("group_id"), arm=row.get("arm"),
                   parent_group_id=data.pop("parent_group_id", None), extra=data)

    def label(self) -> str:
        """A short label for lists and status lines: `fork of 115417-5b3c @40 (healed)`, `arm inj`."""
        parts = []
        if self.arm is not None:
            parts.append(f"arm {self.arm}")
        if self.is_fork:
            text = f"fork of {short_id(self.parent_id or '')} @{self.fork_turn}"
            if self.edit is not None:
                text += f" ({self.edit.describe()})"
            if self.parent_model:
                text += f", prefix by {self.parent_model}"
            parts.append(text)
        return ", ".join(parts)


def new_id(prefix: str = "") -> str:
    """A new session id (`20261206-071000-ab12`: started then, 4 random hex digits), or a group's or a sweep's
    with their prefix (`grp-`, `swp-`)."""
    return prefix + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def short_id(session_id: str) -> str:
    """An id without its date, as the TUI shows it: 20261206-071000-ab12 -> 071000-ab12."""
    head, sep, tail = session_id.partition("-")
    return tail if sep and tail and head.isdigit() and len(head) == 8 else session_id


def tree_order(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Session list rows (each with `id` and `parent_id`) with every fork right under its parent, forks of
    forks deeper: (row, depth) in the rows' own order otherwise. A fork whose parent is not in `rows` (deleted,
    or filtered out) stays at the top level."""
    ids = {row["id"] for row in rows}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for row in rows:
        parent = row.get("parent_id")
        if parent is not None and parent in ids and parent != row["id"]:
            children.setdefault(parent, []).append(row)
        else:
            roots.append(row)
    out: list[tuple[dict[str, Any], int]] = []
    seen: set[str] = set()

    def visit(row: dict[str, Any], depth: int) -> None:
        if row["id"] in seen:      # a cycle can only come from a hand-edited store: show each row once
            return
        seen.add(row["id"])
        out.append((row, depth))
        for child in children.get(row["id"], ()):
            visit(child, depth + 1)

    for row in roots:
        visit(row, 0)
    for row in rows:               # rows only reachable through a cycle
        if row["id"] not in seen:
            visit(row, 0)
    return out


def tree_prefix(depth: int) -> str:
    """The id column's indent for a fork `depth` levels down: `└ `, `  └ `, ..."""
    return "" if depth <= 0 else "  " * (depth - 1) + "└ "
