"""Fork a stored run at a turn into a new session that goes on live (issue 15): a counterfactual.

The fork's samples start with their parent's history up to turn T exactly as the model saw it
(injections included), optionally edited at T, and continue from T + 1. `plan_fork` checks everything and
writes nothing; `create_fork` writes the fork as an unfinished session whose turns 1..T are copies of the
parent's (`turns.inherited = 1`: played and paid for there), so running it is resuming it
(`lhe_tui.runs.session.prepare_resume`), and a fork that crashes resumes as a fork. No Textual here.

An edit is an injection into turn T's history answer made before turn T + 1 is sent (source `fork`):
answer accuracy after T is scored against the gold sum, turn accuracy (the update) against the edited value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import FIRST_ERROR, ForkEdit, Lineage, short_id
from lhe_tui.common.errors import LheError, StoreError
from lhe_tui.store.queries import live_status, load_samples, load_session
from lhe_tui.store.writer import now_iso

if TYPE_CHECKING:
    from sqlite_utils import Database



class ForkError(LheError):
    """A fork that cannot be made as asked (one line)."""


@dataclass(frozen=True)
class ForkRequest:
    """What the user asked for. `turn`: a turn number or FIRST_ERROR; `samples`: the parent's sample
    indices (None: all); `overrides`: RunConfig fields (lhe_tui.runs.overrides); `turns`: a new length."""

    parent_id: str
    turn: int | str
    samples: tuple[int, ...] | None = None
    edit: ForkEdit | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    turns: int | None = None
    group_id: str | None = None     # set when a group is forked: the new group
    arm: str | None = None


@dataclass(frozen=True)
class ForkPlan:
    """A checked fork: what `create_fork` writes."""

    parent: dict[str, Any]
    config: RunConfig
    lineage: Lineage
    keys: tuple[tuple[str, ...], ...]           # per fork sample, the whole key sequence (turns x K)
    edits: tuple[tuple[int, int | None], ...]   # per fork sample: (value shown at T after the edit, before)

    @property
    def fork_turn(self) -> int:
        return self.lineage.fork_turn or 0

    def describe(self) -> str:
        """One line: what the fork is."""
        samples = self.lineage.parent_samples
        which = (f"sample {samples[0]}" if len(samples) == 1 else
                 f"{len(samples)} samples" if list(samples) != list(range(len(samples))) or
                 len(samples) != self.parent["n_samples"] else f"all {len(samples)} samples")
        text = (f"fork of {short_id(self.parent['id'])} at turn {self.fork_turn} ({which}), "
                f"turns {self.fork_turn + 1}..{self.config.turns} live with {self.config.provider}"
                + (f":{self.config.model_label}" if self.config.model_label else ""))
        if self.lineage.edit is not None:
            text += f"; {self.lineage.edit.describe()} at turn {self.fork_turn}"
        if self.lineage.parent_model:
            text += f"; the inherited replies are {self.lineage.parent_model}'s"
        return text


def plan_fork(db: Database, request: ForkRequest) -> ForkPlan:
    """Check the request against the store; ForkError (one line) for anything that cannot be forked."""
    parent = load_session(db, request.parent_id)
    pid = parent["id"]
    if parent["kind"] != "run":
        raise ForkError(f"session {pid} is a {parent['kind']} session; only runs can be forked")
    status = live_status(db, pid, parent.get("status"))
    if status == "running":
        raise ForkError(f"session {pid} is still running; fork it once it has ended (stop it, or wait)")
    parent_config = RunConfig.from_dict(parent["config"])
    rows = load_samples(db, pid)
    if not rows:
        raise ForkError(f"session {pid} has no samples to fork")
    indices = [int(row["sample"]) for row in rows]
    chosen = list(request.samples) if request.samples is not None else indices
    for index in chosen:
        if index not in indices:
            raise ForkError(f"session {pid} has no sample {index} (its samples are {_span(indices)})")
    if len(set(chosen)) != len(chosen):
        raise ForkError("a sample is named twice")
    turn = _fork_turn(db, pid, request.turn, chosen, {int(r["sample"]): r for r in rows})
    stored = dict(db.execute("SELECT sample, COUNT(*) FROM turns WHERE session_id = ? AND turn <= ? "
                             "GROUP BY sample", [pid, turn]).fetchall())
    for index in chosen:
        if stored.get(index, 0) < turn:
            last = db.execute("SELECT MAX(turn) FROM turns WHERE session_id = ? AND sample = ?",
                              [pid, index]).fetchone()[0] or 0
            raise ForkError(f"session {pid} sample {index} has {last} turns stored; fork it at a turn within "
                            f"1..{last}" if last else f"session {pid} sample {index} has no turns stored")
    turns = request.turns if request.turns is not None else parent_config.turns
    if turns <= turn:
        raise ForkError(f"nothing to run after turn {turn}: the {'fork' if request.turns else 'parent'} has "
                        f"{turns} turns; give the fork more turns than {turn} (--turns N, or the fork dialog's "
                        f"turns field)")
    config = _fork_config(parent_config, request, turn, turns, len(chosen))
    keys = _fork_keys(parent_config, rows, chosen, turns)
    edits = _edits(db, pid, chosen, turn, request.edit)
    parent_model = parent_config.model_label or parent_config.provider
    changed_model = (config.provider, config.model_label) != (parent_config.provider, parent_config.model_label)
    lineage = Lineage(parent_id=pid, fork_turn=turn, parent_samples=tuple(chosen), edit=request.edit,
                      parent_model=parent_model if changed_model else None, group_id=request.group_id,
                      arm=request.arm, parent_group_id=parent.get("group_id"))
    return ForkPlan(parent=parent, config=config, lineage=lineage, keys=keys, edits=edits)


def _span(indices: list[int]) -> str:
    return f"{indices[0]}..{indices[-1]}" if indices == list(range(indices[0], indices[-1] + 1)) else \
        ", ".join(map(str, indices))


def _fork_turn(db: Database, pid: str, turn: int | str, chosen: list[int], rows: dict[int, dict]) -> int:
    if turn == FIRST_ERROR:
        errors = {index: rows[index].get("first_error_turn") for index in chosen}
        missing = [index for index, first in errors.items() if first is None]
        if missing:
            raise ForkError(f"session {pid} sample {missing[0]} has no error to fork at")
        if len(set(errors.values())) > 1:
            shown = ", ".join(f"sample {i}: {t}" for i, t in list(errors.items())[:6])
            raise ForkError(f"--turn first-error: the samples' first errors differ ({shown}); fork one "
                            "sample (--sample S) or give a turn")
        return int(next(iter(errors.values())))
    if not isinstance(turn, int) or turn < 1:
        raise ForkError(f"--turn must be a turn number >= 1 or first-error, got {turn!r}")
    return turn


def _fork_config(parent: RunConfig, request: ForkRequest, turn: int, turns: int, samples: int) -> RunConfig:
    from lhe_tui.runs.overrides import apply_overrides

    # Scripted injections at or before T are in the inherited history already; later ones still apply.
    base = replace(parent, turns=turns, samples=samples, dataset_offset=0, dataset=None,
                   inject_at=tuple(inj for inj in parent.inject_at if inj.turn > turn))
    if parent.dataset:   # the fork's keys come from the store: the file is named in its lineage, not re-read
        base = replace(base, extra={**parent.extra, "dataset": parent.dataset,
                                    "dataset_offset": parent.dataset_offset})
    elif parent.data != "generated":   # the same for the paper's data (its rows: the parent's offset on)
        base = replace(base, data="generated", extra={**parent.extra, "data": parent.data,
                                                      "dataset_offset": parent.dataset_offset},
                       paper_choices={k: v for k, v in parent.paper_choices.items() if k != "data"})
    overrides = dict(request.overrides)
    try:
        return apply_overrides(base, overrides)
    except LheError as exc:
        raise ForkError(str(exc)) from None


def _fork_keys(parent: RunConfig, rows: list[dict], chosen: list[int], turns: int) -> tuple[tuple[str, ...], ...]:
    """Each fork sample's keys: the parent's, extended when the fork runs longer (the task is regenerated
    from its seed or reread from its dataset, and must agree with what is stored)."""
    by_index = {int(row["sample"]): tuple(row["keys"]) for row in rows}
    need = turns * parent.k
    if all(len(by_index[i]) >= need for i in chosen):
        return tuple(by_index[i][:need] for i in chosen)
    from lhe_tui.runs.session import build_task

    try:
        longer = build_task(replace(parent, turns=turns))
    except LheError as exc:
        raise ForkError(f"cannot extend the samples to {turns} turns: {exc}") from None
    extended = {s.index: s.keys for s in longer.samples}
    out = []
    for index in chosen:
        keys = extended.get(index, ())
        stored = by_index[index]
        if len(keys) < need or tuple(keys[:len(stored)]) != stored:
            raise ForkError(f"cannot extend sample {index} to {turns} turns: its task does not regenerate to "
                            "the stored keys")
        out.append(tuple(keys[:need]))
    return tuple(out)


def _edits(db: Database, pid: str, chosen: list[int], turn: int,
           edit: ForkEdit | None) -> tuple[tuple[int, int | None], ...]:
    if edit is None:
        return ()
    out = []
    for index in chosen:
        row = db.execute("SELECT history_answer, gold_sum, answer_status FROM turns WHERE session_id = ? AND "
                         "sample = ? AND turn = ?", [pid, index, turn]).fetchone()
        shown, gold, status = row
        if shown is None and edit.kind == "offset":
            # --set-answer and --heal bring their own value (the history then shows it, as a manual injection
            # into such a turn does); an offset has nothing to start from.
            raise ForkError(f"session {pid} sample {index} turn {turn} has no valid answer in its history "
                            f"({status}): --offset has nothing to add to; use --set-answer V or --heal there, "
                            "or fork at another turn")
        value = edit.amount if edit.kind == "set" else shown + edit.amount if edit.kind == "offset" else gold
        out.append((int(value), shown))
    return tuple(out)


def _turn_columns(db: Database) -> list[str]:
    return [row[1] for row in db.execute("PRAGMA table_info(turns)").fetchall()
            if row[1] not in ("session_id", "sample", "inherited")]


def create_fork(db: Database, plan: ForkPlan, *, session_id: str | None = None) -> str:
    """Write the fork as an unfinished session (status `interrupted`, nothing run yet) and return its id.
    One transaction: a failure leaves nothing behind."""
    from lhe_tui.runs.session import new_session_id

    fork_id = session_id or new_session_id()
    parent, config, lineage, turn = plan.parent, plan.config, plan.lineage, plan.fork_turn
    if config.prompt_text is None:
        config = replace(config, prompt_text=config.template().text)
    columns = _turn_columns(db)
    names = ", ".join(f"[{c}]" for c in columns)
    now = time.time()
    conn = db.conn
    if db.execute("SELECT 1 FROM sessions WHERE id = ?", [fork_id]).fetchone():
        raise StoreError(f"session {fork_id} exists already")
    with conn:
        conn.execute(
            "INSERT INTO sessions (id, kind, status, provider, model, provider_label, simulated, mode, k, turns, "
            "n_samples, seed, dataset, created_at, message, config_json, dictionary_json, app_version, "
            "parent_id, fork_turn, fork_json, group_id, arm) VALUES "
            "(?, 'run', 'interrupted', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [fork_id, config.provider, config.model_label, _label(config), int(config.provider == "sim"),
             config.mode, config.k, config.turns, len(plan.keys), config.seed, parent.get("dataset"), now_iso(),
             f"forked from {parent['id']} at turn {turn}; not run yet (`lhe-tui resume {fork_id}` runs it)",
             json.dumps(config.to_dict(), allow_nan=False), json.dumps(parent["dictionary"]), _version(),
             *[lineage.to_row()[c] for c in ("parent_id", "fork_turn", "fork_json", "group_id", "arm")]])
        for index, parent_index in enumerate(lineage.parent_samples):
            first_error = conn.execute("SELECT MIN(turn) FROM turns WHERE session_id = ? AND sample = ? AND "
                                       "turn <= ? AND correct = 0", [parent["id"], parent_index, turn]).fetchone()[0]
            conn.execute("INSERT INTO samples (session_id, sample, status, message, keys_json, first_error_turn) "
                         "VALUES (?, ?, 'stopped', ?, ?, ?)",
                         [fork_id, index, f"forked from sample {parent_index}; not run yet",
                          json.dumps(list(plan.keys[index])), first_error])
            conn.execute(f"INSERT INTO turns (session_id, sample, {names}, inherited) SELECT ?, ?, {names}, 1 "
                         "FROM turns WHERE session_id = ? AND sample = ? AND turn <= ?",
                         [fork_id, index, parent["id"], parent_index, turn])
            conn.execute("INSERT INTO events (session_id, sample, turn, kind, payload_json, at, created_at) "
                         "SELECT ?, ?, turn, kind, json_set(payload_json, '$.sample', ?), at, created_at FROM events "
                         "WHERE session_id = ? AND sample = ? AND turn <= ? AND kind = 'injected' ORDER BY id",
                         [fork_id, index, index, parent["id"], parent_index, turn])
            if plan.edits:
                value, before = plan.edits[index]
                conn.execute("UPDATE turns SET history_answer = ?, injected = 1 WHERE session_id = ? AND sample = ? "
                             "AND turn = ?", [value, fork_id, index, turn])
                payload = {"sample": index, "turn": turn, "original": before, "injected": value, "source": "fork"}
                conn.execute("INSERT INTO events (session_id, sample, turn, kind, payload_json, at, created_at) "
                             "VALUES (?, ?, ?, 'injected', ?, ?, ?)",
                             [fork_id, index, turn, json.dumps(payload), now, now_iso()])
        conn.execute("INSERT INTO events (session_id, sample, turn, kind, payload_json, at, created_at) "
                     "VALUES (?, NULL, ?, 'forked', ?, ?, ?)",
                     [fork_id, turn, json.dumps({"parent_id": parent["id"], "fork_turn": turn,
                                                 "samples": list(lineage.parent_samples),
                                                 "edit": lineage.fork_json()}), now, now_iso()])
    return fork_id


def check_runnable(plan: ForkPlan) -> None:
    """Everything about running the fork that can be checked before it is stored (one line, nothing written):
    a price for --max-cost, the provider's key, a local model's install and GGUF. A fork that fails on one of
    these must leave no session behind (`fork latest` would then fork that leftover)."""
    from lhe_tui.providers.factory import check_credentials
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.runner.budget import budget_for

    budget_for(plan.config)
    check_credentials(plan.config)
    prepare_own_server(plan.config)     # resolves a local model (nothing started)


def create_forks(db: Database, plans: list[ForkPlan]) -> list[str]:
    """Every plan checked (`check_runnable`), then written; all or none: a failure removes the forks written
    before it. Their ids, in order."""
    for plan in plans:
        check_runnable(plan)
    created: list[str] = []
    try:
        for plan in plans:
            created.append(create_fork(db, plan))
    except BaseException:
        with db.conn:
            for fork_id in created:
                for table in ("events", "turns", "samples", "sessions"):
                    column = "id" if table == "sessions" else "session_id"
                    db.conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [fork_id])
        raise
    return created


def _label(config: RunConfig) -> str:
    return f"{config.provider}:{config.model_label}" + (" (simulated)" if config.provider == "sim" else "")


def _version() -> str:
    from lhe_tui import __version__

    return __version__


def plan_group_fork(db: Database, group_id: str, request: ForkRequest) -> tuple[str, list[ForkPlan]]:
    """Every arm of a group forked at the same turn with the same edit and flags, as a new group whose arms
    keep their names. Checked as a whole before anything is written: one arm that cannot be forked refuses
    the group (its reason, named by arm)."""
    from lhe_tui.store.groups import group_members, new_group_id

    new_group = new_group_id()
    plans = []
    for member in group_members(db, group_id):
        arm_request = replace(request, parent_id=member["id"], group_id=new_group, arm=member["arm"])
        try:
            plans.append(plan_fork(db, arm_request))
        except ForkError as exc:
            raise ForkError(f"arm {member['arm']}: {exc}") from None
    turns = {plan.fork_turn for plan in plans}
    if len(turns) > 1:   # first-error resolved differently per arm
        shown = ", ".join(f"{p.lineage.arm}: {p.fork_turn}" for p in plans)
        raise ForkError(f"the arms' fork turns differ ({shown}); give --turn T")
    return new_group, plans
