"""Request options (--enable-thinking, --extra-body, --paper-settings) and dataset options (--dataset-offset,
the --turns default): from the command line to the request bodies a scripted OpenAI-compatible server
records, on both OpenAI clients, and into the stored session."""

import json
import sqlite3

import pytest

from lhe_tui.cli.args import build_parser, config_from_args
from lhe_tui.cli.main import main
from lhe_tui.errors import LheError
from lhe_tui.providers.anthropic_messages import AnthropicProvider
from lhe_tui.providers.base import GenerationSettings, RequestMeta
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.core.config import RunConfig
from lhe_tui.task import generate_task
from lhe_tui.testing.fake_llm_server import FakeLLMServer
from tests.test_providers import summing_responder

MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "alpha"}]
STANDARD = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}


def config(*argv):
    return config_from_args(build_parser().parse_args(["run", *argv]))


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_config(db):
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT config_json FROM sessions").fetchone()
    return json.loads(text)


# --------------------------------------------------------------------------- the wire, both clients


@pytest.mark.parametrize("client", ["direct", "sdk"])
@pytest.mark.parametrize("thinking", [True, False])
async def test_extra_body_and_enable_thinking_reach_the_wire(client, thinking):
    settings = GenerationSettings(temperature=0.6, enable_thinking=thinking,
                                  extra_body={"top_k": 20, "min_p": 0.0, "repetition_penalty": 1.05,
                                              "chat_template_kwargs": {"custom": "kept"}})
    with FakeLLMServer(summing_responder()) as server:
        provider = OpenAIChatProvider("m", settings, api_key="k", base_url=server.openai_base_url, client=client)
        assert provider.client_kind == client
        for turn in (1, 2):
            await provider.complete(MESSAGES, RequestMeta(0, turn))
        await provider.aclose()
        bodies = [r.body for r in server.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0] == {"messages": MESSAGES, **STANDARD, "temperature": 0.6, "top_k": 20, "min_p": 0.0,
                         "repetition_penalty": 1.05,
                         "chat_template_kwargs": {"custom": "kept", "enable_thinking": thinking}}


@pytest.mark.parametrize("client", ["direct", "sdk"])
async def test_no_options_send_no_extra_fields_and_extra_body_wins_over_ours(client):
    with FakeLLMServer(summing_responder()) as server:
        plain = OpenAIChatProvider("m", GenerationSettings(), api_key="k", base_url=server.openai_base_url,
                                   client=client)
        await plain.complete(MESSAGES, RequestMeta(0, 1))
        await plain.aclose()
        override = OpenAIChatProvider("m", GenerationSettings(temperature=0.6, extra_body={"temperature": 0.0}),
                                      api_key="k", base_url=server.openai_base_url, client=client)
        await override.complete(MESSAGES, RequestMeta(0, 1))
        await override.aclose()
        first, second = (r.body for r in server.requests)
    assert first == {"messages": MESSAGES, **STANDARD}
    assert second["temperature"] == 0.0


async def test_sdk_create_with_extra_body_sends_what_we_send():
    """request_params are create()'s keyword arguments: the extra fields go as its extra_body, and the body
    create() sends is the one both of our clients send."""
    settings = GenerationSettings(enable_thinking=False, extra_body={"top_k": 20})
    with FakeLLMServer(summing_responder()) as server:
        provider = OpenAIChatProvider("m", settings, api_key="k", base_url=server.openai_base_url, client="direct")
        params = provider.request_params(MESSAGES)
        assert params["extra_body"] == {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}
        await provider.complete(MESSAGES, RequestMeta(0, 1))
        stream = await provider.client.chat.completions.create(**params)
        async for _chunk in stream:
            pass
        await provider.aclose()
        ours, sdk = (r.body for r in server.requests)
    assert ours == sdk


