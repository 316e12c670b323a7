"""Export a session's turns as JSON (with the session) or CSV (one row a turn)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from lhe_tui.store.queries import load_samples, load_session

if TYPE_CHECKING:
    from sqlite_utils import Database

EXPORT_COLUMNS = ("sample", "turn", "keys", "key_values_json", "turn_sum", "gold_sum", "seen_previous",
                  "expected_step", "model_answer", "answer_status", "correct", "step_correct", "history_answer",
                  "injected", "tokens_in", "tokens_out", "latency_s", "retries", "raw_reply", "reasoning")


def _turn_rows(db: Database, session_id: str) -> list[dict]:
    return list(db.query(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM turns WHERE session_id = ? ORDER BY sample, turn",
                         [session_id]))


def export_json(db: Database, session_id: str) -> str:
    session = load_session(db, session_id)
    samples = [{k: v for k, v in s.items() if k != "session_id"} for s in load_samples(db, session_id)]
    return json.dumps({"session": session, "samples": samples, "turns": _turn_rows(db, session_id)}, indent=1)


def export_csv(db: Database, session_id: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_turn_rows(db, session_id))
    return buffer.getvalue()
