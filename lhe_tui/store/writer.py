"""The store's event subscriber: persists a run as its events arrive (one commit per finished turn)."""

from __future__ import annotations

import dataclasses
import json
import operator
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lhe_tui import __version__
from lhe_tui.runner.events import (Event, Injected, RetryScheduled, RunFinished, RunPaused, RunResumed,
                                   RunStarted, SampleFinished, TurnFinished, TurnRecord)
from lhe_tui.store.summary import session_summary

if TYPE_CHECKING:
    from sqlite_utils import Database

SECRET_CONFIG_KEYS = ("api_key", "authorization")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def turn_row(session_id: str, record: TurnRecord) -> dict:
    row = dataclasses.asdict(record)
    row["keys"] = ", ".join(record.keys)
    row["key_values_json"] = json.dumps(list(record.key_values))
    del row["key_values"]
    row["session_id"] = session_id
    for flag in ("correct", "step_correct", "injected"):
        row[flag] = int(row[flag])
    return row


# The hot path (one row per finished turn) is a plain prepared INSERT: sqlite-utils' Table.insert
# inspects the table on every call (about 6 statements, ~300 us against ~90 us for this). The columns
# follow TurnRecord's fields, so a new field is a new column here too (the schema must have it).
_TURN_FIELDS = tuple(f.name for f in dataclasses.fields(TurnRecord))
TURN_COLUMNS = ("session_id",) + tuple("key_values_json" if name == "key_values" else name for name in _TURN_FIELDS)
_INSERT_TURN = (f"INSERT OR REPLACE INTO turns ({', '.join(f'[{c}]' for c in TURN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(TURN_COLUMNS))})")
_INSERT_EVENT = ("INSERT INTO events (session_id, sample, turn, kind, payload_json, at, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)")


_turn_values = operator.attrgetter(*_TURN_FIELDS)
_KEYS_AT = _TURN_FIELDS.index("keys")
_KEY_VALUES_AT = _TURN_FIELDS.index("key_values")


def turn_params(session_id: str, record: TurnRecord) -> tuple:
    """The values of `turn_row`, in TURN_COLUMNS order, without dataclasses.asdict's deep copy.
    (sqlite3 stores the bools as 0 and 1 itself, as turn_row's int() does.)"""
    values = list(_turn_values(record))
    values[_KEYS_AT] = ", ".join(values[_KEYS_AT])
    values[_KEY_VALUES_AT] = json.dumps(list(values[_KEY_VALUES_AT]))
    return (session_id, *values)


class SessionWriter:
    """Subscribe with `bus.subscribe(writer)`; it writes everything but token deltas."""

    def __init__(self, db: Database, session_id: str, probe_rates: dict[int, float] | None = None,
                 first_errors: dict[int, int] | None = None) -> None:
        self.db = db
        self.session_id = session_id
        self.probe_rates = probe_rates or {}
        self._first_error: dict[int, int] = dict(first_errors or {})
        self._earlier_wall_time = 0.0
        self._handlers: dict[type, Callable[[Any], None] | None] = {}

    def __call__(self, event: Event) -> None:
        kind = type(event)
        try:
            handler = self._handlers[kind]
        except KeyError:  # once per event type (a token delta must not pay for a getattr miss each time)
            handler = self._handlers[kind] = getattr(self, f"_on_{kind.__name__}", None)
        if handler is not None:
            handler(event)

    def _event_row(self, kind: str, payload: dict, sample: int | None = None, turn: int | None = None) -> None:
        with self.db.conn:
            self.db.conn.execute(_INSERT_EVENT, (self.session_id, sample, turn, kind, json.dumps(payload),
                                                 time.time(), now_iso()))

    def _on_RunStarted(self, e: RunStarted) -> None:
        config = {k: v for k, v in e.config.items() if k.lower() not in SECRET_CONFIG_KEYS}
        if e.resumed:
            row = next(self.db.query("SELECT wall_time_s FROM sessions WHERE id = ?", [self.session_id]), {})
            self._earlier_wall_time = row.get("wall_time_s") or 0.0
        with self.db.conn:
            self.db["sessions"].upsert({
                "id": self.session_id, "kind": e.kind, "status": "running", "provider": config.get("provider"),
                "model": config.get("model") or e.provider_label.split(":", 1)[-1].replace(" (simulated)", ""),
                "provider_label": e.provider_label, "simulated": int(e.simulated), "mode": config.get("mode"),
                "k": config.get("k"), "turns": config.get("turns"), "n_samples": len(e.sample_keys),
                "seed": config.get("seed"), "dataset": config.get("dataset"), "app_version": __version__,
                "config_json": json.dumps(config), "dictionary_json": json.dumps(e.dictionary),
                **({} if e.resumed else {"created_at": now_iso()}), "ended_at": None,
            }, pk="id")
            if not e.resumed:
                self.db["samples"].upsert_all(
                    [{"session_id": self.session_id, "sample": i, "status": "running", "keys_json": json.dumps(keys),
                      "probe_rate": self.probe_rates.get(i)} for i, keys in enumerate(e.sample_keys)],
                    pk=("session_id", "sample"))
            else:
                self.db.execute("UPDATE samples SET status = 'running' WHERE session_id = ? AND status != 'finished'",
                                [self.session_id])
        self._event_row("run_resumed_from_store" if e.resumed else "run_started", {"provider": e.provider_label})

    def _on_TurnFinished(self, e: TurnFinished) -> None:
        r = e.record
        with self.db.conn:
            self.db.conn.execute(_INSERT_TURN, turn_params(self.session_id, r))
            if not r.correct and r.sample not in self._first_error:
                self._first_error[r.sample] = r.turn
                self.db.conn.execute("UPDATE samples SET first_error_turn = ? WHERE session_id = ? AND sample = ? "
                                     "AND first_error_turn IS NULL", (r.turn, self.session_id, r.sample))

    def _on_Injected(self, e: Injected) -> None:
        with self.db.conn:
            self.db.execute("UPDATE turns SET history_answer = ?, injected = 1 WHERE session_id = ? AND sample = ? "
                            "AND turn = ?", [e.injected, self.session_id, e.sample, e.turn])
        self._event_row("injected", dataclasses.asdict(e), e.sample, e.turn)

    def _on_RetryScheduled(self, e: RetryScheduled) -> None:
        self._event_row("retry", dataclasses.asdict(e), e.sample, e.turn)

    def _on_SampleFinished(self, e: SampleFinished) -> None:
        with self.db.conn:
            self.db.execute("UPDATE samples SET status = ?, message = ? WHERE session_id = ? AND sample = ?",
                            [e.status, e.message, self.session_id, e.sample])
        self._event_row("sample_finished", dataclasses.asdict(e), e.sample)

    def _on_RunPaused(self, e: RunPaused) -> None:
        self._event_row("paused", {})

    def _on_RunResumed(self, e: RunResumed) -> None:
        self._event_row("resumed", {})

    def _on_RunFinished(self, e: RunFinished) -> None:
        summary = session_summary(self.db, self.session_id)
        with self.db.conn:
            self.db["sessions"].update(self.session_id, {
                "status": e.status, "ended_at": now_iso(), "wall_time_s": self._earlier_wall_time + e.wall_time_s, "message": e.message,
                "final_task_accuracy": summary.final_task_accuracy, "horizon_05": summary.horizon_measured,
                "fitted_p": summary.fitted_p})
        self._event_row("run_finished", dataclasses.asdict(e))
