"""The store's schema, as sqlite-utils migrations (one function per version; never edit an applied one)."""

from __future__ import annotations

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
