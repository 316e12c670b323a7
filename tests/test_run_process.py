"""The TUI's live run in a process of its own (lhe_tui.runs.run_process, driven by lhe_tui.ui.live.LiveRun):
events and controls across the pipes, and what happens when either end dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lhe_tui.common.errors import StoreError
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import RunFinished, RunStarted, TokenDelta, TurnFinished
from lhe_tui.runs.run_process import RunJob
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_events, load_session, load_turns
from lhe_tui.ui.app import start_live_run
from lhe_tui.ui.live import LiveRun, RunProcessDied

from .test_local_model import pid_gone


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


class Driven:
    """`live.drive()` on a thread of its own (as the run screen's worker does), with its outcome."""

    def __init__(self, live: LiveRun) -> None:
        self.live = live
        self.events: list = []
        self.error: BaseException | None = None
        self.status: str | None = None
        live.subscribe(self.events.append)
        self.thread = threading.Thread(target=self._go, daemon=True)
        self.thread.start()

    def _go(self) -> None:
        try:
            self.status = asyncio.run(self.live.drive())
        except BaseException as exc:   # noqa: BLE001 - kept for the test to look at
            self.error = exc

    def join(self, timeout: float = 30.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"

    def turns(self) -> int:
        return sum(isinstance(e, TurnFinished) for e in list(self.events))


def test_events_arrive_in_order_and_match_the_store(tmp_path):
    db_path = tmp_path / "s.db"
    live = start_live_run(RunConfig(samples=3, turns=25, seed=5, mode="thinking", sim_delay=0.0), db_path)
    run = Driven(live)
    run.join()
    assert run.error is None and run.status == "finished" == live.status and live.finished
    assert isinstance(run.events[0], RunStarted) and isinstance(run.events[-1], RunFinished)
    records = [e.record for e in run.events if isinstance(e, TurnFinished)]
    stored = load_turns(open_database(db_path), live.session_id)
    assert sorted((r.sample, r.turn, r.model_answer) for r in records) == \
        sorted((r.sample, r.turn, r.model_answer) for r in stored) and len(stored) == 75
    deltas = {e.sample for e in run.events if isinstance(e, TokenDelta)}
    assert deltas == {0}                     # only the watched sample's tokens cross the pipe
    assert live.process is not None and live.process.exitcode == 0 and live.process_cpu_s > 0


def test_the_spawn_start_method_works_too(tmp_path, monkeypatch):
    """Where there is no forkserver (Windows), the run process is a fresh interpreter: the job and the
    pipes must survive pickling, and nothing may rely on what the forkserver preloaded."""
    import multiprocessing

    from lhe_tui.ui import live as live_module

    monkeypatch.setattr(live_module, "_context", lambda: multiprocessing.get_context("spawn"))
    db_path = tmp_path / "s.db"
    live = start_live_run(RunConfig(samples=2, turns=6, seed=2, sim_delay=0.0), db_path)
    run = Driven(live)
    run.join(60)
    assert run.error is None and run.status == "finished"
    assert live._context.get_start_method() == "spawn" and live.process.exitcode == 0
    assert len(load_turns(open_database(db_path), live.session_id)) == 12


def test_controls_reach_the_run_process(tmp_path):
    db_path = tmp_path / "s.db"
    live = start_live_run(RunConfig(samples=2, turns=100_000, seed=1, sim_delay=0.0005), db_path)
    run = Driven(live)
    wait_for(lambda: run.turns() > 5)
    live.pause()
    wait_for(lambda: any(type(e).__name__ == "RunPaused" for e in run.events))
    time.sleep(0.3)                          # anything in flight lands; then nothing more may come
    paused_at = run.turns()
    time.sleep(0.4)
    assert run.turns() == paused_at and live.paused
    live.inject(1, offset=7)
    wait_for(lambda: any(type(e).__name__ == "Injected" for e in run.events))
    live.resume()
    wait_for(lambda: run.turns() > paused_at + 5)
    live.stop()
    run.join()
    assert run.status == "interrupted"
    db = open_database(db_path)
    assert load_session(db, live.session_id)["status"] == "interrupted"
    assert len(load_turns(db, live.session_id)) == run.turns()
    (injected,) = [e for e in run.events if type(e).__name__ == "Injected"]
    assert injected.sample == 1 and injected.injected == injected.original + 7


def test_stop_before_the_process_starts_still_ends_the_run(tmp_path):
    live = start_live_run(RunConfig(samples=1, turns=100_000, seed=1, sim_delay=0.001), tmp_path / "s.db")
    live.stop()
    run = Driven(live)
    run.join()
    assert run.status == "interrupted" and run.turns() < 50


def test_a_failure_in_the_run_process_comes_back_with_its_type_and_message(tmp_path):
    folder = tmp_path / "a-folder.db"
    folder.mkdir()                           # not a database file
    live = LiveRun(RunJob("run", str(folder), RunConfig(samples=1, turns=3), "20260101-000000-abcd"))
    run = Driven(live)
    run.join()
    assert isinstance(run.error, StoreError) and str(folder) in str(run.error)
    assert live.status == "failed"


def test_a_killed_run_process_is_a_clear_error_and_its_turns_stay_resumable(tmp_path):
    db_path = tmp_path / "s.db"
    live = start_live_run(RunConfig(samples=2, turns=100_000, seed=1, sim_delay=0.001), db_path)
    run = Driven(live)
    wait_for(lambda: run.turns() > 10)
    os.kill(live.process.pid, signal.SIGKILL)
    run.join()
    assert isinstance(run.error, RunProcessDied)
    assert f"lhe-tui resume {live.session_id}" in str(run.error) and "exit code -9" in str(run.error)
    db = open_database(db_path)
    assert load_session(db, live.session_id)["status"] == "running"    # resume takes it from here
    assert len(load_turns(db, live.session_id)) >= 10


def test_a_hang_up_or_ctrl_c_for_the_terminal_leaves_the_run_to_the_parent(tmp_path):
    live = start_live_run(RunConfig(samples=1, turns=100_000, seed=1, sim_delay=0.001), tmp_path / "s.db")
    run = Driven(live)
    wait_for(lambda: run.turns() > 5)
    for sig in (signal.SIGHUP, signal.SIGINT):   # what a closed terminal or Ctrl+C sends the process group
        os.kill(live.process.pid, sig)
    seen = run.turns()
    wait_for(lambda: run.turns() > seen + 20)
    assert live.process.is_alive()
    live.stop()
    run.join()
    assert run.status == "interrupted"


PARENT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from lhe_tui.core.config import RunConfig
    from lhe_tui.core.events import TurnFinished
    from lhe_tui.ui.app import start_live_run

    if __name__ == "__main__":
        live = start_live_run(RunConfig(samples=2, turns=100_000, seed=1, sim_delay=0.001), Path(sys.argv[1]))
        said = []
        def say(event):
            if isinstance(event, TurnFinished) and not said:
                said.append(1)
                print(live.session_id, live.process.pid, flush=True)
        live.subscribe(say)
        asyncio.run(live.drive())
""")


def test_a_killed_parent_leaves_an_interrupted_session_and_no_run_process(tmp_path):
    db_path = tmp_path / "s.db"
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(db_path)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        session_id, pid = parent.stdout.readline().split()
        time.sleep(0.3)
        parent.kill()
        parent.wait(10)
        db = open_database(db_path)
        wait_for(lambda: load_session(db, session_id)["status"] == "interrupted")
        assert pid_gone(int(pid), wait=15.0)
        assert len(load_turns(db, session_id)) > 0
    finally:
        if parent.poll() is None:
            parent.kill()


def test_the_run_process_sees_the_environment_and_folder_of_the_moment_it_starts(tmp_path, monkeypatch):
    from lhe_tui.testing.fake_llm_server import FakeLLMServer

    first = start_live_run(RunConfig(samples=1, turns=2, seed=1, sim_delay=0.0), tmp_path / "s.db")
    Driven(first).join()                    # the forkserver runs now, with the environment of this moment
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    probe = start_live_run(RunConfig(samples=1, seed=1, sim_delay=0.0), Path("relative.db"), probe=(3, (0.0,)))
    Driven(probe).join()
    assert len(load_turns(open_database(elsewhere / "relative.db"), probe.session_id)) == 1
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-set-after-the-forkserver-started")
        live = start_live_run(RunConfig(provider="openai", model="fake-model", samples=1, turns=3, seed=1,
                                        max_retries=0), tmp_path / "s.db")
        run = Driven(live)
        run.join()
        assert run.error is None and run.status == "finished"
        assert len(server.requests) == 3
        assert server.requests[0].headers["authorization"] == "Bearer sk-set-after-the-forkserver-started"


def stored_injections(db, session_id: str) -> list[tuple]:
    """The session's injections as stored: its `injected` events."""
    return [(e["sample"], e["turn"], e["payload"]) for e in load_events(db, session_id, ("injected",))]


@pytest.mark.parametrize("command", [("pause",), ("stop",)])
def test_controls_after_the_run_has_ended_do_nothing(tmp_path, command):
    db_path = tmp_path / "s.db"
    live = start_live_run(RunConfig(samples=1, turns=3, seed=1, sim_delay=0.0), db_path)
    run = Driven(live)
    run.join()

    def stored() -> tuple:
        db = open_database(db_path)
        try:
            return (load_session(db, live.session_id)["status"], stored_injections(db, live.session_id),
                    [(t.turn, t.history_answer, t.injected) for t in load_turns(db, live.session_id)])
        finally:
            db.conn.close()

    before = stored()
    getattr(live, command[0])()              # the pipe is closed: no error, no effect
    live.inject(0)
    live.inject(0, value=12345)
    assert run.status == "finished" and live.finished
    assert stored() == before and before[0] == "finished" and before[1] == []
