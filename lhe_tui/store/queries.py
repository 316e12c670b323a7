"""Read sessions and turns back out of the store (for reports, exports, replay and resume)."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lhe_tui.common.errors import StoreError
from lhe_tui.core.events import TurnRecord
from lhe_tui.core.prices import TOTALS_SQL, PriceTable, TokenTotals, cost_cell, load_prices, totals_from_row
from lhe_tui.core.step_rules import STEP_RULES, ScoredTurn, check_step_rule, update_flags
from lhe_tui.task.protocol import LEGACY_PROTOCOL
from lhe_tui.task.templates import LEGACY_PROMPT

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.store.tally import RunTally

ANSWERED_SQL = "answer_status IS NOT 'failed'"
"""The SQL condition for a turn the provider answered (its reply was read, whatever it said): not one stored
as failed (lhe_tui.task.answer.PROVIDER_FAILED)."""

TURN_FIELDS = ("sample", "turn", "turn_sum", "gold_sum", "seen_previous", "expected_step", "raw_reply", "reasoning",
               "answer_status", "model_answer", "history_answer", "tokens_in", "tokens_out", "latency_s", "retries",
               "started_at", "finished_at", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "empty_retries",
               "provider_error")


def one_match(given: str, matches: list[str], what: str) -> str:
    """The id `given` names among `matches` (ids whose start or end it is): itself when it is one, else the one
    match; StoreError (one line) for none or several. `what`: "session", "group", "sweep"."""
    if given in matches:
        return given
    if not matches:
        raise StoreError(f"no {what} {given!r} (see `lhe-tui sessions`)")
    if len(matches) > 1:
        more = f" and {len(matches) - 8} more" if len(matches) > 8 else ""
        raise StoreError(f"{what} id {given!r} is ambiguous: {len(matches)} {what}s match "
                         f"({', '.join(matches[:8])}{more}); give more of it")
    return matches[0]


def resolve_session_id(db: Database, given: str) -> str:
    """Accept a full id, or its start or its end (the TUI shows ids without their date, `115417-5b3c`) when
    only one session matches; `latest` means the newest session. Ambiguous: one line naming the candidates."""
    if given == "latest":
        row = next(db.query("SELECT id FROM sessions ORDER BY created_at DESC, rowid DESC LIMIT 1"), None)
        if row is None:
            raise StoreError("there are no sessions in this store yet")
        return row["id"]
    if not given:
        raise StoreError("an empty session id (see `lhe-tui sessions`)")
    # substr, not LIKE: `_` and `%` in what was typed are not wildcards.
    rows = [r["id"] for r in db.query("SELECT id FROM sessions WHERE substr(id, 1, :n) = :given "
                                      "OR substr(id, -:n) = :given ORDER BY id",
                                      {"n": len(given), "given": given})]
    return one_match(given, rows, "session")


UNREADABLE = "unreadable"
"""A session's list status when its stored config is not valid JSON (shown as such; the rest are listed)."""


def _not_finite(name: str) -> None:
    """NaN and Infinity in a stored config (written by an lhe-tui that let them through) read as null."""
    return None


def load_session(db: Database, session_id: str) -> dict[str, Any]:
    row = next(db.query("SELECT * FROM sessions WHERE id = ?", [session_id]), None)
    if row is None:
        raise StoreError(f"no session {session_id!r}")
    try:
        row["config"] = json.loads(row.pop("config_json") or "{}", parse_constant=_not_finite)
        row["dictionary"] = json.loads(row.pop("dictionary_json") or "{}")
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"session {session_id} is unreadable: its stored config is not valid JSON "
                         f"({exc.__class__.__name__}); the other sessions are unaffected") from None
    if not isinstance(row["config"], dict) or not isinstance(row["dictionary"], dict):
        raise StoreError(f"session {session_id} is unreadable: its stored config is not a JSON object")
    # Sessions stored before the protocol switch and prompt templates ran with lenient rules and lhe-v1.
    row["protocol"] = row["config"].get("protocol") or LEGACY_PROTOCOL
    row["prompt"] = row["config"].get("prompt") or LEGACY_PROMPT
    return row


