"""Issue 22, sections 2-5: numbers that are not numbers, usage counts a server makes up, files that are not files,
and the stream paths' limits. Each case makes the fault for real (the CLI with real flags, a real store, a real
file, /dev/zero, a FIFO, a socket through the fake server or a hostile one) and ends in one line, a non-zero exit
where it is a command, no traceback and nothing stored lost."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lhe_tui.cli.main import main
from lhe_tui.core.events import EventBus, TurnFinished
from lhe_tui.common.files import DATASET_LIMIT, PRICES_LIMIT, TEMPLATE_LIMIT
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import RequestMeta
from lhe_tui.runner.budget import Budget, Estimate
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

from tests.test_network_faults import (ANTHROPIC_START, KINDS, MESSAGES, REPLY, SSE_HEAD, Hostile, chunk, complete,
                                       provider, text_event)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-untrusted-0123456789abcdef"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err
    assert err.startswith("lhe-tui: error:") and err.count("\n") == 1, err


def session_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY rowid")]
        except sqlite3.OperationalError:   # created, never written
            return []


def sim_run(capsys, db: Path, *extra: str) -> str:
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "4", "--samples", "2", "--sim-delay", "0",
                           "--db", str(db), *extra)
    assert code == 0, err
    return session_ids(db)[-1]


# ---- 2: numbers that are not numbers --------------------------------------------------------------------

FLOAT_FLAGS = ["--temperature", "--top-p", "--timeout", "--sim-error", "--sim-delay", "--sim-growth",
               "--sim-conditioning", "--induced-error-rate", "--deadline", "--retry-budget", "--max-reply-mb",
               "--max-cost", "--estimate-latency"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "NaN"])
@pytest.mark.parametrize("flag", FLOAT_FLAGS)
def test_non_finite_numbers_are_refused_at_parse_time(capsys, tmp_path, flag, value):
    db = tmp_path / "lhe.db"
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "2", "--sim-delay", "0", "--db", str(db),
                           flag, value)
    one_line_error(code, err)
    assert flag in err
    assert session_ids(db) == []


NESTED = lambda n: '{"a": ' + "[" * n + "]" * n + "}"   # noqa: E731
BAD_BODIES = {
    "NaN": '{"top_k": NaN}', "Infinity": '{"top_k": Infinity}', "-Infinity": '{"x": [-Infinity]}',
    "1e999": '{"min_p": 1e999}', "lone surrogate": '{"stop": "\\ud800"}', "surrogate key": '{"\\udfff": 1}',
    "nested 500": NESTED(500), "nested 5000": NESTED(5000), "too long": json.dumps({"x": "y" * 70_000}),
    "past 64 bits": '{"seed": 99999999999999999999999}',
}


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
@pytest.mark.parametrize("body", BAD_BODIES)
def test_extra_body_that_strict_json_cannot_carry_is_refused(capsys, tmp_path, monkeypatch, body, provider_name):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    db = tmp_path / "lhe.db"
    code, _, err = run_cli(capsys, "run", "--headless", "--provider", provider_name, "--model", "m", "--base-url",
                           "http://127.0.0.1:9/v1", "--turns", "2", "--db", str(db), "--extra-body", BAD_BODIES[body])
    one_line_error(code, err)
    assert "--extra-body" in err and len(err) < 300
    assert session_ids(db) == []


@pytest.mark.parametrize("body", ["NaN", "1e999", "nested 500", "lone surrogate"])
def test_extra_body_inside_an_arm_is_refused_too(capsys, tmp_path, body):
    db = tmp_path / "lhe.db"
    arm = "b:--extra-body='" + BAD_BODIES[body] + "'"   # quoted as a shell would
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "2", "--sim-delay", "0", "--db", str(db),
                           "--arm", "a:", "--arm", arm)
    one_line_error(code, err)
    assert "--arm b" in err and "--extra-body" in err
    assert session_ids(db) == []


@pytest.mark.parametrize("value", ["nan", "inf", "1e999"])
def test_non_finite_number_inside_an_arm_is_refused(capsys, tmp_path, value):
    db = tmp_path / "lhe.db"
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "2", "--sim-delay", "0", "--db", str(db),
                           "--arm", "a:", "--arm", f"b:--temperature={value}")
    one_line_error(code, err)
    assert "--arm b" in err and "--temperature" in err


@pytest.mark.parametrize("flag", ["--model", "--reasoning-effort", "--prompt", "--dataset", "--base-url"])
def test_text_flags_that_utf8_cannot_encode_are_refused(capsys, tmp_path, monkeypatch, flag):
    """Invalid UTF-8 in argv reaches Python as lone surrogates (b'\\xff' is '\\udcff'): stored or sent, it was a
    UnicodeEncodeError traceback."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    db = tmp_path / "lhe.db"
    value = {"--base-url": "http://127.0.0.1:9/v\udcff"}.get(flag, "m\udcff")
    code, _, err = run_cli(capsys, "run", "--headless", "--provider", "openai", "--model", "m", "--turns", "2",
                           "--db", str(db), flag, value)
    one_line_error(code, err)
    assert flag in err and "UTF-8" in err
    assert session_ids(db) == []


