"""Issue 21 §5 and §7: empty and failed replies as the reference handles them, and runs with no answer.

Every test runs `lhe-tui` (or the runner) with the real OpenAI client against the scripted server
(lhe_tui.testing.fake_llm_server): empty replies, HTTP 500s and 401s, a refused connection.
"""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.runs.resume_state import load_resume_state
from lhe_tui.runner.history import HistoryPolicy
from lhe_tui.store.database import open_database
from lhe_tui.task.protocol import EMPTY_REPLY, LENIENT_EMPTY_REPLY
from lhe_tui.testing.fake_llm_server import FakeLLMServer, Fault, ScriptedReply, content_text

from tests.test_providers import summing_responder

KEY = "sk-test-failed-replies"


def user_turns(body: dict) -> int:
    return sum(1 for m in body["messages"] if m["role"] == "user")


class Script:
    """A correct model (the running sum of every key it was sent) whose server fails or answers empty on cue:
    `faults[t]`: faults queued for the requests that follow the request of turn t; `empty[t]`: how many
    requests of turn t get an empty reply first."""

    def __init__(self, server_ref: list, *, faults: dict[int, list[Fault]] | None = None,
                 empty: dict[int, int] | None = None) -> None:
        self.server_ref = server_ref
        self.faults = dict(faults or {})
        self.empty = dict(empty or {})
        self.correct = summing_responder()

    def __call__(self, body: dict) -> ScriptedReply:
        turn = user_turns(body)
        queued = self.faults.pop(turn, None)
        if queued:     # the next requests (this sample's next turns: one sample) fail so
            self.server_ref[0].add_faults(*queued)
        if self.empty.get(turn):
            self.empty[turn] -= 1
            return ScriptedReply(text="")
        return self.correct(body)


def serve(monkeypatch, **script):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ref: list = []
    server = FakeLLMServer(Script(ref, **script))
    ref.append(server)
    return server


def run_cli(server, db, *extra: str) -> int:
    return main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", server.openai_base_url,
                 "--samples", "1", "--turns", "10", "--db", str(db), *extra])


def stored_turns(db) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM turns ORDER BY sample, turn")]


def assistant_messages(body: dict) -> list[str]:
    return [content_text(m["content"]) for m in body["messages"] if m["role"] == "assistant"]


def completions(server) -> list:
    return [r for r in server.requests if r.path == "/v1/chat/completions"]


# ---- §5: a failed request is a recorded no-answer turn; the sample goes on ---------------------------------

def test_http_500_with_no_retries_is_a_failed_turn_and_the_sample_goes_on(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={5: [Fault("status", status=500)]}) as server:
        assert run_cli(server, db, "--retries", "0") == 0
        bodies = [r.body for r in completions(server)]
    rows = stored_turns(db)
    assert [r["turn"] for r in rows] == list(range(1, 11))
    failed = rows[5]
    assert failed["turn"] == 6 and failed["answer_status"] == "failed" and failed["raw_reply"] == ""
    assert failed["model_answer"] is None and failed["correct"] == 0 and failed["step_correct"] == 0
    assert "HTTP 500" in failed["provider_error"] and "gave up after 0 retries" in failed["provider_error"]
    assert all(r["provider_error"] is None and r["correct"] == 1 for r in rows if r["turn"] != 6)
    # The history the model sees next shows the failed turn as an empty reply (the reference adds nothing
    # it could read either); one request a turn (the failed one included, --retries 0).
    turn7 = next(b for b in bodies if user_turns(b) == 7)
    assert assistant_messages(turn7)[5] == EMPTY_REPLY
    assert len(bodies) == 10


def test_after_one_http_500_turn_accuracy_recovers_under_paper_not_lenient(tmp_path, monkeypatch, capsys):
    """The issue's example: 2 samples, one HTTP 500 with --retries 0. The reference records no answer for that
    turn and goes on, so turn accuracy at turns 6-10 is 1.0; ending the sample (lenient, as before) gives 0.5."""
    from lhe_tui.reports import api

    accuracies = {}
    for protocol in ("paper", "lenient"):
        db = tmp_path / f"{protocol}.db"
        with serve(monkeypatch) as server:
            server.add_faults(Fault("status", status=500))   # the first request, whichever sample sends it
            code = run_cli(server, db, "--retries", "0", "--samples", "2", "--protocol", protocol)
        store = api.open_store(db)
        sid = api.sessions(store)[0].id
        accuracies[protocol] = [p.turn_accuracy for p in api.curves(store, sid)]
        assert code == 0   # lenient: finished_with_errors
    assert accuracies["paper"][0] == 0.5 and accuracies["paper"][5:10] == [1.0] * 5
    assert accuracies["lenient"][5:10] == [0.5] * 5


