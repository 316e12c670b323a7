"""The store's schema, as sqlite-utils migrations (one function per version; never edit an applied one)."""

from __future__ import annotations

import json

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("lhe_tui")


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    db["sessions"].create({
        "id": str, "kind": str, "status": str, "provider": str, "model": str, "provider_label": str,
        "simulated": int, "mode": str, "k": int, "turns": int, "n_samples": int, "seed": int,
        "dataset": str, "created_at": str, "ended_at": str, "wall_time_s": float, "message": str,
        "final_task_accuracy": float, "horizon_05": int, "fitted_p": float,
        "config_json": str, "dictionary_json": str, "app_version": str,
    }, pk="id")
    db["samples"].create({
        "session_id": str, "sample": int, "status": str, "message": str, "keys_json": str,
        "first_error_turn": int, "probe_rate": float,
    }, pk=("session_id", "sample"), foreign_keys=[("session_id", "sessions", "id")])
    db["turns"].create({
        "session_id": str, "sample": int, "turn": int, "keys": str, "key_values_json": str,
        "turn_sum": int, "gold_sum": int, "seen_previous": int, "expected_step": int,
        "raw_reply": str, "reasoning": str, "answer_status": str, "model_answer": int,
        "correct": int, "step_correct": int, "history_answer": int, "injected": int,
        "tokens_in": int, "tokens_out": int, "latency_s": float, "retries": int,
        "started_at": float, "finished_at": float,
    }, pk=("session_id", "sample", "turn"), foreign_keys=[("session_id", "sessions", "id")])
    db["events"].create({
        "id": int, "session_id": str, "sample": int, "turn": int, "kind": str, "payload_json": str, "at": float,
        "created_at": str,
    }, pk="id", foreign_keys=[("session_id", "sessions", "id")])
    db["events"].create_index(["session_id", "kind"])


@MIGRATIONS()
def m002_turns_by_finish(db: Database) -> None:
    # Covers the replay's opening read (lhe_tui.store.queries.load_turn_index): the light columns of a
    # session's turns in finish order, read from the index alone, with no sort and no table rows.
    db["turns"].create_index(["session_id", "finished_at", "sample", "turn", "correct", "injected",
                              "history_answer"], index_name="turns_by_finish", if_not_exists=True)


@MIGRATIONS()
def m003_step_from_last_stated_answer(db: Database) -> None:
    """Issue 13: step accuracy builds on the model's last valid answer as its history showed it, plus the keys
    of every turn since (it used to build on the gold sum after a turn with no answer). Recomputes every
    stored turn's seen_previous, expected_step and step_correct from what is stored, exactly as the runner
    (lhe_tui.runner.step_base.StepBase) now scores them, then the sessions' metrics derived from them."""
    _rescore_steps(db)
    _resummarize_sessions(db)


@MIGRATIONS()
def m004_turn_token_details(db: Database) -> None:
    """Issue 17: the parts of a turn's token counts the server reports: input read from and written to the
    prompt cache, and output spent on reasoning. NULL where not reported (every turn stored before)."""
    turns = db["turns"]
    for column in ("tokens_cached", "tokens_cache_write", "tokens_reasoning"):
        if column not in turns.columns_dict:
            turns.add_column(column, int)


@MIGRATIONS()
def m005_lineage(db: Database) -> None:
    """Issue 15: a session's lineage (lhe_tui.core.lineage): the session it was forked from, at which turn,
    with which samples and edit, and the group and arm of a side-by-side run; and per turn whether it was
    copied from the parent (`inherited`: the fork did not pay for it). NULL everywhere before: plain runs."""
    sessions = db["sessions"]
    for column, kind in (("parent_id", str), ("fork_turn", int), ("fork_json", str), ("group_id", str),
                         ("arm", str)):
        if column not in sessions.columns_dict:
            sessions.add_column(column, kind)
    if "inherited" not in db["turns"].columns_dict:
        db["turns"].add_column("inherited", int)
    sessions.create_index(["parent_id"], index_name="sessions_by_parent", if_not_exists=True)
    sessions.create_index(["group_id"], index_name="sessions_by_group", if_not_exists=True)


@MIGRATIONS()
def m006_failed_turns_and_no_data(db: Database) -> None:
    """Issue 21: under the paper protocol a turn whose request failed after its retries is stored as a turn
    with no answer (answer_status 'failed') and why (`provider_error`), and an empty reply is asked for again
    (`empty_retries` times). NULL / 0 before: no turn failed so. A session that ended with no answered turn
    (every request failed: a wrong key, model or address) has no metrics: the 0% accuracy, H_0.5 = 1 and
    p = 0 stored for such sessions before are cleared."""
    from lhe_tui.store.queries import ANSWERED_SQL

    turns = db["turns"]
    if "empty_retries" not in turns.columns_dict:
        turns.add_column("empty_retries", int)
    if "provider_error" not in turns.columns_dict:
        turns.add_column("provider_error", str)
    db.conn.execute("UPDATE sessions SET final_task_accuracy = NULL, horizon_05 = NULL, fitted_p = NULL "
                    "WHERE ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM turns WHERE turns.session_id = "
                    f"sessions.id AND {ANSWERED_SQL})")


