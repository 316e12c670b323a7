"""Export a session's turns as JSON (with the session, its summary and curves), CSV (one row a turn), or its
per-turn curves as CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING

from lhe_tui.store.queries import load_samples, load_session, session_flags
from lhe_tui.store.summary import session_summary

if TYPE_CHECKING:
    from sqlite_utils import Database

EXPORT_COLUMNS = ("sample", "turn", "keys", "key_values_json", "turn_sum", "gold_sum", "seen_previous",
                  "expected_step", "model_answer", "answer_status", "correct", "step_correct", "history_answer",
                  "injected", "tokens_in", "tokens_out", "latency_s", "retries", "raw_reply", "reasoning")


def _turn_rows(db: Database, session_id: str) -> list[dict]:
    return list(db.query(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM turns WHERE session_id = ? ORDER BY sample, turn",
                         [session_id]))


CURVE_COLUMNS = ("turn", "steps", "n", "turn_accuracy", "step_accuracy", "task_accuracy")


def curve_rows(db: Database, session_id: str) -> list[dict]:
    """The per-turn curves, with `n` (how many samples the point counts: a failed sample counts as wrong past
    its failure) and `steps` (keys answered by the end of the turn: turn * K)."""
    from lhe_tui.metrics import sample_counts, step_accuracy, task_accuracy, turn_accuracy

    flags = session_flags(db, session_id)
    ragged = dict(status=flags.status, turns=flags.turns)
    curves = zip(sample_counts(flags.correct, **ragged), turn_accuracy(flags.correct, **ragged),
                 step_accuracy(flags.step, **ragged), task_accuracy(flags.correct, **ragged))
    return [dict(zip(CURVE_COLUMNS, (t, t * flags.k, n, ta, sa, ka))) for t, (n, ta, sa, ka) in enumerate(curves, 1)]


def summary_dict(db: Database, session_id: str) -> dict:
    """The headline metrics, per turn and per step (key): docs/protocol.md."""
    summary = session_summary(db, session_id)
    return {"s": summary.s, "k": summary.k, "samples": summary.n_samples, "turns": summary.n_turns,
            "mean_turn_accuracy": summary.mean_turn_accuracy, "final_task_accuracy": summary.final_task_accuracy,
            "fitted_p_turn": summary.fitted_p, "fitted_p_step": summary.fitted_p_step,
            "horizon_measured_turns": summary.horizon_measured,
            "horizon_measured_steps": summary.horizon_measured_steps,
            "horizon_theory_turns": _finite(summary.horizon_theory),
            "horizon_theory_steps": _finite(summary.horizon_theory_steps),
            "first_errors": summary.first_errors}


def _finite(value: float | None) -> float | str | None:
    return "inf" if value is not None and math.isinf(value) else value


def export_json(db: Database, session_id: str) -> str:
    session = load_session(db, session_id)
    samples = [{k: v for k, v in s.items() if k != "session_id"} for s in load_samples(db, session_id)]
    return json.dumps({"session": session, "summary": summary_dict(db, session_id),
                       "curves": curve_rows(db, session_id), "samples": samples,
                       "turns": _turn_rows(db, session_id)}, indent=1)


def export_curves_csv(db: Database, session_id: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(curve_rows(db, session_id))
    return buffer.getvalue()


def export_csv(db: Database, session_id: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_turn_rows(db, session_id))
    return buffer.getvalue()