BIG = str(2**64)
HUGE_INTS = [("--seed", BIG), ("--seed", "-1"), ("--min-value", "-" + BIG), ("--max-value", BIG),
             ("--min-value", "-10000000000"), ("--max-value", "10000000000"), ("--max-reply-mb", "1e308"),
             ("--max-reply-mb", "5000"), ("--max-tokens", BIG), ("--thinking-budget", BIG),
             ("--max-tokens", "-5"), ("--thinking-budget", "0"), ("--max-tokens", str(10**9 + 1)), ("--retries", BIG),
             ("--window", BIG), ("--dataset-offset", BIG), ("--inject-at", f"1:{BIG}"), ("--inject-at", BIG),
             ("--max-tokens-total", BIG), ("--rpm", BIG), ("--tpm", BIG), ("--turns", BIG), ("--samples", BIG),
             ("--k", BIG), ("--concurrency", BIG), ("--dict-size", BIG), ("--estimate-reply-tokens", BIG)]


@pytest.mark.parametrize("flag, value", HUGE_INTS)
def test_numbers_beyond_what_the_store_and_task_hold_are_refused(capsys, tmp_path, flag, value):
    db = tmp_path / "lhe.db"
    code, _, err = run_cli(capsys, "run", "--headless", "--turns", "3", "--sim-delay", "0", "--db", str(db),
                           flag, value)
    one_line_error(code, err)
    assert flag in err, err
    assert len(err) < 250        # a 20-digit number is named, not printed whole
    assert session_ids(db) == []


@pytest.mark.parametrize("argv", [["--turn", BIG], ["--turn", "-" + BIG], ["--turn", "2", "--set-answer", BIG],
                                  ["--turn", "2", "--offset", "-" + BIG], ["--turn", "2", "--set-answer", "1e999"],
                                  ["--turn", "2", "--sample", BIG], ["--turn", "2", "--temperature", "nan"],
                                  ["--turn", "2", "--seed", BIG]])
def test_fork_flags_beyond_64_bits_are_refused_and_store_nothing(capsys, tmp_path, argv):
    db = tmp_path / "lhe.db"
    parent = sim_run(capsys, db)
    code, _, err = run_cli(capsys, "fork", parent, "--headless", "--db", str(db), *argv)
    one_line_error(code, err)
    assert session_ids(db) == [parent]


