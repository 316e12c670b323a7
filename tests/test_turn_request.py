"""Issue 23 §1: what the model saw at a turn, rebuilt from the store, equals what the server received.

The oracle is the fake server's record of each request body (the real openai SDK sent it), not our code."""

from __future__ import annotations

import json
import random

import pytest

from lhe_tui.cli.main import main
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import resolve_session_id
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply
from lhe_tui.runs.turn_request import rebuild_request


def noisy(body: dict) -> ScriptedReply:
    """A model that answers 0, 1 or 2 off a made-up total, and sometimes with no tag at all."""
    n = sum(1 for m in body["messages"] if m["role"] == "user")
    rng = random.Random(n)
    if n % 5 == 0:
        return ScriptedReply(text="I lost count.")
    return ScriptedReply(text=f"<answer>{n * 3 + rng.choice((0, 1, 2))}</answer>")


@pytest.mark.parametrize("extra", [(), ("--window", "3"), ("--induced-error-rate", "0.5"), ("--heal",)],
                         ids=["plain", "window", "induced", "heal"])
def test_every_rebuilt_request_is_the_request_that_was_sent(tmp_path, capsys, monkeypatch, extra):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    db = tmp_path / "lhe.db"
    with FakeLLMServer(noisy) as srv:
        code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--base-url", srv.openai_base_url,
                     "--turns", "9", "--samples", "1", "--seed", "3", "--concurrency", "1", "--inject-at", "4:7",
                     "--temperature", "0.6", "--extra-body", '{"top_k": 20}', "--db", str(db), *extra])
        assert code == 0, capsys.readouterr().err
        sent = [r.body for r in srv.requests if r.body and "messages" in r.body]
    store = open_database(db, create=False, write=False)
    sid = resolve_session_id(store, "latest")
    assert len(sent) == 9
    for turn, body in enumerate(sent, start=1):
        request = rebuild_request(store, sid, 0, turn)
        assert list(request.messages) == body["messages"], f"turn {turn}"
        assert request.options["temperature"] == body["temperature"] == 0.6
        assert request.options["extra_body"]["top_k"] == body["top_k"] == 20
    marks = {p.turn: p.mark for p in rebuild_request(store, sid, 0, 7).history}   # turns 4-6 in any window
    if "--heal" not in extra and "--induced-error-rate" not in extra:
        assert marks[4] == "injected"
    if not extra:
        assert marks[5] == "placeholder"            # its request had 5 user messages: the tagless reply
    if "--heal" in extra:
        assert marks[4] == "injected" and set(marks.values()) <= {"injected", "healed"}
    if "--window" in extra:
        last = rebuild_request(store, sid, 0, 9)
        assert last.left_out == 5 and [p.turn for p in last.history] == [6, 7, 8]


def test_show_turn_request_prints_the_injected_value(tmp_path, capsys):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--samples", "1", "--turns", "8", "--sim-delay", "0", "--inject-at", "3:5",
                 "--db", str(db)]) == 0
    capsys.readouterr()
    store = open_database(db, create=False, write=False)
    row = store.execute("SELECT model_answer, history_answer FROM turns WHERE turn = 3").fetchone()
    assert row[1] == row[0] + 5
    assert main(["show", "latest", "--turn", "6", "--request", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("t3 "))
    assert f"<answer>{row[1]}</answer>" in line and f"[injected: model said {row[0]}]" in line
    assert main(["show", "latest", "--turn", "6", "--request", "--json", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["turn"] == 6 and len(data["messages"]) == 1 + 2 * 5 + 1
    assert data["messages"][6]["content"] == f"<answer>{row[1]}</answer>"
    assert main(["show", "latest", "--turn", "3", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"its history shows {row[1]} (injected)" in out and "reply:" in out


@pytest.mark.parametrize("argv,needle", [(("--turn", "99", "--request"), "has no turn 99"),
                                        (("--turn", "2", "--sample", "4", "--request"), "has no sample 4"),
                                        (("--request",), "go with --turn")])
def test_show_turn_refuses_what_is_not_there(tmp_path, capsys, argv, needle):
    db = tmp_path / "lhe.db"
    assert main(["run", "--headless", "--samples", "1", "--turns", "4", "--sim-delay", "0", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["show", "latest", *argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