def test_a_sample_whose_provider_fails_three_turns_in_a_row_stops_with_the_reason(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={2: [Fault("status", status=503)] * 3}) as server:
        code = run_cli(server, db, "--retries", "0")
        sent = len(completions(server))
    assert code == 1
    rows = stored_turns(db)
    assert [r["answer_status"] for r in rows] == ["ok", "ok", "failed", "failed", "failed"]
    assert sent == 5           # nothing more was sent to a provider that kept failing
    with sqlite3.connect(db) as conn:
        status, message = conn.execute("SELECT status, message FROM samples").fetchone()
    assert status == "failed" and "failed 3 turns in a row (turns 3-5)" in message and "HTTP 503" in message
    err = capsys.readouterr().err
    assert "failed 3 turns in a row" in err.strip().splitlines()[-1]


def test_two_failures_then_an_answer_do_not_stop_the_sample(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={2: [Fault("status", status=500)] * 2, 5: [Fault("status", status=500)] * 2}) \
            as server:
        assert run_cli(server, db, "--retries", "0") == 0
    assert [r["answer_status"] for r in stored_turns(db)] == ["ok", "ok", "failed", "failed", "ok", "failed",
                                                              "failed", "ok", "ok", "ok"]


def test_retries_still_come_first_and_are_counted_on_a_failed_turn(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={1: [Fault("status", status=500)] * 3}) as server:
        assert run_cli(server, db, "--retries", "2", "--turns", "3") == 0
    rows = stored_turns(db)
    assert rows[1]["answer_status"] == "failed" and rows[1]["retries"] == 2
    assert "gave up after 2 retries" in rows[1]["provider_error"]


def test_lenient_protocol_keeps_ending_the_sample(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={2: [Fault("status", status=500)]}) as server:
        assert run_cli(server, db, "--retries", "0", "--protocol", "lenient") == 1
    assert [r["turn"] for r in stored_turns(db)] == [1, 2]


# ---- §5: empty replies are asked for again --------------------------------------------------------------

def test_an_empty_reply_is_asked_for_again_and_counted(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, empty={3: 2}) as server:
        assert run_cli(server, db, "--turns", "4") == 0
        sent = len(completions(server))
    rows = stored_turns(db)
    assert sent == 6
    assert rows[2]["empty_retries"] == 2 and rows[2]["answer_status"] == "ok" and rows[2]["correct"] == 1
    assert [r["empty_retries"] for r in rows] == [0, 0, 2, 0]
    err = capsys.readouterr().err
    assert err.count("empty reply, asked again") == 2


def test_empty_replies_past_the_limit_become_the_empty_placeholder(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, empty={2: 10}) as server:
        assert run_cli(server, db, "--turns", "3", "--empty-retries", "3") == 0
        bodies = [r.body for r in completions(server)]
    assert len(bodies) == 3 + 3                      # turn 2: the request and 3 more
    rows = stored_turns(db)
    assert rows[1]["empty_retries"] == 3 and rows[1]["answer_status"] == "format" and rows[1]["provider_error"] is None
    assert assistant_messages(bodies[-1])[1] == EMPTY_REPLY


@pytest.mark.parametrize("extra, sent", [(("--empty-retries", "0"), 3), (("--protocol", "lenient"), 3)])
def test_no_empty_retries_when_switched_off_or_lenient(tmp_path, monkeypatch, capsys, extra, sent):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, empty={2: 10}) as server:
        assert run_cli(server, db, "--turns", "3", *extra) == 0
        bodies = [r.body for r in completions(server)]
    assert len(bodies) == sent
    assert stored_turns(db)[1]["empty_retries"] == 0
    lenient = "lenient" in extra
    assert assistant_messages(bodies[-1])[1] == (LENIENT_EMPTY_REPLY if lenient else EMPTY_REPLY)


def test_empty_retries_out_of_range_is_one_line(tmp_path, capsys):
    assert main(["run", "--headless", "--empty-retries", "-1", "--db", str(tmp_path / "x.db")]) == 2
    assert "--empty-retries" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


