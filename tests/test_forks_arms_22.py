"""Issue 22 §7, forks and arms, each made for real in a real `lhe-tui` process: a fork with a missing key, an
abbreviated flag inside an --arm, a failing arm's last line, a rate limit that holds the run for a minute."""

from __future__ import annotations

import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time

from lhe_tui.providers.local_server import free_port

from tests.store_faults import ROOT, cli, stored_run
from tests.test_store_faults import one_line


def sessions(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, parent_id FROM sessions ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_a_fork_that_fails_on_a_missing_key_stores_nothing(tmp_path):
    path = tmp_path / "lhe.db"
    parent = stored_run(path, samples=2, turns=20)
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    for args in (["--provider", "anthropic", "--model", "claude-x"], ["--provider", "openai", "--model", "gpt-x"]):
        done = subprocess.run([sys.executable, "-m", "lhe_tui", "fork", parent, "--turn", "5", "--headless", *args,
                               "--db", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**env, "PYTHONPATH": str(ROOT)})
        assert done.returncode != 0
        assert "_API_KEY is not set" in one_line(done)
        assert sessions(path) == [(parent, None)]          # nothing stored
    # so `fork latest` forks the parent, not a leftover
    done = cli("fork", "latest", "--turn", "3", "--headless", "--sim-delay", "0", "--db", str(path))
    assert done.returncode == 0, done.stderr
    assert [row[1] for row in sessions(path)] == [None, parent]


def test_an_abbreviated_flag_inside_an_arm_is_refused(tmp_path):
    path = tmp_path / "lhe.db"
    for spec, flag in (("b:--sample 1", "--sample"), ("b:--samp 2", "--samp"), ("b:--sim-err 0.5", "--sim-err")):
        done = cli("run", "--headless", "--turns", "3", "--arm", "a:", "--arm", spec, "--db", str(path))
        assert done.returncode != 0, spec
        line = one_line(done)
        assert line.startswith("lhe-tui: error: --arm b: unrecognized arguments: ") and flag in line, line
    assert not path.exists() or sessions(path) == []
    # the flags spelled out still work
    done = cli("run", "--headless", "--turns", "3", "--sim-delay", "0", "--arm", "a:", "--arm",
               "b:--sim-error 0.5", "--db", str(path))
    assert done.returncode == 0, done.stderr


def test_the_last_error_line_of_a_multi_arm_run_names_the_arm(tmp_path):
    path = tmp_path / "lhe.db"
    dead = f"http://127.0.0.1:{free_port()}/v1"      # nothing listens there: every request is refused
    done = cli("run", "--headless", "--samples", "1", "--turns", "2", "--sim-delay", "0", "--arm", "ok:",
               "--arm", f"down:--provider openai --model m --base-url {dead} --retries 0", "--db", str(path))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lhe-tui: error: arm down: "), done.stderr
    assert "Traceback" not in done.stderr


def test_a_rate_limit_that_holds_the_run_is_said_on_the_progress_output(tmp_path):
    """--tpm 1: the first request empties the bucket, the second waits a minute: said at once, not after."""
    path = tmp_path / "lhe.db"
    proc = subprocess.Popen([sys.executable, "-m", "lhe_tui", "run", "--headless", "--samples", "1", "--turns", "2",
                             "--tpm", "1", "--sim-delay", "0", "--db", str(path)], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    said = None
    try:
        deadline = time.monotonic() + 40        # (a hang, not a speed: the hold itself is 60 s)
        while said is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if "held by the rate limiter" in line:
                said = line.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert said is not None
    assert said.startswith("held by the rate limiter (--tpm): the next request goes in ")
    assert 50 <= int(said.rsplit(" ", 1)[1].rstrip("s")) <= 60
