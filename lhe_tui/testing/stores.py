"""Stores built for tests and benchmarks."""

from __future__ import annotations

import sqlite3


def insert_unscored_turns(conn: sqlite3.Connection, session_id: str = "big", samples: int = 100,
                          turns: int = 1000) -> None:
    """A finished session of `samples` x `turns` stored turns, every fifth answer missing and no step flag
    scored yet: what the m003 step rescoring (lhe_tui.store.schema._rescore_steps) works through."""
    conn.execute("INSERT INTO sessions (id, kind, status) VALUES (?, 'run', 'finished')", [session_id])
    rows = []
    for sample in range(samples):
        gold = 0
        for turn in range(1, turns + 1):
            turn_sum = (sample * 7 + turn * 13) % 199 - 99
            gold += turn_sum
            answer = None if turn % 5 == 0 else gold
            rows.append((session_id, sample, turn, turn_sum, gold, 0, 0, answer, answer, 0, float(turn)))
    with conn:
        conn.executemany("INSERT INTO turns (session_id, sample, turn, turn_sum, gold_sum, seen_previous, "
                         "expected_step, model_answer, history_answer, step_correct, started_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