def test_a_set_answer_at_the_bound_still_forks(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    parent = sim_run(capsys, db)
    code, _, err = run_cli(capsys, "fork", parent, "--turn", "2", "--set-answer", str(10**15), "--headless",
                           "--db", str(db))
    assert code == 0, err
    assert len(session_ids(db)) == 2


def strict(text: str) -> object:
    def refuse(name):
        raise ValueError(f"{name} is not strict JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_run_stores_strict_json(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    sim_run(capsys, db, "--temperature", "0.6", "--extra-body", '{"min_p": 0.05, "top_k": 20}')
    with sqlite3.connect(db) as conn:
        (config,) = conn.execute("SELECT config_json FROM sessions").fetchone()
    assert strict(config)["extra_body"] == {"min_p": 0.05, "top_k": 20}


def test_one_unreadable_config_leaves_the_rest_listed(capsys, tmp_path):
    """What an older lhe-tui stored (NaN in config_json), and a config cut short: `sessions` and the TUI's list
    show them as unreadable and list the rest; `show`/`export` of the cut one is one line; exports are strict."""
    db = tmp_path / "lhe.db"
    nan_id, cut_id, good_id = (sim_run(capsys, db) for _ in range(3))
    with sqlite3.connect(db) as conn:
        (config,) = conn.execute("SELECT config_json FROM sessions WHERE id = ?", [nan_id]).fetchone()
        conn.execute("UPDATE sessions SET config_json = ? WHERE id = ?",
                     [config.replace('"temperature": null', '"temperature": NaN'), nan_id])
        conn.execute("UPDATE sessions SET config_json = ? WHERE id = ?", [config[:40], cut_id])
    code, out, err = run_cli(capsys, "sessions", "--db", str(db))
    assert code == 0, err
    for sid in (nan_id, cut_id, good_id):
        assert sid in out
    assert "unreadable" in out and "damaged" not in out + err

    from lhe_tui.store.database import open_database
    from lhe_tui.store.queries import list_sessions

    rows = {row["id"]: row for row in list_sessions(open_database(db, create=False, write=False))}
    assert rows[good_id]["status"] == "finished" and rows[cut_id]["status"] == "unreadable"
    assert rows[nan_id]["status"] == "unreadable"   # SQLite's json_valid refuses NaN as well

    for command in ("show", "export"):
        code, _, err = run_cli(capsys, command, cut_id, "--db", str(db))
        one_line_error(code, err)
        assert "unreadable" in err and cut_id in err
    code, out, err = run_cli(capsys, "export", nan_id, "--db", str(db))
    assert code == 0, err
    assert strict(out)["config"]["temperature"] is None
    assert run_cli(capsys, "show", good_id, "--db", str(db))[0] == 0


BAD_PRICES = ["inf", "nan", "1e308", "-1", "100001", '"5"', "true"]


@pytest.mark.parametrize("value", BAD_PRICES)
def test_absurd_prices_are_refused(capsys, tmp_path, value):
    prices = tmp_path / "prices.toml"
    prices.write_text(f"[models.m]\ninput = 1.0\noutput = {value}\n")
    code, _, err = run_cli(capsys, "sessions", "--db", str(tmp_path / "lhe.db"), "--prices", str(prices))
    one_line_error(code, err)
    assert "models.m.output" in err and len(err) < 250


def test_a_nan_estimate_never_passes_the_budget():
    from lhe_tui.core.prices import ModelPrice

    budget = Budget(max_cost=1.0, max_tokens=None, price=ModelPrice(input=1.0, output=1.0))
    assert not budget.admit(Estimate(tokens_in=10, tokens_out=1, cost=float("nan")), "s")
    assert budget.stopped
    budget = Budget(max_cost=1.0, max_tokens=None, price=ModelPrice(input=1.0, output=1.0))
    budget.spent_cost = float("nan")
    assert not budget.admit(Estimate(tokens_in=10, tokens_out=1, cost=0.0), "s")


# ---- 3: usage counts the server sends are untrusted --------------------------------------------------------

PRICES = "[models.m]\ninput = 1000.0\noutput = 1000.0\n"   # dear, so that a few requests reach --max-cost
BAD_USAGE = {"negative": -1_000_000, "absurd": 10**30, "int64 max": 2**63 - 1, "fraction": 1.5}


def usage_reply(kind: str, value) -> ScriptedReply:
    """A reply whose usage carries `value`: as the input count (OpenAI's prompt_tokens, Anthropic's input_tokens);
    Anthropic's negative input is clamped by the fake server, so there the output count carries it."""
    if kind == "anthropic" and isinstance(value, int) and value < 0:
        return ScriptedReply(text="<answer>0</answer>", completion_tokens=value)
    return ScriptedReply(text="<answer>0</answer>", prompt_tokens=value)


@pytest.mark.parametrize("usage", BAD_USAGE)
@pytest.mark.parametrize("kind", KINDS)
def test_made_up_usage_is_not_believed_and_the_budget_still_holds(capsys, tmp_path, monkeypatch, kind, usage):
    db, prices = tmp_path / "lhe.db", tmp_path / "prices.toml"
    prices.write_text(PRICES)
    provider_name = "anthropic" if kind == "anthropic" else "openai"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", "sdk" if kind == "sdk" else "direct")
    with FakeLLMServer(lambda body: usage_reply(kind, BAD_USAGE[usage])) as server:
        url = server.anthropic_base_url if kind == "anthropic" else server.openai_base_url
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", provider_name, "--model", "m",
                                 "--base-url", url, "--turns", "30", "--samples", "1", "--concurrency", "1",
                                 "--max-cost", "3", "--prices", str(prices), "--db", str(db))
        sent = len([r for r in server.requests if r.body and "messages" in r.body])
    assert "Traceback" not in err and "internal error" not in out + err
    assert 1 <= sent < 30                      # --max-cost stopped the run: the estimates counted
    assert "budget of $3.00 reached" in out + err
    assert (out + err).count("usage is not believed") == 1   # said once; each turn's event is stored
    with sqlite3.connect(db) as conn:
        turns = conn.execute("SELECT raw_reply, tokens_in, tokens_out, tokens_cached FROM turns").fetchall()
        ignored = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'usage_ignored'").fetchone()[0]
        (status,) = conn.execute("SELECT status FROM sessions").fetchone()
    assert len(turns) == sent                  # every received reply is stored
    assert all(raw == "<answer>0</answer>" for raw, *_ in turns)
    assert all(value is None or 0 <= value <= 10**9 for _, *counts in turns for value in counts)
    assert ignored == sent and status == "interrupted"
    for command in ("sessions", "show"):
        code, out, err = run_cli(capsys, command, *(["latest"] if command == "show" else []), "--db", str(db),
                                 "--prices", str(prices))
        assert code == 0, err
        assert "-1,000,000" not in out and "$-" not in out


def test_sums_of_counts_an_older_lhe_tui_stored_cannot_overflow(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    sid = sim_run(capsys, db)
    with sqlite3.connect(db) as conn:   # as an lhe-tui that believed a server's 2^63-1 stored them
        conn.execute("UPDATE turns SET tokens_in = ?, tokens_out = 1", [2**63 - 1])
    for argv in (("sessions",), ("show", sid), ("export", sid)):
        code, out, err = run_cli(capsys, *argv, "--db", str(db))
        assert code == 0, (argv, err)
    assert strict(out)["summary"]["tokens"]["in"] >= 8 * (2**63 - 1) - 2**20


async def test_a_turns_reply_is_kept_whatever_its_usage_says():
    """At the provider level the counts come through as the server sent them; the runner drops them."""
    from lhe_tui.core.config import RunConfig
    from lhe_tui.core.events import UsageIgnored
    from lhe_tui.providers.factory import generation_settings
    from lhe_tui.providers.openai_chat import OpenAIChatProvider
    from lhe_tui.runner.runner import Runner
    from lhe_tui.runs.session import build_task

    config = RunConfig(provider="openai", model="m", turns=2, samples=1).validate()
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>1</answer>", prompt_tokens=-5,
                                                  cached_tokens=3)) as server:
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        p = OpenAIChatProvider("m", generation_settings(config), api_key=SECRET, base_url=server.openai_base_url)
        assert await Runner(config, build_task(config), p, "t", bus).run() in ("finished", "finished_with_errors")
        await p.aclose()
    records = [e.record for e in events if isinstance(e, TurnFinished)]
    notes = [e for e in events if isinstance(e, UsageIgnored)]
    assert [r.raw_reply for r in records] == ["<answer>1</answer>"] * 2
    assert all(r.tokens_in is None and r.tokens_cached is None and r.tokens_out is not None for r in records)
    assert len(notes) == 2 and "input -5" in notes[0].message and "estimate" in notes[0].message


