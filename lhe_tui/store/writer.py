"""The store's event subscriber: persists a run as its events arrive (one commit per finished turn)."""

from __future__ import annotations

import dataclasses
import json
import operator
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lhe_tui import __version__
from lhe_tui.common.errors import StoreWriteError
from lhe_tui.core.urls import redact_url
from lhe_tui.core.events import (Event, Injected, RetryScheduled, RunFinished, RunPaused, RunResumed,
                                   RunStarted, SampleFinished, TurnFinished, TurnRecord, UsageIgnored)
from lhe_tui.store.queries import has_column, store_token_totals
from lhe_tui.store.summary import session_summary
from lhe_tui.store.tally import RunTally

if TYPE_CHECKING:
    from sqlite_utils import Database

SECRET_CONFIG_KEYS = ("api_key", "authorization")


def _known_sound(path: Any) -> bool:
    from lhe_tui.store.checked import known_sound

    return known_sound(path)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def turn_row(session_id: str, record: TurnRecord) -> dict:
    row = dataclasses.asdict(record)
    row["keys"] = ", ".join(record.keys)
    row["key_values_json"] = json.dumps(list(record.key_values))
    del row["key_values"]
    row["session_id"] = session_id
    for flag in ("correct", "step_correct", "injected", "inherited"):
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


def int_list_json(values: tuple) -> str:
    """json.dumps(list(values)), at half its cost for the usual tuple of ints (a key's value: json writes an
    int as its repr); anything else (a bool, a float) goes through json.dumps."""
    if all(type(value) is int for value in values):
        return "[" + ", ".join(map(repr, values)) + "]"
    return json.dumps(list(values))


def turn_params(session_id: str, record: TurnRecord) -> tuple:
    """The values of `turn_row`, in TURN_COLUMNS order, without dataclasses.asdict's deep copy.
    (sqlite3 stores the bools as 0 and 1 itself, as turn_row's int() does.)"""
    values = list(_turn_values(record))
    values[_KEYS_AT] = ", ".join(values[_KEYS_AT])
    values[_KEY_VALUES_AT] = int_list_json(values[_KEY_VALUES_AT])
    return (session_id, *values)


# SQLite's own default: a checkpoint once the WAL holds about this many pages.
CHECKPOINT_PAGES = 1000
# The WAL starts over once it holds this many frames (4 KiB each: ~40 MB).
WAL_RESTART_FRAMES = 10 * CHECKPOINT_PAGES


