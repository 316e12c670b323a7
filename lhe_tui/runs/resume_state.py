"""Rebuild a stored session's config, task and per-sample history so a run can continue exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lhe_tui.common.errors import StoreError
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import Lineage
from lhe_tui.runner.history import HistoryEntry
from lhe_tui.store.queries import load_samples, load_session, load_turns
from lhe_tui.task.model import Sample, Task

if TYPE_CHECKING:
    from sqlite_utils import Database


@dataclass
class ResumeState:
    config: RunConfig
    task: Task
    history: dict[int, list[HistoryEntry]]
    first_errors: dict[int, int]
    pending_scripted: dict[int, list[int]]   # sample -> scripted injection turns already played but not applied
    lineage: Lineage | None = None           # a fork resumes as a fork, an arm as its group's arm


def load_resume_state(db: Database, session_id: str, *, sample: int | None = None) -> ResumeState:
    """`sample`: read only that sample's turns (the others' histories are left empty): what rebuilding one
    turn's request needs (lhe_tui.runs.turn_request), without reading a long session whole."""
    session = load_session(db, session_id)
    if session["kind"] != "run":
        raise StoreError(f"session {session_id} is a {session['kind']} session; only runs can be resumed")
    config = RunConfig.from_dict(session["config"])
    dictionary = session["dictionary"]
    samples = tuple(Sample(index=row["sample"], keys=row["keys"], values=tuple(dictionary[k] for k in row["keys"]),
                           k=config.k) for row in load_samples(db, session_id))
    task = Task(dictionary=dictionary, samples=samples, k=config.k, turns=config.turns, source=f"session {session_id}")
    history: dict[int, list[HistoryEntry]] = {s.index: [] for s in samples}
    first_errors: dict[int, int] = {}
    injected_turns: dict[int, set[int]] = {s.index: set() for s in samples}
    for record in load_turns(db, session_id, sample):
        history[record.sample].append(HistoryEntry(
            turn=record.turn, keys=record.keys, reply_visible=record.raw_reply, model_answer=record.model_answer,
            history_answer=record.history_answer, gold_sum=record.gold_sum))
        if not record.correct:
            first_errors.setdefault(record.sample, record.turn)
        if record.injected:
            injected_turns[record.sample].add(record.turn)
    for index, entries in history.items():
        if [e.turn for e in entries] != list(range(1, len(entries) + 1)):
            raise StoreError(f"session {session_id} sample {index} has gaps in its turns; cannot resume")
    scripted = {inj.turn for inj in config.inject_at}
    pending = {index: sorted(t for t in scripted if t <= len(entries) and t not in injected_turns[index])
               for index, entries in history.items()}
    return ResumeState(config=config, task=task, history=history, first_errors=first_errors,
                       pending_scripted={i: t for i, t in pending.items() if t},
                       lineage=Lineage.from_row(session))