def load_samples(db: Database, session_id: str, *, keys: bool = True) -> list[dict[str, Any]]:
    """The session's samples, in order; `keys=False`: without their keys (no "keys" entry, not even read from
    the store), which at 10,000 turns a sample are most of the cost (a 1,000,000-turn session: ~65 MB and
    0.075 s)."""
    columns = "*" if keys else ", ".join(
        f"[{row[1]}]" for row in db.conn.execute("PRAGMA table_info(samples)").fetchall() if row[1] != "keys_json")
    rows = list(db.query(f"SELECT {columns} FROM samples WHERE session_id = ? ORDER BY sample", [session_id]))
    for row in rows:
        keys_json = row.pop("keys_json", None)
        if keys:
            row["keys"] = tuple(json.loads(keys_json or "[]"))
    return rows


def record_from_row(row: dict[str, Any]) -> TurnRecord:
    values = {name: row.get(name) for name in TURN_FIELDS}
    values["empty_retries"] = values["empty_retries"] or 0
    return TurnRecord(keys=tuple(k.strip() for k in row["keys"].split(",") if k.strip()),
                      key_values=tuple(json.loads(row["key_values_json"])), correct=bool(row["correct"]),
                      step_correct=bool(row["step_correct"]), injected=bool(row["injected"]),
                      inherited=bool(row.get("inherited")), **values)


# TurnRecord's fields in declaration order, as stored columns: `record_from_tuple` builds positionally.
RECORD_COLUMNS = ("sample", "turn", "keys", "key_values_json", "turn_sum", "gold_sum", "seen_previous",
                  "expected_step", "raw_reply", "reasoning", "answer_status", "model_answer", "correct",
                  "step_correct", "history_answer", "injected", "tokens_in", "tokens_out", "latency_s", "retries",
                  "started_at", "finished_at", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
                  "inherited", "empty_retries", "provider_error")
_RECORD_SELECT = "SELECT " + ", ".join(RECORD_COLUMNS) + " FROM turns"


def record_from_tuple(row: tuple) -> TurnRecord:
    """A TurnRecord from a row of RECORD_COLUMNS (the same record `record_from_row` makes, ~3x faster)."""
    (sample, turn, keys, key_values, turn_sum, gold_sum, seen_previous, expected_step, raw_reply, reasoning,
     answer_status, model_answer, correct, step_correct, history_answer, injected, tokens_in, tokens_out,
     latency_s, retries, started_at, finished_at, tokens_cached, tokens_cache_write, tokens_reasoning,
     inherited, empty_retries, provider_error) = row
    return TurnRecord(sample, turn, tuple(filter(None, map(str.strip, keys.split(",")))),
                      tuple(json.loads(key_values)), turn_sum, gold_sum, seen_previous, expected_step, raw_reply,
                      reasoning, answer_status, model_answer, bool(correct), bool(step_correct), history_answer,
                      bool(injected), tokens_in, tokens_out, latency_s, retries, started_at, finished_at,
                      tokens_cached, tokens_cache_write, tokens_reasoning, bool(inherited), empty_retries or 0,
                      provider_error)


def has_column(db: Database, table: str, column: str) -> bool:
    """Whether the store has `column` (a read-only store is never migrated, so it may predate it)."""
    # (on the connection itself: a PRAGMA through db.execute would go to sqlite-utils, importing it and numpy)
    return any(row[1] == column for row in db.conn.execute(f"PRAGMA table_info({table})").fetchall())


def _played(db: Database) -> str:
    """The SQL condition for turns this session paid for: a fork's inherited turns were its parent's."""
    return " AND inherited IS NOT 1" if has_column(db, "turns", "inherited") else ""