@MIGRATIONS()
def m007_session_token_totals(db: Database) -> None:
    """Issue 22: an ended session's summed token counts (lhe_tui.store.queries.session_token_totals), stored
    as its run ends, so `lhe-tui sessions` prices 750 sessions without reading 1.2 M turns (4.9 s cold on a
    1.1 GB store; `lhe_tui.store.queries.listed_token_totals`). NULL while a session runs (and for one a
    recovery cut short): summed from its turns then."""
    if "token_totals_json" not in db["sessions"].columns_dict:
        db["sessions"].add_column("token_totals_json", str)
    from lhe_tui.store.queries import store_token_totals

    for (session_id,) in db.conn.execute("SELECT id FROM sessions WHERE ended_at IS NOT NULL AND "
                                         "status != 'running'").fetchall():
        store_token_totals(db, session_id)


@MIGRATIONS()
def m008_sweeps(db: Database) -> None:
    """Issue 24: sweeps. A `sweeps` table (the sweep's id, name, source file, its planned runs with their axes,
    configs and session ids, and its options: limits, budget, probe), and per session the sweep it is a run
    of and that run's name. NULL everywhere before: sessions of no sweep. """
    if "sweeps" not in db.table_names():
        db["sweeps"].create({"id": str, "name": str, "source": str, "created_at": str, "plan_json": str},
                            pk="id")
    sessions = db["sessions"]
    for column in ("sweep_id", "sweep_run"):
        if column not in sessions.columns_dict:
            sessions.add_column(column, str)
    sessions.create_index(["sweep_id"], index_name="sessions_by_sweep", if_not_exists=True)


def _rescore_steps(db: Database) -> None:
    """One pass over the turns, ordered by (session, sample, turn), plus the injection events.

    Injections: `turns.history_answer` holds an injected turn's final value. An injection into turn j is
    made while j is the sample's latest finished turn, so every turn from j + 2 on was sent with the final
    value; turn j + 1 may have been in flight already (a manual injection), and then it was sent and scored
    with the value before. Which one is told by the injection events' time (`events.at`) against turn
    j + 1's `started_at` (both the run process's time.time()): an event at or before the start applied.
    A probe's samples start from a synthetic history that is not stored (their first turn is the target
    turn), and the old and new rules agree there (every synthetic turn shows an answer): samples that do not
    start at turn 1 or have gaps are left as they are.
    """
    conn = db.conn
    injections: dict[tuple[str, int, int], list[tuple[float | None, int | None, int]]] = {}
    for session_id, sample, turn, payload, at in conn.execute(
            "SELECT session_id, sample, turn, payload_json, at FROM events WHERE kind = 'injected' ORDER BY id"):
        try:
            data = json.loads(payload or "{}")
            injections.setdefault((session_id, sample, turn), []).append((at, data.get("original"),
                                                                           int(data["injected"])))
        except (ValueError, KeyError, TypeError):
            continue   # an unreadable event: the turn's stored (final) value stands
    probes = {row[0] for row in conn.execute("SELECT id FROM sessions WHERE kind = 'probe'")}
    updates: list[tuple[int, int, int, int]] = []
    cursor = conn.execute("SELECT rowid, session_id, sample, turn, turn_sum, model_answer, history_answer, "
                          "started_at, seen_previous, expected_step, step_correct FROM turns "
                          "ORDER BY session_id, sample, turn")
    key = None
    skip = False
    for (rowid, session_id, sample, turn, turn_sum, answer, shown, started, old_seen, old_expected,
         old_step) in cursor:
        if (session_id, sample) != key:
            key = (session_id, sample)
            skip = session_id in probes or turn != 1
            last, since = 0, 0            # the base before the previous turn (as StepBase)
            prev_turn, prev_sum, prev_shown = 0, 0, None
        elif turn != prev_turn + 1:
            skip = True                   # a gap: the base after it is unknown
        if skip:
            continue
        # The previous turn's history answer as this turn was sent (an injection while it was in flight
        # came too late for it).
        shown_then = prev_shown
        events = injections.get((session_id, sample, prev_turn)) if prev_turn else None
        if events:
            shown_then = events[0][1]
            for at, _original, value in events:
                if at is None or started is None or at <= started:
                    shown_then = value
        if not prev_turn:
            seen = 0
        elif shown_then is None:
            seen = last + since + prev_sum
        else:
            seen = shown_then
        expected = seen + turn_sum
        step = int(answer is not None and answer == expected)
        if (seen, expected, step) != (old_seen, old_expected, old_step):
            updates.append((seen, expected, step, rowid))
        # The base for the turns after the next one: the previous turn's final history answer.
        if prev_turn:
            if prev_shown is None:
                since += prev_sum
            else:
                last, since = prev_shown, 0
        prev_turn, prev_sum, prev_shown = turn, turn_sum, shown
    conn.executemany("UPDATE turns SET seen_previous = ?, expected_step = ?, step_correct = ? WHERE rowid = ?",
                     updates)


def _resummarize_sessions(db: Database) -> None:
    """The stored headline metrics of every ended session, again (the writer stores them at the end of a run)."""
    from lhe_tui.store.summary import session_summary

    for (session_id,) in db.conn.execute("SELECT id FROM sessions WHERE ended_at IS NOT NULL").fetchall():
        summary = session_summary(db, session_id)
        db.conn.execute("UPDATE sessions SET final_task_accuracy = ?, horizon_05 = ?, fitted_p = ? WHERE id = ?",
                        [summary.final_task_accuracy, summary.horizon_measured, summary.mean_turn_accuracy,
                         session_id])
