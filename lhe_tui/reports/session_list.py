"""The sessions list's cells, shared by the CLI's table and the TUI's sessions screen: one line a session, groups with their arms under them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lhe_tui.core.lineage import tree_order, tree_prefix
from lhe_tui.reports.fitted_table import Column, fitted_text
from lhe_tui.reports.report import NO_DATA, fmt_horizon, fmt_pct

# The columns a reader looks for first come first: the TUI's table shows them at 80 columns, and the CLI's
# leaves out the later ones (the highest `keep` first) when the terminal is narrow.
SESSION_SPEC = (Column("id", keep=0), Column("status", keep=1), Column("task acc", keep=1, right=True),
                Column("H_0.5", keep=1, right=True), Column("provider/model", keep=2, fold=12),
                Column("turns", keep=3, right=True), Column("samples", keep=4, right=True),
                Column("K", keep=5, right=True), Column("created", keep=6), Column("protocol", keep=7))


SESSION_COLUMNS = tuple(c.name for c in SESSION_SPEC)


# The CLI's list adds the cost, the first column left out on a narrow terminal.
CLI_SESSION_SPEC = (*SESSION_SPEC, Column("cost", keep=8, right=True))


def session_cells(row: dict[str, Any], depth: int = 0) -> tuple[str, ...]:
    """`depth`: a fork's level under its parent (lhe_tui.core.lineage.tree_order): the id is indented. An arm
    of a group is named before its model (`arm inj: sim/sim-1`)."""
    model = f"{row['provider']}/{row['model']}" + (" (sim)" if row.get("simulated") else "")
    if row.get("group_id"):
        model = f"arm {row.get('arm')}: {model}"
    elif row.get("sweep_id"):
        model = f"run {row.get('sweep_run')}: {model}"
    kind = f" {probe_cell(row.get('probe_accuracy') or [], row.get('turns'))}" if row.get("kind") == "probe" else ""
    fork = f" @{row['fork_turn']}" if row.get("parent_id") and row.get("fork_turn") is not None else ""
    if row.get("answered", 1):
        accuracy, horizon_05 = fmt_pct(row.get("final_task_accuracy")), fmt_horizon(row.get("horizon_05"))
    else:
        accuracy = horizon_05 = NO_DATA
    return (tree_prefix(depth) + row["id"] + fork, row["status"], accuracy, horizon_05,
            model + kind, str(row["turns"]), str(row["n_samples"]), str(row["k"]),
            (row.get("created_at") or "")[:19].replace("T", " "), row.get("protocol") or "lenient")


def probe_cell(accuracy: list[tuple[float, int, float]], target: object) -> str:
    """A probe in a list: its target turn and its accuracy there at the lowest and highest history error rate."""
    if not accuracy:
        return f"probe @{target} (no answers)"
    (r0, _, a0), (r1, _, a1) = accuracy[0], accuracy[-1]
    ends = f"{fmt_pct(a0)} at r={r0:g}" + (f" → {fmt_pct(a1)} at r={r1:g}" if len(accuracy) > 1 else "")
    return f"probe @{target}: {ends}"


def sessions_table(rows: list[dict[str, Any]], *, width: int | None = None,
                   costs: dict[str, str] | None = None) -> str:
    """The session list as text (`fitted_text`: a store holds hundreds of sessions). `costs`: each session's cost cell (core.prices.cost_cell), as a column the fitting drops first. Forks are
    listed under their parents (tree_order), a group's arms together under a line naming the group and its
    arms (`grouped_rows`; issue 15)."""
    cells = []
    for entry, depth in grouped_rows(rows):
        if isinstance(entry, GroupLine):
            row_cells = group_cells(entry, depth)
            cost = "-"
        else:
            row_cells = session_cells(entry, depth)
            if entry.get("group_id") or entry.get("sweep_id"):
                row_cells = ("  " + row_cells[0], *row_cells[1:])
            cost = (costs or {}).get(entry["id"], "-")
        cells.append(row_cells if costs is None else (*row_cells, cost))
    return fitted_text("sessions", list(SESSION_SPEC if costs is None else CLI_SESSION_SPEC), cells, width=width)


@dataclass(frozen=True)
class GroupLine:
    """The line a group's arms are listed under: the group id and its arms (their list rows, in arm order)."""

    group_id: str
    arms: tuple[dict[str, Any], ...]

    @property
    def names(self) -> list[str]:
        return [str(row.get("arm") or row.get("sweep_run")) for row in self.arms]


def grouped_rows(rows: list[dict[str, Any]]) -> list[tuple[GroupLine | dict[str, Any], int]]:
    """(entry, depth): the rows with forks under their parents (depth: how far down), except that a group's
    arms (a sweep's runs) follow a GroupLine, all at the place (and depth) of its first arm in that order."""
    ordered = tree_order(rows)
    members: dict[str, list[dict[str, Any]]] = {}
    for row, _ in ordered:
        group = row.get("group_id") or row.get("sweep_id")
        if group:
            members.setdefault(group, []).append(row)
    for arms in members.values():   # the list is newest first; a group's arms go in the order they were given
        arms.reverse()
    out: list[tuple[GroupLine | dict[str, Any], int]] = []
    for row, depth in ordered:
        group = row.get("group_id") or row.get("sweep_id")
        if not group:
            out.append((row, depth))
        elif members.get(group) and row is members[group][-1]:    # the group's newest arm: its place
            out.append((GroupLine(group, tuple(members[group])), depth))
            out.extend((member, depth) for member in members[group])
    return out


def group_cells(line: GroupLine, depth: int = 0) -> tuple[str, ...]:
    """A group line's cells in SESSION_SPEC's columns: its id, its arms' status (one word when they agree),
    its arms' names and their shared task's shape."""
    first = line.arms[0]
    statuses = sorted({str(row.get("status")) for row in line.arms})
    status = statuses[0] if len(statuses) == 1 else "/".join(statuses)
    what = (f"sweep of {len(line.arms)} runs" if line.group_id.startswith("swp-")
            else f"group of {len(line.arms)} arms: {', '.join(line.names)}")
    return (tree_prefix(depth) + line.group_id, status, "", "", what,
            str(first.get("turns")), str(first.get("n_samples")), str(first.get("k")),
            (first.get("created_at") or "")[:19].replace("T", " "), "")