async def test_direct_client_encodes_the_extra_fields_once():
    """The direct client's fast path: the other body fields (extra ones included) are encoded once, the
    history appended to the previous request's JSON."""
    settings = GenerationSettings(enable_thinking=True, extra_body={"top_k": 20})
    provider = OpenAIChatProvider("m", settings, api_key="k", base_url="http://127.0.0.1:9/v1", client="direct")
    encoder = provider._bodies
    fields = provider._fields
    history = list(MESSAGES)
    for turn in range(5):
        body = encoder.encode(0, history, fields)
        assert json.loads(body) == {"messages": history, **STANDARD, "top_k": 20,
                                    "chat_template_kwargs": {"enable_thinking": True}}
        rest = encoder._rest
        history = history + [{"role": "assistant", "content": f"<answer>{turn}</answer>"},
                             {"role": "user", "content": "beta"}]
    assert encoder.reencoded == 0 and encoder._rest is rest and provider._fields is fields
    await provider.aclose()


async def test_anthropic_gets_extra_body_through_the_sdk():
    with FakeLLMServer(summing_responder()) as server:
        provider = AnthropicProvider("claude", GenerationSettings(extra_body={"top_k": 5}), api_key="k",
                                     base_url=server.anthropic_base_url)
        await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
        body = server.requests[-1].body
    assert body["top_k"] == 5 and body["system"][0]["text"] == "sys" and "chat_template_kwargs" not in body


# --------------------------------------------------------------------------- end to end from the CLI


@pytest.mark.parametrize("client", ["direct", "sdk"])
def test_cli_run_sends_the_options_and_stores_them(capsys, monkeypatch, tmp_path, client):
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", client)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = str(tmp_path / "lhe.db")
    with FakeLLMServer(summing_responder()) as server:
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", "openai", "--model", "Qwen/Qwen3-8B",
                                 "--base-url", server.openai_base_url, "--turns", "3", "--samples", "2",
                                 "--paper-settings", "--enable-thinking", "off",
                                 "--extra-body", '{"top_k": 20, "min_p": 0}', "--db", db)
        bodies = [r.body for r in server.requests]
    assert code == 0, err
    assert len(bodies) == 6
    for body in bodies:
        assert {k: v for k, v in body.items() if k != "messages"} == {
            "model": "Qwen/Qwen3-8B", "stream": True, "stream_options": {"include_usage": True},
            "temperature": 0.6, "top_p": 0.95, "max_tokens": 10_000, "top_k": 20, "min_p": 0,
            "chat_template_kwargs": {"enable_thinking": False}}
    stored = stored_config(db)
    assert stored["enable_thinking"] is False and stored["extra_body"] == {"top_k": 20, "min_p": 0}
    assert (stored["temperature"], stored["top_p"], stored["max_tokens"], stored["seed"]) == (0.6, 0.95, 10_000, 0)
    assert stored["paper"] == "settings"
    assert stored["paper_choices"] == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 10_000}
    assert RunConfig.from_dict(stored).extra_body == {"top_k": 20, "min_p": 0}
    assert "--paper-settings set: temperature=0.6, top_p=0.95, max_tokens=10,000" in err


def test_paper_settings_resolve_with_explicit_flags_winning():
    plain = config()
    assert (plain.temperature, plain.top_p, plain.max_tokens, plain.seed, plain.turns) == (None, None, None, 0, 100)
    paper = config("--paper-settings")   # the sampling only: not the seed, the data or the thinking switch
    assert (paper.temperature, paper.top_p, paper.max_tokens, paper.seed) == (0.6, 0.95, 10_000, 0)
    assert (paper.data, paper.samples, paper.enable_thinking) == ("generated", 1, None)
    thinking = config("--paper-settings", "--mode", "thinking")
    assert (thinking.temperature, thinking.max_tokens) == (0.6, None)  # no cap in thinking mode
    mixed = config("--paper-settings", "--temperature", "0", "--seed", "0", "--max-tokens", "64", "--top-p", "1")
    assert (mixed.temperature, mixed.top_p, mixed.max_tokens, mixed.seed) == (0.0, 1.0, 64, 0)
    assert config("--enable-thinking", "on").enable_thinking is True
    assert config("--enable-thinking", "off").enable_thinking is False
    assert config().enable_thinking is None and config().extra_body == {}