def session_token_totals(db: Database, session_id: str, sample: int | None = None) -> TokenTotals:
    """The session's (or one sample's) summed token counts, over the turns it played (a fork's inherited
    turns were paid for by its parent); a count no turn reported is None ("not reported")."""
    sql, params = TOTALS_SQL + " WHERE session_id = ?" + _played(db), [session_id]
    if sample is not None:
        sql, params = sql + " AND sample = ?", [session_id, sample]
    return totals_from_row(tuple(db.execute(sql, params).fetchone()))


def listed_token_totals(db: Database, session_id: str) -> TokenTotals:
    """`session_token_totals` as the session lists price it: an ended session's as stored when it ended
    (`store_token_totals`: 776 sessions of a 1.1 GB store without reading their 1.2 M turns), else summed."""
    stored = _stored_token_totals(db, session_id)
    return stored if stored is not None else session_token_totals(db, session_id)


def _stored_token_totals(db: Database, session_id: str) -> TokenTotals | None:
    if not has_column(db, "sessions", "token_totals_json"):
        return None          # a store older than m006 (read-only, so never migrated)
    row = db.conn.execute("SELECT token_totals_json FROM sessions WHERE id = ? AND status != 'running'",
                          [session_id]).fetchone()
    return None if row is None else _totals_from_json(row[0])


def _totals_from_json(text: str | None) -> TokenTotals | None:
    if not text:
        return None
    try:
        return TokenTotals(*json.loads(text))
    except (ValueError, TypeError):
        return None


def _all_stored_token_totals(db: Database) -> dict[str, TokenTotals]:
    """Every ended session's stored totals, in one query (`_stored_token_totals` for a whole list)."""
    if not has_column(db, "sessions", "token_totals_json"):
        return {}
    rows = db.conn.execute("SELECT id, token_totals_json FROM sessions WHERE status != 'running'").fetchall()
    return {session_id: totals for session_id, text in rows if (totals := _totals_from_json(text)) is not None}


def store_token_totals(db: Database, session_id: str, tally: RunTally | None = None) -> None:
    """Store the ended session's token totals (summed from its turns, or taken from `tally`, its writer's)
    beside it (in the caller's transaction)."""
    totals = tally.token_totals() if tally is not None else session_token_totals(db, session_id)
    db.conn.execute("UPDATE sessions SET token_totals_json = ? WHERE id = ?",
                    [json.dumps(dataclasses.astuple(totals)), session_id])


def session_cost(db: Database, session_id: str, model: str | None, prices: PriceTable | None = None, *,
                 listed: bool = False) -> str:
    """The session's cost as the lists show it (core.prices.cost_cell), over the turns it played; `listed`:
    from its stored totals when it has ended (`listed_token_totals`)."""
    table = prices if prices is not None else load_prices()
    totals = listed_token_totals(db, session_id) if listed else session_token_totals(db, session_id)
    return cost_cell(totals, table.for_model(model))


def session_costs(db: Database, rows: list[dict], prices: PriceTable | None = None) -> dict[str, str]:
    """Each listed session's (list_sessions rows) cost cell: `lhe-tui sessions` and the TUI's sessions screen."""
    table = prices if prices is not None else load_prices()
    stored = _all_stored_token_totals(db)
    costs = {}
    for row in rows:
        totals = stored.get(row["id"])
        if totals is None:      # running, or ended before its totals were stored
            totals = session_token_totals(db, row["id"])
        costs[row["id"]] = cost_cell(totals, table.for_model(row.get("model")))
    return costs


def token_totals_by_sample(db: Database, session_id: str) -> dict[int, TokenTotals]:
    rows = db.execute(TOTALS_SQL.replace("SELECT ", "SELECT sample, ", 1) + " WHERE session_id = ?" + _played(db)
                      + " GROUP BY sample",
                      [session_id]).fetchall()
    return {row[0]: totals_from_row(tuple(row[1:])) for row in rows}