# ---- resume rebuilds the same history ------------------------------------------------------------------

def test_resume_rebuilds_the_history_a_failed_turn_left(tmp_path, monkeypatch, capsys):
    """What a resume would send after turn t is what the live run sent: the failed turn reads as an empty
    reply, the step base walks past it, and the record keeps its mark."""
    from lhe_tui.runner.step_base import StepBase

    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={3: [Fault("status", status=500)]}, empty={6: 1}) as server:
        assert run_cli(server, db, "--retries", "0", "--turns", "8") == 0
        bodies = {user_turns(r.body): r.body for r in completions(server)}
    store = open_database(db)
    sid = store.execute("SELECT id FROM sessions").fetchone()[0]
    state = load_resume_state(store, sid)
    config, task = state.config, state.task
    template = config.template()
    runner_policy = HistoryPolicy(seed=config.seed, protocol=config.protocol, mode=config.mode,
                                  placeholders=template.placeholders,
                                  turn_text=template.turn_renderer(task.dictionary, task.k, config.mode))
    system = template.system(task.dictionary, task.k, config.mode)
    history = state.history[0]
    for turn in (4, 5, 7, 8):
        sent = [{"role": m["role"], "content": content_text(m["content"])} for m in bodies[turn]["messages"]]
        rebuilt = runner_policy.messages(system, history[:turn - 1], state.task.samples[0].turn_keys(turn))
        assert rebuilt == sent, turn
    assert history[3].reply_visible == "" and history[3].model_answer is None
    # the step base after the failed turn 4 is turn 3's answer plus turn 4's keys, as the live run had it
    rows = stored_turns(db)
    assert StepBase.from_history(history[:4]).value == rows[4]["seen_previous"]
    assert rows[4]["step_correct"] == 1


# ---- §7: a run with no answer has no metrics ----------------------------------------------------------