@pytest.mark.parametrize("protocol", ["paper", "lenient"])
def test_an_answer_past_64_bits_is_invalid_and_its_reply_kept(capsys, tmp_path, monkeypatch, protocol):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    db = tmp_path / "lhe.db"
    huge = "<answer>" + "9" * 30 + "</answer>"
    with FakeLLMServer(lambda body: ScriptedReply(text=huge)) as server:
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", "openai", "--model", "m", "--base-url",
                                 server.openai_base_url, "--turns", "2", "--protocol", protocol, "--db", str(db))
    assert code == 0 and "internal error" not in out + err, err
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT raw_reply, answer_status, model_answer FROM turns").fetchall()
    assert rows == [(huge, "invalid", None)] * 2


# ---- 4: files are read only when they are regular files of a sane size ----------------------------------------

def cli(tmp_path: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in its own process: a read that hangs (a FIFO) shows as a timeout, not a stuck test run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lhe_tui", *argv], capture_output=True, text=True, cwd=tmp_path,
                          timeout=timeout, env=env)


def fault_file(tmp_path: Path, fault: str, limit: int) -> str:
    if fault == "/dev/zero":
        return "/dev/zero"
    path = tmp_path / f"fault-{fault}"
    if fault == "fifo":
        os.mkfifo(path)
    elif fault == "folder":
        path.mkdir()
    elif fault == "too large":
        with open(path, "wb") as f:    # sparse: no disk used
            f.truncate(limit + 1)
    return str(path)