def load_turns(db: Database, session_id: str, sample: int | None = None) -> list[TurnRecord]:
    """Turns ordered by sample then turn."""
    sql = _RECORD_SELECT + " WHERE session_id = ?"
    params: list[Any] = [session_id]
    if sample is not None:
        sql += " AND sample = ?"
        params.append(sample)
    return [record_from_tuple(r) for r in db.execute(sql + " ORDER BY sample, turn", params).fetchall()]


def first_errors_after(db: Database, session_id: str, turn: int) -> dict[int, int | None]:
    """Per sample, the first wrong turn after `turn` (a fork's turn: how far the fork went), None: none yet."""
    rows = db.execute("SELECT s.sample, (SELECT MIN(t.turn) FROM turns t WHERE t.session_id = s.session_id AND "
                      "t.sample = s.sample AND t.turn > ? AND t.correct = 0) FROM samples s WHERE s.session_id = ? "
                      "ORDER BY s.sample", [turn, session_id]).fetchall()
    return {int(sample): first for sample, first in rows}


def load_turn_range(db: Database, session_id: str, sample: int, first: int, last: int) -> list[TurnRecord]:
    """`sample`'s stored turns first..last (inclusive), in turn order: a primary-key range read."""
    return [record_from_tuple(r) for r in db.execute(
        _RECORD_SELECT + " WHERE session_id = ? AND sample = ? AND turn BETWEEN ? AND ? ORDER BY turn",
        [session_id, sample, first, last]).fetchall()]


TURN_INDEX_COLUMNS = ("sample", "turn", "correct", "injected", "history_answer", "finished_at")
_INDEX_SELECT = "SELECT " + ", ".join(TURN_INDEX_COLUMNS) + " FROM turns WHERE session_id = ?"


def load_turn_index(db: Database, session_id: str) -> list[tuple]:
    """The light columns of every stored turn (TURN_INDEX_COLUMNS), in the order the turns finished
    (finish time, then sample, then turn): what a replay needs to lay out its frames without the replies.
    The `turns_by_finish` index covers it (no table rows read, no sort)."""
    return db.execute(_INDEX_SELECT + " ORDER BY finished_at, sample, turn", [session_id]).fetchall()


def load_turn_index_page(db: Database, session_id: str, *, after: tuple | None, skip: int, limit: int,
                         max_rowid: int) -> list[tuple]:
    """Up to `limit` rows of `load_turn_index` that follow the row `after` (a TURN_INDEX_COLUMNS tuple;
    None: from the first), among the rows with rowid <= max_rowid (the turns stored when a replay was
    opened). A keyset read on `turns_by_finish`, so page n costs what page 1 does; when `after` has no
    finish time (NULLs sort first, and a row value with a NULL compares to nothing) the page is found by
    skipping `skip` rows instead."""
    sql = _INDEX_SELECT + " AND rowid <= ?"
    params: list[Any] = [session_id, max_rowid]
    if after is not None and after[5] is not None:
        sql += " AND (finished_at, sample, turn) > (?, ?, ?)"
        params += [after[5], after[0], after[1]]
        skip = 0
    sql += " ORDER BY finished_at, sample, turn LIMIT ? OFFSET ?"
    return db.execute(sql, [*params, limit, skip if after is not None else 0]).fetchall()


def count_turns(db: Database, session_id: str) -> tuple[int, int]:
    """(the session's stored turns, the turns table's highest rowid): a replay's length and the bound that
    keeps turns stored after it opened out of it."""
    count = db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    return count, db.execute("SELECT MAX(rowid) FROM turns").fetchone()[0] or 0


_SPAN_SQL = """WITH RECURSIVE s(n) AS (SELECT (SELECT MIN(sample) FROM turns WHERE session_id = :id) UNION ALL
    SELECT (SELECT MIN(sample) FROM turns WHERE session_id = :id AND sample > s.n) FROM s WHERE s.n IS NOT NULL)
SELECT TOTAL((SELECT MAX(turn) FROM turns WHERE session_id = :id AND sample = s.n)
             - (SELECT MIN(turn) FROM turns WHERE session_id = :id AND sample = s.n) + 1) FROM s WHERE n IS NOT NULL"""