def test_old_stored_config_without_the_new_fields_loads():
    old = RunConfig().to_dict()
    for name in ("enable_thinking", "extra_body", "dataset_offset"):
        old.pop(name)
    loaded = RunConfig.from_dict(old)
    assert (loaded.enable_thinking, loaded.extra_body, loaded.dataset_offset) == (None, {}, 0)
    assert RunConfig.from_dict(loaded.to_dict()) == loaded


@pytest.mark.parametrize("argv, needle", [
    (["--extra-body", "[1, 2]"], "--extra-body must be a JSON object, got list [1, 2]"),
    (["--extra-body", "{top_k: 20}"], "--extra-body must be a JSON object, got invalid JSON"),
    (["--extra-body", '"text\\nwith a newline"'], "--extra-body must be a JSON object, got str"),
    (["--extra-body", "7"], "got int 7"),
    (["--extra-body", '{"messages": []}'], "--extra-body must not set 'messages'"),
    (["--enable-thinking", "maybe"], "--enable-thinking expects on or off"),
    (["--provider", "anthropic", "--model", "claude-x", "--enable-thinking", "on"],
     "--enable-thinking is for OpenAI-compatible servers"),
    (["--dataset-offset", "2"], "--dataset-offset needs --dataset"),
    (["--dataset-offset", "-1", "--dataset", "x.json"], "--dataset-offset must not be negative"),
    (["--dataset", "DATASET", "--dataset-offset", "5"], "has 3 rows; --dataset-offset 5 is beyond them"),
    (["--dataset", "DATASET", "--dataset-offset", "2", "--samples", "2"], "has 1 rows from row 2, fewer than"),
    (["--dataset", "DATASET", "--k", "9"], "fewer than --k 9"),
])
def test_bad_options_are_one_line_errors(capsys, monkeypatch, tmp_path, argv, needle):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    dataset = tmp_path / "data.json"
    task = generate_task(1, n_samples=3, turns=8, k=1)
    dataset.write_text(json.dumps({"dictionary": task.dictionary, "ground_truth_data": [
        {"id": i, "input": list(s.keys)} for i, s in enumerate(task.samples)]}))
    argv = [str(dataset) if a == "DATASET" else a for a in argv]
    code, out, err = run_cli(capsys, "run", "--headless", "--db", str(tmp_path / "lhe.db"), *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lhe-tui: error:") and needle in lines[0], err
    assert "Traceback" not in err + out
    with pytest.raises(LheError):  # the same error from the parser the TUI's `run` uses
        config(*argv)


def test_dataset_offset_and_turns_default_are_stored_and_resume_rebuilds_the_task(capsys, tmp_path):
    task = generate_task(5, n_samples=4, turns=12, k=1)
    dataset = tmp_path / "data.json"
    dataset.write_text(json.dumps({"dict_sum": {"dictionary": task.dictionary, "ground_truth_data": [
        {"id": i, "input": list(s.keys), "values": list(s.values)} for i, s in enumerate(task.samples)]}}))
    db = str(tmp_path / "lhe.db")
    code, out, err = run_cli(capsys, "run", "--headless", "--dataset", str(dataset), "--dataset-offset", "1",
                             "--samples", "2", "--k", "5", "--sim-delay", "0", "--db", db)
    assert code == 0, err
    stored = stored_config(db)
    assert (stored["dataset_offset"], stored["turns"], stored["k"]) == (1, 2, 5)  # 12 keys hold 2 turns of 5
    with sqlite3.connect(db) as conn:
        keys = [json.loads(k) for (k,) in conn.execute("SELECT keys_json FROM samples ORDER BY sample")]
    assert keys == [list(task.samples[i].keys[:10]) for i in (1, 2)]
    from lhe_tui.session import build_task

    rebuilt = build_task(RunConfig.from_dict(stored))
    assert [list(s.keys) for s in rebuilt.samples] == keys