KIND_LIMITS = {"--prompt": TEMPLATE_LIMIT, "--prices": PRICES_LIMIT, "--dataset": DATASET_LIMIT}
FAULTS = ["/dev/zero", "fifo", "folder", "too large"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("flag", KIND_LIMITS)
def test_a_file_that_is_not_a_sane_regular_file_is_one_line_at_once(tmp_path, flag, fault):
    db = tmp_path / "lhe.db"
    path = fault_file(tmp_path, fault, KIND_LIMITS[flag])
    try:
        result = cli(tmp_path, "run", "--headless", "--turns", "2", "--sim-delay", "0", "--db", str(db), flag, path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{flag} {fault}: no answer within 60 s (a read that hangs or never ends)")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    expected = {"/dev/zero": "character device", "fifo": "FIFO", "folder": "folder", "too large": "allowed"}[fault]
    assert expected in result.stderr
    assert session_ids(db) == []


@pytest.mark.parametrize("fault", ["/dev/zero", "fifo", "too large"])
def test_a_forks_prompt_file_is_read_the_same_way(capsys, tmp_path, fault):
    db = tmp_path / "lhe.db"
    parent = sim_run(capsys, db)
    path = fault_file(tmp_path, fault, TEMPLATE_LIMIT)
    try:
        result = cli(tmp_path, "fork", parent, "--turn", "2", "--prompt", path, "--headless", "--db", str(db))
    except subprocess.TimeoutExpired:
        pytest.fail(f"fork --prompt {fault}: no answer within 60 s")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "prompt template" in result.stderr
    assert session_ids(db) == [parent]


def test_files_within_their_limits_are_still_read(capsys, tmp_path):
    template = (ROOT / "prompts" / "default.toml").read_text(encoding="utf-8")
    padded = tmp_path / "padded.toml"
    padded.write_text("# " + "x" * (TEMPLATE_LIMIT - len(template.encode()) - 10) + "\n" + template)
    assert TEMPLATE_LIMIT - 20 < padded.stat().st_size <= TEMPLATE_LIMIT
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    db = tmp_path / "lhe.db"
    sim_run(capsys, db, "--prompt", str(padded), "--prices", str(prices))
    assert len(session_ids(db)) == 1


# ---- 5: the stream paths' limits -------------------------------------------------------------------------------

async def test_the_anthropic_client_cuts_an_endless_event_line():
    sent = [0]

    async def script(writer, n):
        writer.write(SSE_HEAD + chunk(ANTHROPIC_START) + chunk(
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
            b'"delta": {"type": "text_delta", "text": "'))
        for _ in range(400):  # 26 MB if nobody stopped reading
            if writer.is_closing():
                break
            writer.write(chunk(b"x" * 65536))
            sent[0] += 1
            await writer.drain()
        return False

    async with Hostile(script) as server:
        reply = await complete("anthropic", server, max_reply_chars=100_000)
    assert reply.cut_off.startswith("an event line passed") and reply.text == ""
    assert sent[0] < 200   # the client stopped near its cap (464 KB), long before the 26 MB


INVALID_UTF8 = b'{"choices": [{"index": 0, "delta": {"content": "\xff\xfe"}}]}'
ANTHROPIC_INVALID = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                     b'"delta": {"type": "text_delta", "text": "\xff\xfe"}}\n\n')


def good_reply(kind: str) -> bytes:
    if kind == "anthropic":
        return (ANTHROPIC_START + text_event(kind, "<answer>1</answer>")
                + b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
                  b'"usage": {"output_tokens": 3}}\n\nevent: message_stop\ndata: {"type": "message_stop"}\n\n')
    return REPLY


@pytest.mark.parametrize("kind", KINDS)
async def test_invalid_utf8_in_an_event_is_malformed_data_and_retried(kind):
    bad = ANTHROPIC_START + ANTHROPIC_INVALID if kind == "anthropic" else b"data: " + INVALID_UTF8 + b"\n\n"

    async def script(writer, n):
        writer.write(SSE_HEAD + chunk(bad if n == 1 else good_reply(kind)) + b"0\r\n\r\n")
        return False

    async with Hostile(script) as server:
        p = provider(kind, server)
        with pytest.raises(ProviderError) as caught:
            await p.complete(MESSAGES, RequestMeta(0, 1))
        again = await p.complete(MESSAGES, RequestMeta(0, 1, 1))
        await p.aclose()
    assert caught.value.transient and "malformed data" in str(caught.value) and "UTF-8" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert again.text == "<answer>1</answer>"


CREDENTIAL_URLS = [f"http://user:{SECRET}@127.0.0.1:9/v1", f"http://127.0.0.1:9/v1?api-key={SECRET}",
                   f"http://127.0.0.1:9/v1?api-version=1&access_token={SECRET}", f"http://{SECRET}@127.0.0.1:9/v1"]


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_a_credential_in_the_base_url_is_refused_and_never_shown(capsys, tmp_path, monkeypatch, url, provider_name):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-other-0123456789")
    db = tmp_path / "lhe.db"
    code, _, err = run_cli(capsys, "run", "--headless", "--provider", provider_name, "--model", "m", "--base-url",
                           url, "--turns", "2", "--db", str(db))
    one_line_error(code, err)
    assert "--base-url carries a credential" in err and SECRET not in err
    assert session_ids(db) == []


@pytest.mark.parametrize("client", KINDS)
def test_a_base_url_query_string_is_sent_as_given(capsys, tmp_path, monkeypatch, client):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", "sdk" if client == "sdk" else "direct")
    db = tmp_path / "lhe.db"
    with FakeLLMServer(lambda body: ScriptedReply(text="<answer>0</answer>")) as server:
        name, url, path = (("anthropic", server.anthropic_base_url, "/v1/messages") if client == "anthropic" else
                           ("openai", server.openai_base_url, "/v1/chat/completions"))
        code, _, err = run_cli(capsys, "run", "--headless", "--provider", name, "--model", "m", "--base-url",
                               url + "?api-version=2024-06-01", "--turns", "2", "--db", str(db))
        requests = [r for r in server.requests if r.method == "POST"]
    assert code == 0, err
    assert [(r.path, r.query) for r in requests] == [(path, "api-version=2024-06-01")] * 2
    with sqlite3.connect(db) as conn:
        (config,) = conn.execute("SELECT config_json FROM sessions").fetchone()
    assert json.loads(config)["base_url"] == url + "?api-version=2024-06-01"


def test_credentials_an_older_lhe_tui_stored_are_redacted_on_export(capsys, tmp_path):
    db = tmp_path / "lhe.db"
    sid = sim_run(capsys, db)
    stored = f"http://alice:{SECRET}@example.test/v1?api-version=2&key={SECRET}x"
    with sqlite3.connect(db) as conn:
        (config,) = conn.execute("SELECT config_json FROM sessions").fetchone()
        data = json.loads(config)
        data["base_url"] = stored
        conn.execute("UPDATE sessions SET config_json = ?", [json.dumps(data)])
    code, out, err = run_cli(capsys, "export", sid, "--db", str(db))
    assert code == 0, err
    assert SECRET not in out and "alice" not in out
    assert strict(out)["config"]["base_url"] == "http://[redacted]@example.test/v1?api-version=2&key=[redacted]"


def test_redact_url_leaves_plain_urls_alone():
    from lhe_tui.core.urls import redact_url

    for url in ("http://127.0.0.1:8000/v1", "https://api.example.com/v1?api-version=2024-06-01", None, ""):
        assert redact_url(url) == url
    assert redact_url("https://h/v1?sig=abc&x=1") == "https://h/v1?sig=[redacted]&x=1"