def count_turns_by_span(db: Database, session_id: str) -> tuple[int, int]:
    """`count_turns` without counting: the sum over the session's samples of last turn - first turn + 1, and the
    highest rowid. Exact when no sample has a gap in its turns (as lhe-tui stores them), else more, never fewer.
    A few primary-key lookups a sample (a skip scan), where COUNT(*) reads every turn's index entry (0.1 s at
    1,000,000 turns; issue 26: opening must not cost the session's size)."""
    spans = db.conn.execute(_SPAN_SQL, {"id": session_id}).fetchone()[0]
    return int(spans or 0), db.conn.execute("SELECT MAX(rowid) FROM turns").fetchone()[0] or 0


def last_turn(db: Database, session_id: str, sample: int) -> int | None:
    """`sample`'s last stored turn (a primary-key lookup)."""
    return db.execute("SELECT MAX(turn) FROM turns WHERE session_id = ? AND sample = ?",
                      [session_id, sample]).fetchone()[0]


def turn_started_at(db: Database, session_id: str, sample: int, turn: int) -> float | None:
    row = db.execute("SELECT started_at FROM turns WHERE session_id = ? AND sample = ? AND turn = ?",
                     [session_id, sample, turn]).fetchone()
    return row[0] if row else None


def last_turns(db: Database, session_id: str) -> dict[int, int]:
    """Each sample's last stored turn."""
    return dict(db.execute("SELECT sample, MAX(turn) FROM turns WHERE session_id = ? GROUP BY sample",
                           [session_id]).fetchall())


def flags_by_sample(db: Database, session_id: str, *, with_empty: bool = False,
                    step_rule: str = "own") -> tuple[list[list[bool]], list[list[bool]]]:
    """(answer-correct, update) flags per sample, indexed by turn: what the answer/task and the turn accuracy
    curves take. The update flags follow `step_rule` (lhe_tui.core.step_rules): "own" reads the stored
    `step_correct` column alone (cheap); a reference rule reads the few columns it rescores from.
    `with_empty`: also the session's samples with no stored turn (empty lists), so the lists line up with
    the samples table (a sample that failed at its first turn still counts)."""
    rule = check_step_rule(step_rule)
    correct: dict[int, list[bool]] = {}
    scored: dict[int, list] = {}
    if with_empty:
        for (sample,) in db.execute("SELECT sample FROM samples WHERE session_id = ?", [session_id]).fetchall():
            correct[sample], scored[sample] = [], []
    if rule == "own":
        for row in db.execute("SELECT sample, correct, step_correct FROM turns WHERE session_id = ? "
                              "ORDER BY sample, turn", [session_id]).fetchall():
            correct.setdefault(row[0], []).append(bool(row[1]))
            scored.setdefault(row[0], []).append(bool(row[2]))
        samples = sorted(correct)
        return [correct[s] for s in samples], [scored[s] for s in samples]
    for row in db.execute("SELECT sample, correct, turn, turn_sum, model_answer, history_answer, seen_previous, "
                          "step_correct FROM turns WHERE session_id = ? ORDER BY sample, turn",
                          [session_id]).fetchall():
        correct.setdefault(row[0], []).append(bool(row[1]))
        scored.setdefault(row[0], []).append(ScoredTurn(row[2], row[3] or 0, row[4], row[5], row[6], bool(row[7])))
    samples = sorted(correct)
    return [correct[s] for s in samples], [update_flags(scored[s], rule) for s in samples]


@dataclass(frozen=True)
class SessionFlags:
    """What every metric function takes, for one stored session: per sample (every sample of the session, in
    order, those with no stored turn included) its answer-correct flags and its update (turn-accuracy)
    flags under `step_rule`, and its status, with the configured turns and keys per turn."""

    correct: list[list[bool]]
    update: list[list[bool]]
    status: list[str | None]
    turns: int | None
    k: int
    step_rule: str = "own"
    answered: bool = True   # some turn was answered (False: none, or only turns whose request failed): no data