def test_a_401_on_the_first_request_ends_the_run_in_one_line_with_no_metrics(tmp_path, monkeypatch, capsys):
    from lhe_tui.reports import api

    db = tmp_path / "lhe.db"
    with serve(monkeypatch) as server:
        server.add_faults(Fault("status", status=401))
        code = run_cli(server, db, "--samples", "4", "--concurrency", "1")
        sent = len(completions(server))
    out, err = capsys.readouterr()
    assert code == 1 and sent == 1           # the other samples never sent theirs
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lhe-tui: error:") and "401" in lines[0], err
    assert "session" not in out and "task accuracy" not in out       # no summary table
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT status, final_task_accuracy, horizon_05, fitted_p FROM sessions").fetchone()
        assert row == ("failed", None, None, None)
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
        sid = conn.execute("SELECT id FROM sessions").fetchone()[0]

    assert main(["sessions", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert "no data" in listing and "0.0%" not in listing
    assert main(["show", sid, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "no data" in shown and "0.0%" not in shown

    store = api.open_store(db)
    info = api.sessions(store)[0]
    assert not info.has_data and info.final_task_accuracy is None and info.mean_turn_accuracy is None
    summary = api.summary(store, sid)
    assert summary.no_data and summary.final_task_accuracy is None and summary.p_before_first_error is None
    assert summary.horizon_measured_turns is None and summary.mean_turn_accuracy is None
    with pytest.raises(api.NoTurnsError):
        api.curves(store, sid)
    frame = api.sessions_frame(store)
    assert frame["final_task_accuracy"].isna().all() and frame["mean_turn_accuracy"].isna().all()
    assert frame["horizon_05"].isna().all() and not frame["has_data"].any()


def test_a_refused_connection_on_the_first_request_ends_the_run_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with socket.socket() as probe:        # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "lhe.db"
    code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url",
                 f"http://127.0.0.1:{port}/v1", "--samples", "3", "--turns", "5", "--db", str(db)])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "connection refused" in lines[0], err
    assert "task accuracy" not in out


def test_a_401_after_an_answer_is_a_failed_turn_not_the_end_of_the_run(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    with serve(monkeypatch, faults={2: [Fault("status", status=401)]}) as server:
        assert run_cli(server, db, "--turns", "4") == 0
    rows = stored_turns(db)
    assert [r["answer_status"] for r in rows] == ["ok", "ok", "failed", "ok"] and "401" in rows[2]["provider_error"]


def test_a_run_whose_every_turn_failed_has_no_data(tmp_path, monkeypatch, capsys):
    """Past the first answer no request is a dead end, but if the provider never answered any turn (500s
    from the start), the session still has no metrics: no turn was answered."""
    from lhe_tui.reports import api

    db = tmp_path / "lhe.db"
    with serve(monkeypatch) as server:
        server.add_faults(*[Fault("status", status=500)] * 3)
        assert run_cli(server, db, "--retries", "0") == 1
    out, err = capsys.readouterr()
    assert [r["answer_status"] for r in stored_turns(db)] == ["failed"] * 3
    assert "task accuracy" not in out
    store = api.open_store(db)
    assert not api.sessions(store)[0].has_data
    frame_row = api.sessions(store)[0]
    assert frame_row.horizon_05 is None


def good_and_no_data_sessions(db, monkeypatch, capsys) -> tuple[str, str]:
    """A sim session of 5 turns and, after it, one whose first request was refused (401): no data."""
    assert main(["run", "--headless", "--turns", "5", "--db", str(db)]) == 0
    with serve(monkeypatch) as server:
        server.add_faults(Fault("status", status=401))
        assert run_cli(server, db) == 1
    with sqlite3.connect(db) as conn:
        good, empty = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]
    capsys.readouterr()
    return good, empty


def test_compare_leaves_a_session_with_no_data_out_with_a_note(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    good, empty = good_and_no_data_sessions(db, monkeypatch, capsys)
    assert main(["compare", good, empty, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"left out, no data (no turn was answered): {empty}" in out
    table = out.split("left out")[0]
    assert good in table and empty not in table
    assert main(["compare", empty, empty, "--db", str(db)]) == 2     # the same session twice: refused first
    assert "given twice" in capsys.readouterr().err


def test_base_url_without_a_scheme_is_refused_before_any_session(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", "127.0.0.1:8000/v1",
                 "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and "--base-url" in err and "must be an http:// or https:// URL with a host" in err and "Traceback" not in err
    assert not db.exists()


def test_migration_clears_the_fake_metrics_of_sessions_with_no_answer(tmp_path, capsys):
    """A store written before issue 21 kept 0%, H_0.5 = 1 and p = 0 for a session whose every request
    failed; m006 clears them and adds the new turn columns, leaving sessions with answered turns alone."""
    db = tmp_path / "old.db"
    assert main(["run", "--headless", "--turns", "5", "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:   # back to the schema and data of before m006
        conn.execute("ALTER TABLE turns DROP COLUMN empty_retries")
        conn.execute("ALTER TABLE turns DROP COLUMN provider_error")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_failed_turns_and_no_data'")
        conn.execute("INSERT INTO sessions (id, kind, status, created_at, ended_at, final_task_accuracy, "
                     "horizon_05, fitted_p, config_json, dictionary_json) VALUES ('dead', 'run', 'failed', "
                     "'2026-01-01', '2026-01-01', 0.0, 1, 0.0, '{}', '{}')")
        good = dict(conn.execute("SELECT id, final_task_accuracy FROM sessions WHERE id != 'dead'"))
    store = open_database(db)
    columns = store["turns"].columns_dict
    assert "empty_retries" in columns and "provider_error" in columns
    rows = {r[0]: r[1:] for r in store.execute("SELECT id, final_task_accuracy, horizon_05, fitted_p FROM sessions")}
    assert rows["dead"] == (None, None, None)
    assert good and all(rows[sid][0] == value for sid, value in good.items())


def test_export_and_figures_of_a_session_with_no_data(tmp_path, monkeypatch, capsys):
    db = tmp_path / "lhe.db"
    good, empty = good_and_no_data_sessions(db, monkeypatch, capsys)
    assert main(["export", empty, "--format", "json", "--db", str(db)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["summary"]["no_data"] is True and exported["summary"]["final_task_accuracy"] is None
    assert exported["curves"] == []
    pytest.importorskip("matplotlib")
    assert main(["plot", empty, "--out", str(tmp_path / "d.svg"), "--db", str(db)]) == 2
    assert "nothing to plot" in capsys.readouterr().err and not (tmp_path / "d.svg").exists()
    assert main(["plot", good, empty, "--out", str(tmp_path / "c.svg"), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert f"left out, no data (no turn was answered): {empty}" in err and (tmp_path / "c.svg").exists()