class Checkpointer:
    """Checkpoints a WAL-mode store mostly from a thread of its own, while a run writes to it.

    Why: with SQLite's automatic checkpoints, the commit that crosses `wal_autocheckpoint` pages copies
    the WAL into the database and fsyncs both, on the runner's event loop: ~40 stalls of 5-20 ms, 0.6 s
    in all, in a run of 12,800 turns. Here the writer's connection stops checkpointing and `poke()`
    (when about CHECKPOINT_PAGES pages were written) wakes a thread that runs the same PASSIVE
    checkpoint on its own connection; sqlite3 releases the GIL while it works.

    The writer keeps committing meanwhile, so the thread's checkpoints never take the WAL's last frames,
    and SQLite starts the WAL over only after a checkpoint of all of them: left so, it grew to 190 MB in
    that run. So once the WAL holds WAL_RESTART_FRAMES frames, the writer `catch_up()`s: it checkpoints
    what was written since the thread's checkpoint began (a few hundred frames, but only the pages they
    changed: the hot leaves) on its own connection between two transactions, and its next commit starts
    the WAL from the beginning. That is a stall on the loop every ~10 checkpoints (4 per run of 12,800
    turns, ~5 ms each, 36 ms in all against the 0.6 s before).

    Durability is unchanged: every commit is in the WAL either way (synchronous=NORMAL), and a checkpoint
    cut short by a kill is redone when the store is next opened.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._wake = threading.Event()
        self._settled = threading.Condition()  # pokes made and pokes the thread has answered (wait_idle)
        self._poked = self._answered = 0
        self._stopping = False
        self.caught_up = True  # False once the WAL is long enough to start over, until the writer's catch_up()
        # (0 would be a checkpointer before this one that never stopped: SQLite's default then)
        self._restore = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] or CHECKPOINT_PAGES
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread = threading.Thread(target=self._run, name="lhe-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, conn: sqlite3.Connection) -> Checkpointer | None:
        """A checkpointer for the store's file, or None if it has no WAL (in memory, another journal mode)."""
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            return None
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        return cls(conn, path) if path else None

    def poke(self) -> None:
        with self._settled:
            self._poked += 1
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Until the thread has checkpointed for every poke so far (False: not within `timeout`)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._answered >= self._poked, timeout)

    def catch_up(self) -> None:
        """On the writer's connection, between transactions: what was written since the thread's checkpoint."""
        self.caught_up = True
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass

    def stop(self) -> None:
        """Ends the thread (after a checkpoint in progress) and gives the connection its automatic ones back."""
        self.stop_soon()
        self._thread.join()
        self._conn.execute(f"PRAGMA wal_autocheckpoint = {int(self._restore)}")

    def stop_soon(self) -> None:
        """Ends the thread without waiting for it (a writer dropped before its run finished)."""
        self._stopping = True
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=30.0, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                with self._settled:
                    answering = self._poked
                try:
                    busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if not busy and frames >= WAL_RESTART_FRAMES:
                        self.caught_up = False
                except sqlite3.Error:
                    pass  # busy or locked: the next poke tries again
                with self._settled:
                    self._answered = answering
                    self._settled.notify_all()
        finally:
            conn.close()