def has_answered_turn(db: Database, session_id: str) -> bool:
    """Whether the provider answered any of the session's turns (else the session has no metrics: "no data")."""
    return db.execute(f"SELECT EXISTS (SELECT 1 FROM turns WHERE session_id = ? AND {ANSWERED_SQL})",
                      [session_id]).fetchone()[0] == 1


def session_step_rule(db: Database, session_id: str) -> str:
    """The step rule stored with the session (`--step-rule` of its run); "own" when none was stored."""
    row = db.execute("SELECT config_json FROM sessions WHERE id = ?", [session_id]).fetchone()
    try:
        rule = (json.loads(row[0] or "{}") or {}).get("step_rule") if row else None
    except (ValueError, TypeError, AttributeError):
        rule = None
    if rule is None:
        return "own"
    if rule not in STEP_RULES:
        raise StoreError(f"session {session_id} stores an unknown step rule {rule!r} (expected one of "
                         f"{', '.join(STEP_RULES)}): give --step-rule to read it")
    return rule


def session_flags(db: Database, session_id: str, step_rule: str | None = None,
                  tally: RunTally | None = None) -> SessionFlags:
    """`step_rule`: score the turn accuracy under this rule; None: the session's own (`session_step_rule`).
    `tally`: the session's turns as its writer tallied them (lhe_tui.store.tally), read instead of the turns
    when the rule is "own" (a reference rule rescores from columns it does not keep)."""
    rule = step_rule if step_rule is not None else session_step_rule(db, session_id)
    if tally is not None and rule == "own":
        (correct, update), answered = tally.flags(), tally.answered
    else:
        correct, update = flags_by_sample(db, session_id, with_empty=True, step_rule=rule)
        answered = has_answered_turn(db, session_id)
    status = [row[0] for row in db.execute("SELECT status FROM samples WHERE session_id = ? ORDER BY sample",
                                           [session_id]).fetchall()]
    turns, k = db.execute("SELECT turns, k FROM sessions WHERE id = ?", [session_id]).fetchone() or (None, 1)
    if len(status) != len(correct):   # turns of samples the samples table does not list (not from lhe-tui)
        status = [None] * len(correct)
    return SessionFlags(correct, update, status, turns, max(1, k or 1), rule, answered)


def load_events(db: Database, session_id: str, kinds: tuple[str, ...] | None = None, *,
                after_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM events WHERE session_id = ?"
    params: list[Any] = [session_id]
    if after_id is not None:
        sql += " AND id > ?"
        params.append(after_id)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    rows = list(db.query(sql + " ORDER BY id", params))
    for row in rows:
        row["payload"] = json.loads(row.pop("payload_json") or "{}")
    return rows


def max_event_id(db: Database) -> int:
    return db.execute("SELECT MAX(id) FROM events").fetchone()[0] or 0


ALIVE_SECONDS = 20.0
"""A `running` session with no writer lock file (stored before the locks, or by an older lhe-tui) whose
last turn is newer than this is taken to be alive."""


def writer_state(db: Database, session_id: str, *, now: float | None = None) -> bool | None:
    """Whether a `running` session's writer is alive: True, False (it crashed: SIGKILL, power cut), None
    (no lock to tell by and no turn stored lately: taken for dead by `live_status`). See lhe_tui.store.locks."""
    from lhe_tui.store.locks import writer_alive

    path = getattr(db, "path", None)
    alive = writer_alive(path, session_id) if path is not None else None
    if alive is not None:
        return alive
    last = db.execute("SELECT MAX(finished_at) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    if last is not None and (time.time() if now is None else now) - last < ALIVE_SECONDS:
        return True
    return None


def live_status(db: Database, session_id: str, status: str | None) -> str | None:
    """The stored status, except `crashed` for a session left `running` whose writer is gone."""
    if status == "running" and not writer_state(db, session_id):
        return "crashed"
    return status


def nothing_to_resume(db: Database, session: dict[str, Any]) -> tuple[int, int] | None:
    """(stored turns, expected turns) when the stored run `session` (a load_session row) has nothing left to
    resume; None when it has. A run killed after its last turn but before its end record (left `running`, now
    `crashed`) or stopped there (`interrupted`) still has its end to write: resuming it writes that."""
    expected = (session.get("n_samples") or 0) * (session.get("turns") or 0)
    done = db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session["id"]]).fetchone()[0]
    status = session.get("status")
    if status == "finished":
        return done, expected
    if expected and done >= expected and live_status(db, session["id"], status) not in ("crashed", "interrupted"):
        return done, expected
    return None


