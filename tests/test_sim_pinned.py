"""Issue 26: the sim reads its history incrementally, and must answer exactly as it did when it re-read
the whole history every turn.

The digests below were recorded from main at 37b0163 (before the change), by running this file's
scenarios there (`python -m tests.test_sim_pinned` prints them). A digest covers every stored turn's
reply, reasoning, parsed answer and token counts, so one changed reply anywhere fails the test. The
scenarios rebuild the history the sim sees in every way a run can: scripted and manual injections (the
runner re-renders its messages), a sliding window, an induced error rate, healing, a resume with a fresh
provider and with the same provider object, a fork with an edited answer, and a target-turn probe.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import TurnFinished
from lhe_tui.providers.factory import make_provider
from lhe_tui.session import prepare_resume, prepare_run
from lhe_tui.store.database import open_database

COLUMNS = "sample, turn, raw_reply, reasoning, answer_status, model_answer, history_answer, tokens_in, tokens_out"


def digest(db: Path, session_id: str | None = None) -> str:
    """sha256 over the session's turns (the newest session if none is named), in (sample, turn) order."""
    with sqlite3.connect(db) as conn:
        if session_id is None:
            session_id = conn.execute("SELECT id FROM sessions ORDER BY rowid DESC").fetchone()[0]
        rows = conn.execute(f"SELECT {COLUMNS} FROM turns WHERE session_id = ? ORDER BY sample, turn",
                            [session_id]).fetchall()
    return f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()[:24]


def cli_run(db: Path, *args: str) -> str:
    assert main(["run", "--headless", "--provider", "sim", "--sim-delay", "0", "--db", str(db), *args]) == 0
    return digest(db)


def run_programmatic(db: Path, config: RunConfig, *, stop_after: int | None = None,
                     on_turn: Callable[[object, TurnFinished], None] | None = None) -> tuple[str, object]:
    """A run through prepare_run; `stop_after` stops it once that many turns are stored. Returns (session id,
    provider)."""
    store = open_database(db)
    prepared = prepare_run(config, store, stream_deltas=False)
    done = 0

    def watch(event: object) -> None:
        nonlocal done
        if isinstance(event, TurnFinished):
            done += 1
            if on_turn is not None:
                on_turn(prepared.runner, event)
            if stop_after is not None and done == stop_after:
                prepared.runner.stop()

    prepared.bus.subscribe(watch)
    asyncio.run(prepared.runner.run())
    store.conn.close()
    return prepared.session_id, prepared.provider


def resume(db: Path, session_id: str, provider: object | None = None) -> None:
    store = open_database(db)
    prepared = prepare_resume(store, session_id, provider=provider, stream_deltas=False)  # type: ignore[arg-type]
    assert asyncio.run(prepared.runner.run()) == "finished"
    store.conn.close()


def scenario_direct_injections(db: Path) -> str:
    return cli_run(db, "--turns", "160", "--samples", "3", "--seed", "7", "--inject-at", "40:5",
                   "--inject-at", "90:-12", "--induced-error-rate", "0.05")


def scenario_cot_window_k2(db: Path) -> str:
    return cli_run(db, "--turns", "120", "--samples", "2", "--seed", "3", "--mode", "cot", "--k", "2",
                   "--window", "15", "--inject-at", "50:7")


def scenario_thinking_heal(db: Path) -> str:
    return cli_run(db, "--turns", "100", "--samples", "2", "--seed", "19", "--mode", "thinking", "--heal",
                   "--sim-error", "0.03")


def scenario_high_error_lenient(db: Path) -> str:
    return cli_run(db, "--turns", "200", "--samples", "2", "--seed", "23", "--sim-error", "0.05",
                   "--sim-conditioning", "0.9", "--protocol", "lenient", "--mode", "cot")


def config_for_resume() -> RunConfig:
    """Format misses often (a reply with no answer tag breaks the sim's running total)."""
    return RunConfig(provider="sim", turns=150, samples=2, seed=31, concurrency=1, sim_delay=0.0,
                     sim_format_miss=0.05, inject_at=(Injection(turn=60, offset=4),)).validate()


