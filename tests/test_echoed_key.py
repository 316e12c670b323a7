"""An API key a server echoes back, in any field, is stored, exported and shown nowhere (issue 28).

The fake server echoes the key each request carried (its ``ECHO_API_KEY`` placeholder) in the reply, in the
reasoning, in streamed deltas that split the key across chunks, and in the bodies of the errors it answers
with (retried ones and the final one). The test then searches the raw bytes of the store and of its WAL, every
export format, `show`, and every event a subscriber receives (what the live screen is drawn from, the
deltas joined per turn as the screen joins them).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from lhe_tui.cli.export import EXPORTS
from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import TokenDelta, TurnFinished
from lhe_tui.providers.base import REDACTED, StreamRedactor
from lhe_tui.runner.retry import Backoff
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database
from lhe_tui.testing.fake_llm_server import ECHO_API_KEY, FakeLLMServer, Fault, ScriptedReply

KEY = "sk-echo-0123456789abcdefghij"
OTHER = "sk-ant-echo-other-configured-42"      # the other provider's key, configured too: never shown either


def echoing(body: dict) -> ScriptedReply:
    """The key whole in one text chunk (twice), and split over 4-character chunks in the reasoning."""
    return ScriptedReply(text=f"key {ECHO_API_KEY}, again: {ECHO_API_KEY} <answer>0</answer>",
                         reasoning=f"I was sent {ECHO_API_KEY} and will say so",
                         chunks=[f"key {ECHO_API_KEY}", f", again: {ECHO_API_KEY}", " <answer>0</answer>"])


def run_echoing(provider: str, db_path, monkeypatch) -> tuple[str, list, bytes]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY if provider == "openai" else OTHER)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY if provider == "anthropic" else OTHER)
    events: list = []
    with FakeLLMServer(echoing, chunk_delay=0.01) as server:   # each chunk its own delta
        server.add_faults(Fault("status", status=500, message=f"upstream rejected key {ECHO_API_KEY}"),
                          Fault("status", status=429, retry_after=0.01, message=f"key {ECHO_API_KEY} is limited"))

        def on_event(event) -> None:
            events.append(event)
            if isinstance(event, TurnFinished) and event.record.turn == 2:   # turn 3 fails for good
                server.add_faults(Fault("status", status=401, message=f"Incorrect API key provided: {ECHO_API_KEY}"))

        config = RunConfig(provider=provider, model="m", base_url=server.anthropic_base_url if provider == "anthropic"
                           else server.openai_base_url, mode="thinking", samples=1, turns=4, seed=1, max_retries=3)
        db = open_database(db_path)
        prepared = prepare_run(config, db)
        prepared.bus.subscribe(on_event)
        prepared.runner.backoff = Backoff(base_s=0.01, cap_s=0.05)
        status = asyncio.run(prepared.runner.run())
        raw = b"".join(path.read_bytes() for path in sorted(db_path.parent.glob(db_path.name + "*"))
                       if path.is_file())   # the store and its WAL, read while the store is still open
        db.conn.close()
        assert all(request.headers.get("authorization") == f"Bearer {KEY}" or request.headers.get("x-api-key") == KEY
                   for request in server.requests)   # the server had the key to echo
    # paper protocol: the turn whose request failed for good is stored as a failed turn (its error in
    # turns.provider_error) and the sample goes on to turn 4
    assert status == "finished"
    return prepared.session_id, events, raw + db_path.read_bytes()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_key_the_server_echoes_anywhere_is_stored_exported_and_shown_nowhere(provider, tmp_path, monkeypatch,
                                                                              capsys):
    db_path = tmp_path / "lhe.db"
    session_id, events, raw = run_echoing(provider, db_path, monkeypatch)

    # the store's bytes, WAL included: the key in no field, the redacted text in each
    assert KEY.encode() not in raw and OTHER.encode() not in raw
    for stored in (b"key [redacted], again: [redacted] <answer>0</answer>",   # turns.raw_reply
                   b"I was sent [redacted] and will say so",                  # turns.reasoning
                   b"upstream rejected key [redacted]",                       # the retries' events
                   b"Incorrect API key provided: [redacted]"):                # the failed turn's provider_error
        assert stored in raw, stored

    # every export format, and show
    capsys.readouterr()
    outputs = []
    for fmt, curves in EXPORTS:
        assert main(["export", session_id, "--format", fmt, *(["--curves"] if curves else []),
                     "--db", str(db_path)]) == 0
        outputs.append(capsys.readouterr().out)
    assert main(["show", session_id, "--db", str(db_path)]) == 0
    outputs.append(capsys.readouterr().out)
    for out in outputs:
        assert KEY not in out and OTHER not in out
    assert "I was sent [redacted] and will say so" in outputs[0]   # the JSON export carries the reasoning

    # what a subscriber (the live screen) receives: each event, and the deltas joined as the screen joins them
    joined: dict[tuple, str] = defaultdict(str)
    for event in events:
        if isinstance(event, TokenDelta):
            joined[event.sample, event.turn, event.kind] += event.text
    seen = "\n".join([*map(repr, events), *joined.values(), "".join(joined.values())])
    assert KEY not in seen and OTHER not in seen
    assert joined[0, 1, "text"] == "key [redacted], again: [redacted] <answer>0</answer>"
    assert joined[0, 1, "reasoning"] == "I was sent [redacted] and will say so"
    assert "Incorrect API key provided: [redacted]" in seen and "is limited" in seen


def test_the_stream_redactor_holds_back_a_split_key_and_nothing_else():
    r = StreamRedactor((KEY,))
    pieces = ["ab", KEY[:1], KEY[1:9], KEY[9:], "cd s", "k-"]
    shown = [r.feed(p) for p in pieces] + [r.flush()]
    assert "".join(shown) == f"ab{REDACTED}cd sk-"
    assert shown[:3] == ["ab", "", ""]          # a key's start is held until it is known not to be one
    plain = StreamRedactor((KEY,))
    assert [plain.feed(p) for p in ("no key ", "here")] == ["no key ", "here"]   # nothing held: no delay
    other = StreamRedactor((KEY,))
    assert other.feed("x sk-e") == "x " and other.feed("nd") == "sk-end" and other.flush() == ""