def list_sessions(db: Database) -> list[dict[str, Any]]:
    """Each session's list row, newest first (the one order of `lhe-tui sessions`, the TUI and the API); `protocol` and `prompt` come out of its config (older sessions: the rules and
    prompt of then, `lenient` and `lhe-v1`); `status` is `crashed` for a session left `running` by a writer
    that is gone (`live_status`); `answered` (0/1): whether any turn was answered (0: "no data", whatever
    metrics an older lhe-tui stored)."""
    rows = _session_rows(db)
    for row in rows:
        if not row.pop("config_valid"):
            row["status"], row["protocol"], row["prompt"] = UNREADABLE, "?", "?"
        elif row["status"] == "running":
            row["status"] = live_status(db, row["id"], row["status"])
        if row["kind"] == "probe":   # one turn per sample: a task accuracy, H_s or p would mean nothing
            row.update(final_task_accuracy=None, horizon_05=None, fitted_p=None,
                       probe_accuracy=probe_accuracy(db, row["id"]))
    return rows


def probe_accuracy(db: Database, session_id: str) -> list[tuple[float, int, float]]:
    """A probe's own figures: per history error rate, (rate, samples answered, share right at the target turn)."""
    return [(rate, n, right / n) for rate, n, right in db.execute(
        "SELECT s.probe_rate, COUNT(*), TOTAL(t.correct) FROM samples s JOIN turns t ON t.session_id = s.session_id "
        "AND t.sample = s.sample WHERE s.session_id = ? AND s.probe_rate IS NOT NULL GROUP BY s.probe_rate "
        "ORDER BY s.probe_rate", [session_id]).fetchall()]


def _session_rows(db: Database) -> list[dict[str, Any]]:
    lineage = ("parent_id, fork_turn, fork_json, group_id, arm, " if has_column(db, "sessions", "group_id")
               else "NULL AS parent_id, NULL AS fork_turn, NULL AS fork_json, NULL AS group_id, NULL AS arm, ")
    if has_column(db, "sessions", "sweep_id"):
        lineage += "sweep_id, sweep_run, "
    return list(db.query("SELECT id, kind, status, provider, model, simulated, mode, k, turns, n_samples, seed, "
                         + lineage +
                         "created_at, ended_at, final_task_accuracy, horizon_05, fitted_p, "
                         f"EXISTS (SELECT 1 FROM turns WHERE turns.session_id = sessions.id AND {ANSWERED_SQL}) "
                         "AS answered, "
                         # json_extract on malformed JSON fails the whole query: only where json_valid
                         "json_valid(COALESCE(NULLIF(config_json, ''), '{}')) AS config_valid, "
                         f"COALESCE(CASE WHEN json_valid(config_json) THEN json_extract(config_json, '$.protocol') "
                         f"END, '{LEGACY_PROTOCOL}') AS protocol, "
                         f"COALESCE(CASE WHEN json_valid(config_json) THEN json_extract(config_json, '$.prompt') "
                         f"END, '{LEGACY_PROMPT}') AS prompt "
                         "FROM sessions ORDER BY created_at DESC, rowid DESC"))