class SessionWriter:
    """Subscribe with `bus.subscribe(writer)`; it writes everything but token deltas.

    It holds the session's writer lock (lhe_tui.store.locks) from its making to the run's end: a second
    writer of the same session is refused (SessionBusy), and a session left `running` by a dead process
    is told apart from a live one. If the store stops taking rows (a full disk, a damaged page), the
    first failure goes to `on_failure` (the runner's `halt`: the run stops at once) and is raised as a
    one-line StoreWriteError from the event that hit it and from every later finished turn (none may
    look committed); at the run's end the session is set `interrupted` if that can still be written.
    """

    def __init__(self, db: Database, session_id: str, probe_rates: dict[int, float] | None = None,
                 first_errors: dict[int, int] | None = None) -> None:
        from lhe_tui.store.locks import SessionLock

        self.db = db
        self.session_id = session_id
        self.path = getattr(db, "path", None)
        self.lock = SessionLock.acquire(self.path, session_id) if self.path is not None else None
        # The store was found sound as it was opened (lhe_tui.store.checked): then it is sound as this run
        # leaves it, and the run's end says so, sparing the next command a full check.
        self._known_sound = self.path is not None and (getattr(db, "checked", False) or _known_sound(self.path))
        self._totals_column = has_column(db, "sessions", "token_totals_json")
        self.failure: StoreWriteError | None = None
        self.on_failure: Callable[[str], None] | None = None
        self.probe_rates = probe_rates or {}
        self._first_error: dict[int, int] = dict(first_errors or {})
        self._earlier_wall_time = 0.0
        self._handlers: dict[type, Callable[[Any], None] | None] = {}
        self._checkpointer: Checkpointer | None = None
        self._pages = 0  # written since the last checkpoint, roughly
        self.tally: RunTally | None = None   # the turns as stored, while it stands for them all (else None)

    def __call__(self, event: Event) -> None:
        kind = type(event)
        try:
            handler = self._handlers[kind]
        except KeyError:  # once per event type (a token delta must not pay for a getattr miss each time)
            handler = self._handlers[kind] = getattr(self, f"_on_{kind.__name__}", None)
        if handler is None:
            return
        if self.failure is not None:
            if kind is RunFinished:
                self._end_after_failure(event)
            elif kind is TurnFinished:
                raise self.failure
            return
        try:
            handler(event)
        except sqlite3.Error as exc:
            self._failed(exc)
            if kind is RunFinished:
                self._end_after_failure(event)
            raise self.failure from None

    def _failed(self, exc: sqlite3.Error) -> None:
        from lhe_tui.store.database import store_error

        try:
            self.db.conn.rollback()
        except sqlite3.Error:
            pass
        self.failure = StoreWriteError(f"{store_error(self.path or 'the store', exc)}; session {self.session_id} "
                                       f"stopped, every finished turn kept: fix that, then "
                                       f"`lhe-tui resume {self.session_id}`")
        if self.on_failure is not None:
            self.on_failure(str(self.failure))

    def _end_after_failure(self, e: RunFinished) -> None:
        """Best effort, once the store has failed: the session `interrupted` (a checkpoint first frees the
        WAL's space when it can). If even that cannot be written it stays `running`, and its writer's lock,
        dropped when this process ends, makes it `crashed`: resumable either way."""
        conn = self.db.conn
        if self._checkpointer is not None:
            self._checkpointer.stop_soon()
            self._checkpointer = None
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        try:
            with conn:
                conn.execute("UPDATE sessions SET status = 'interrupted', ended_at = ?, message = ? WHERE id = ?",
                             [now_iso(), str(self.failure), self.session_id])
            self._release(forget=True)
        except sqlite3.Error:
            self._release(forget=False)

    def _release(self, *, forget: bool) -> None:
        """Drop the writer's lock; `forget`: the session's status is written, so its lock file goes too."""
        if self.lock is None:
            return
        if forget and self.lock.path is not None:
            try:
                self.lock.path.unlink()
            except OSError:
                pass
        self.lock.release()
        self.lock = None

    def _event_row(self, kind: str, payload: dict, sample: int | None = None, turn: int | None = None) -> None:
        with self.db.conn:
            self._insert_event(kind, payload, sample, turn)

    def _insert_event(self, kind: str, payload: dict, sample: int | None = None, turn: int | None = None) -> None:
        """An event row, in the caller's transaction."""
        self.db.conn.execute(_INSERT_EVENT, (self.session_id, sample, turn, kind, json.dumps(payload), time.time(),
                                             now_iso()))

    def _on_RunStarted(self, e: RunStarted) -> None:
        config = {k: v for k, v in e.config.items() if k.lower() not in SECRET_CONFIG_KEYS}
        if config.get("base_url"):
            config["base_url"] = redact_url(config["base_url"])
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
                "config_json": json.dumps(config, allow_nan=False), "dictionary_json": json.dumps(e.dictionary),
                **({} if e.resumed else {"created_at": now_iso()}), "ended_at": None,
                "message": None,    # running again: a fork's "not run yet", an earlier stop's reason, are past
                **({"token_totals_json": None} if self._totals_column else {}),   # summed again at its end
                **(e.lineage.to_row() if e.lineage is not None and not e.lineage.is_plain else {}),
            }, pk="id")
            if not e.resumed:
                self.db["samples"].upsert_all(
                    [{"session_id": self.session_id, "sample": i, "status": "running", "keys_json": json.dumps(keys),
                      "probe_rate": self.probe_rates.get(i)} for i, keys in enumerate(e.sample_keys)],
                    pk=("session_id", "sample"))
            else:
                self.db.execute("UPDATE samples SET status = 'running', message = NULL WHERE session_id = ? AND "
                                "status != 'finished'", [self.session_id])
        self._event_row("run_resumed_from_store" if e.resumed else "run_started", {"provider": e.provider_label})
        # A session with no turn stored before this run (not a fork, not resumed after a turn): its end can
        # be summed from what this writer stores.
        fresh = self.db.conn.execute("SELECT NOT EXISTS (SELECT 1 FROM turns WHERE session_id = ?)",
                                     [self.session_id]).fetchone()[0]
        self.tally = RunTally(len(e.sample_keys), TURN_COLUMNS) if fresh else None
        if self._checkpointer is None:
            self._checkpointer = Checkpointer.for_store(self.db.conn)
            if self._checkpointer is not None:  # a run that never finishes must not leave the thread behind
                weakref.finalize(self, self._checkpointer.stop_soon)

    def _on_TurnFinished(self, e: TurnFinished) -> None:
        r = e.record
        row = turn_params(self.session_id, r)
        with self.db.conn:
            self.db.conn.execute(_INSERT_TURN, row)
            if not r.correct and r.sample not in self._first_error:
                self._first_error[r.sample] = r.turn
                self.db.conn.execute("UPDATE samples SET first_error_turn = ? WHERE session_id = ? AND sample = ? "
                                     "AND first_error_turn IS NULL", (r.turn, self.session_id, r.sample))
        tally = self.tally
        if tally is not None:
            tally.add(row)
            if tally.broken:    # it no longer stands for the session's turns: the run's end reads the store
                self.tally = None
        checkpointer = self._checkpointer
        if checkpointer is not None:
            if not checkpointer.caught_up:
                checkpointer.catch_up()
            # A turn changes ~3 pages (the row, two indexes), more with long replies.
            self._pages += 3 + (len(r.raw_reply) + len(r.reasoning)) // 2048
            if self._pages >= CHECKPOINT_PAGES:
                self._pages = 0
                checkpointer.poke()

    def _on_Injected(self, e: Injected) -> None:
        with self.db.conn:
            self.db.execute("UPDATE turns SET history_answer = ?, injected = 1 WHERE session_id = ? AND sample = ? "
                            "AND turn = ?", [e.injected, self.session_id, e.sample, e.turn])
        self._event_row("injected", dataclasses.asdict(e), e.sample, e.turn)

    def _on_RetryScheduled(self, e: RetryScheduled) -> None:
        self._event_row("retry", dataclasses.asdict(e), e.sample, e.turn)

    def _on_UsageIgnored(self, e: UsageIgnored) -> None:
        self._event_row("usage_ignored", dataclasses.asdict(e), e.sample, e.turn)

    def _on_SampleFinished(self, e: SampleFinished) -> None:
        # One commit for the sample's status and its event: at a run's end every sample finishes in the last
        # turn's burst, each delaying the samples behind it (issue 26).
        with self.db.conn:
            self.db.conn.execute("UPDATE samples SET status = ?, message = ? WHERE session_id = ? AND sample = ?",
                                 (e.status, e.message, self.session_id, e.sample))
            self._insert_event("sample_finished", dataclasses.asdict(e), e.sample)

    def _on_RunPaused(self, e: RunPaused) -> None:
        self._event_row("paused", {})

    def _on_RunResumed(self, e: RunResumed) -> None:
        self._event_row("resumed", {})

    def _on_RunFinished(self, e: RunFinished) -> None:
        summary = session_summary(self.db, self.session_id, tally=self.tally)
        with self.db.conn:
            self.db["sessions"].update(self.session_id, {
                "status": e.status, "ended_at": now_iso(), "wall_time_s": self._earlier_wall_time + e.wall_time_s, "message": e.message,
                "final_task_accuracy": summary.final_task_accuracy, "horizon_05": summary.horizon_measured,
                "fitted_p": summary.mean_turn_accuracy})   # the column keeps its old name (docs/protocol.md)
            if self._totals_column:
                store_token_totals(self.db, self.session_id, self.tally)
        self._event_row("run_finished", dataclasses.asdict(e))
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._stamp_sound()
        self._release(forget=True)

    def _stamp_sound(self) -> None:
        """The run's last checkpoint (passive: a reader is never waited for); once the WAL is all in the
        store's file, a store known sound when the run began is remembered sound as it is now."""
        if self._known_sound and self.path is not None:
            from lhe_tui.store.database import remember_after_writes

            remember_after_writes(self.db.conn, self.path)
