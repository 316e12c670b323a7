"""Fixtures for the TUI tests: small seeded sim runs (no delay), stored sessions, apps on tmp_path stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database

# Turns of a live run that a test acts on while it goes on (and ends with `x`): a short run at full speed can
# end first on a loaded machine (issue 28).
ENDLESS = 100_000
# A sim model that errs often enough that a 60-turn sample has a first error.
ERRING = dict(sim_base_error=0.03, sim_growth=0.0, sim_delay=0.0)


def run_headless(db_path: Path, config: RunConfig, session_id: str | None = None) -> str:
    db = open_database(db_path)
    prepared = prepare_run(config, db, session_id=session_id, stream_deltas=False)
    asyncio.run(prepared.runner.run())
    db.conn.close()
    return prepared.session_id


def freeze_session(db_path: Path, session_id: str) -> None:
    """Make a stored session time-independent: fixed dates, turn times, latencies (for snapshots)."""
    db = open_database(db_path)
    with db.conn:
        db.execute("UPDATE sessions SET created_at = '2026-01-01T12:00:00+00:00', "
                   "ended_at = '2026-01-01T12:00:30+00:00', wall_time_s = 30.0 WHERE id = ?", [session_id])
        rows = db.execute("SELECT sample, turn FROM turns WHERE session_id = ? ORDER BY turn, sample",
                          [session_id]).fetchall()
        for index, (sample, turn) in enumerate(rows):
            db.execute("UPDATE turns SET started_at = ?, finished_at = ?, latency_s = 0.25 "
                       "WHERE session_id = ? AND sample = ? AND turn = ?",
                       [1000.0 + index * 0.1, 1000.0 + index * 0.1 + 0.05, session_id, sample, turn])
    db.conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ui.db"


@pytest.fixture
def stored_session(db_path: Path) -> str:
    """3 samples x 60 turns with errors, finished."""
    return run_headless(db_path, RunConfig(samples=3, turns=60, seed=4, **ERRING))


@pytest.fixture
def plots_in_render(monkeypatch):
    """Build plots inside `render` (as plotext usually is) so a snapshot never catches a build in flight;
    the threaded path has its own test (test_plot_build.py)."""
    from lhe_tui.ui import plotting

    monkeypatch.setattr(plotting, "BUILD_IN_THREAD", False)