def scenario_resume_fresh_provider(db: Path) -> str:
    session_id, _ = run_programmatic(db, config_for_resume(), stop_after=101)
    resume(db, session_id)
    return digest(db, session_id)


def scenario_resume_same_provider(db: Path) -> str:
    """The resumed runner gets the first runner's provider object: the sim has seen this sample's earlier
    history in other message objects."""
    session_id, provider = run_programmatic(db, config_for_resume(), stop_after=101)
    resume(db, session_id, provider)
    return digest(db, session_id)


def scenario_manual_injections(db: Path) -> str:
    """Injections between turns, as a user's key press would make them (each in a sample's own TurnFinished,
    so the turn it lands after does not depend on scheduling)."""
    config = RunConfig(provider="sim", turns=140, samples=3, seed=43, concurrency=3, sim_delay=0.0).validate()

    def inject(runner, event: TurnFinished) -> None:
        record = event.record
        if record.turn in (20, 21, 75) and record.sample != 1:
            runner.inject(record.sample, offset=record.turn % 9 + 1)
        if record.turn == 110 and record.sample == 1:
            runner.inject(record.sample, value=12345)

    session_id, _ = run_programmatic(db, config, on_turn=inject)
    return digest(db, session_id)


def scenario_fork_edit(db: Path) -> str:
    cli_run(db, "--turns", "80", "--samples", "2", "--seed", "5")
    with sqlite3.connect(db) as conn:
        parent = conn.execute("SELECT id FROM sessions ORDER BY rowid DESC").fetchone()[0]
    assert main(["fork", parent, "--turn", "30", "--set-answer", "777", "--turns", "120", "--headless",
                 "--db", str(db)]) == 0
    return digest(db)


def scenario_probe(db: Path) -> str:
    assert main(["probe", "--headless", "--provider", "sim", "--sim-delay", "0", "--target-turn", "120",
                 "--rates", "0,0.5,1", "--samples", "4", "--seed", "13", "--db", str(db)]) == 0
    return digest(db)


SCENARIOS: dict[str, Callable[[Path], str]] = {
    "direct_injections": scenario_direct_injections,
    "cot_window_k2": scenario_cot_window_k2,
    "thinking_heal": scenario_thinking_heal,
    "high_error_lenient": scenario_high_error_lenient,
    "resume_fresh_provider": scenario_resume_fresh_provider,
    "resume_same_provider": scenario_resume_same_provider,
    "manual_injections": scenario_manual_injections,
    "fork_edit": scenario_fork_edit,
    "probe": scenario_probe,
}

# Recorded from main at 37b0163, before the sim read its history incrementally.
PINNED: dict[str, str] = {
    'direct_injections': '480:22d60268c4c0318ec1e69653',
    'cot_window_k2': '240:d78b100f1e71a2eb5cf19899',
    'thinking_heal': '200:c06d22ad585796039b346e01',
    'high_error_lenient': '400:f530cc1e534b7769d4083879',
    'resume_fresh_provider': '300:a01867a2dcf1261d62154d94',
    'resume_same_provider': '300:a01867a2dcf1261d62154d94',
    'manual_injections': '420:24664e2730c1905f87196105',
    'fork_edit': '240:3d9c5d04f8e08243827c11ae',
    'probe': '12:ac99a8a1277550bc71397e9b',
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sim_replies_are_those_of_the_full_rereading_sim(name, tmp_path, capsys):
    assert SCENARIOS[name](tmp_path / "lhe.db") == PINNED[name]


def test_resume_gives_the_uninterrupted_runs_replies(tmp_path):
    """The two resumes (a fresh provider, the same provider object) and an uninterrupted run agree."""
    session_id, _ = run_programmatic(tmp_path / "whole.db", config_for_resume())
    assert digest(tmp_path / "whole.db", session_id) == PINNED["resume_fresh_provider"] == PINNED["resume_same_provider"]


if __name__ == "__main__":   # print the digests of the code on the path (to record PINNED)
    import contextlib
    import io
    import tempfile

    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            value = scenario(Path(tmp) / "lhe.db")
        print(f"    {name!r}: {value!r},")
