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
from lhe_tui.core.events import TokenDelta, TurnFinished
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.sim import SimProvider, SimSettings
from lhe_tui.runs.session import prepare_resume, prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.task import generate_task

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
                     on_turn: Callable[[object, TurnFinished], None] | None = None,
                     on_delta: Callable[[object, TokenDelta], None] | None = None) -> tuple[str, object]:
    """A run through prepare_run; `stop_after` stops it once that many turns are stored. Returns (session id,
    provider)."""
    store = open_database(db)
    prepared = prepare_run(config, store, stream_deltas=on_delta is not None)
    done = 0

    def watch(event: object) -> None:
        nonlocal done
        if isinstance(event, TokenDelta) and on_delta is not None:
            on_delta(prepared.runner, event)
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


def scenario_injections_in_flight(db: Path) -> str:
    """Injections while the sample's next request is in flight (from its first streamed token, as a key
    press lands mid-reply): they rewrite a turn the sim has already read, which its next request shows."""
    config = RunConfig(provider="sim", turns=120, samples=2, seed=47, concurrency=2, sim_delay=0.0,
                       mode="cot").validate()
    done: set[tuple[int, int]] = set()

    def inject(runner, event: TokenDelta) -> None:
        if event.turn in (15, 16, 60, 61, 100) and (event.sample, event.turn) not in done:
            done.add((event.sample, event.turn))
            runner.inject(event.sample, offset=event.turn % 7 + 2)

    session_id, _ = run_programmatic(db, config, on_delta=inject)
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
    "injections_in_flight": scenario_injections_in_flight,
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
    'injections_in_flight': '240:6c42d4a4040ab7ee02d05089',
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


def _sim(task) -> SimProvider:
    provider = SimProvider("sim-1", GenerationSettings(mode="cot"), SimSettings(seed=3, base_error=0.2, conditioning=0.8,
                                                                      format_miss=0.1, token_delay=0.0))
    provider.bind_task(task)
    return provider


def _pair(keys: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": keys}, {"role": "assistant", "content": answer}]


def test_reading_on_from_the_last_request_equals_reading_each_request_afresh():
    """One provider across a sequence of requests that reuse, extend, rebuild and reorder message objects
    answers each exactly as a new provider does (which reads the whole history)."""
    task = generate_task(2, 1, 30)
    system = {"role": "system", "content": "dictionary ..."}
    pairs = [m for t in range(1, 21) for m in _pair(f"k{t}", f"<answer>{t * 3}</answer>" if t % 6 else "lost")]
    rebuilt = [dict(m) for m in pairs]
    rebuilt[9] = {"role": "assistant", "content": "<answer>-40</answer>"}   # an injection, re-rendered
    user = {"role": "user", "content": "next"}
    requests = [  # (messages, turn)
        ([system, user], 1),
        ([system, *pairs[:2], user], 2),
        ([system, *pairs[:2], user], 2),                  # a retry: the same list again
        ([system, *pairs[:10], user], 6),
        ([system, *rebuilt[:12], user], 7),               # rebuilt after an injection into turn 5
        ([system, *rebuilt[:12], user], 12),              # the same pairs at other turns (a window's shape)
        ([system, *rebuilt[:14], user], 8),
        ([system, *rebuilt[4:16], user], 9),              # a sliding window dropped two turns
        ([system, *rebuilt[4:18], user], 10),
        ([{"role": "system", "content": "another, longer prompt"}, *rebuilt[4:18], user], 10),  # same pairs, new system
        ([system, *rebuilt[:20], rebuilt[20]], 11),       # ends with a user message of the history itself
        ([system, *rebuilt[:21]], 11),                    # ends with an assistant message (odd length)
        ([system, *rebuilt[:24], user], 13),
        ([system, user, {"role": "user", "content": "x"}, *rebuilt[24:30], user], 17),   # a pair out of step
        ([], 1),
    ]
    shared = _sim(task)
    for messages, turn in requests:
        meta = RequestMeta(sample_index=0, turn=turn)
        got = asyncio.run(shared.complete(messages, meta))
        want = asyncio.run(_sim(task).complete(messages, meta))
        assert (got.text, got.reasoning, got.tokens_in) == (want.text, want.reasoning, want.tokens_in), (turn, len(messages))


if __name__ == "__main__":   # print the digests of the code on the path (to record PINNED)
    import contextlib
    import io
    import tempfile

    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            value = scenario(Path(tmp) / "lhe.db")
        print(f"    {name!r}: {value!r},")
