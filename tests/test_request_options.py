"""Request options (--enable-thinking, --extra-body, --paper-settings, sampling on Anthropic, and every option on
every provider path) and dataset options (--dataset-offset, the --turns default): from the command line to the
request bodies the fake server records, through the real SDKs, and into the stored session."""

import json
import sqlite3

import pytest

from lhe_tui.cli.args import build_parser
from lhe_tui.runs.run_flags import config_from_args
from lhe_tui.cli.main import main
from lhe_tui.common.errors import LheError
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
    from lhe_tui.runs.session import build_task

    rebuilt = build_task(RunConfig.from_dict(stored))
    assert [list(s.keys) for s in rebuilt.samples] == keys


# --------------------------------------------------------------------------- Anthropic: sampling in the body

ANTHROPIC_REFUSES_BOTH = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."


def test_the_anthropic_sdk_is_the_pinned_one():
    """The tests below send through the SDK at the version constraints.txt pins (2.x: create() takes no
    temperature, top_p or top_k, so lhe-tui sends them in the body)."""
    import pathlib
    import re

    import anthropic

    pins = (pathlib.Path(__file__).parents[1] / "constraints.txt").read_text()
    assert anthropic.__version__ == re.search(r"^anthropic==(\S+)$", pins, re.M).group(1)


@pytest.mark.parametrize("settings, expected, absent", [
    (GenerationSettings(temperature=0.6, top_p=0.9, max_tokens=64), {"temperature": 0.6, "top_p": 0.9, "max_tokens": 64},
     ("thinking",)),
    (GenerationSettings(mode="thinking", top_p=0.95, thinking_budget=1500),
     {"top_p": 0.95, "thinking": {"type": "enabled", "budget_tokens": 1500}, "max_tokens": 2524}, ("temperature",)),
    (GenerationSettings(temperature=0.6, extra_body={"top_k": 5, "temperature": 0.2}),
     {"temperature": 0.2, "top_k": 5, "max_tokens": 1024}, ("top_p",)),
    (GenerationSettings(), {"max_tokens": 1024}, ("temperature", "top_p", "top_k", "thinking")),
])
async def test_anthropic_sampling_goes_in_the_body_through_the_sdk(settings, expected, absent):
    with FakeLLMServer(summing_responder()) as server:
        provider = AnthropicProvider("claude-x", settings, api_key="k", base_url=server.anthropic_base_url)
        reply = await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
        body = server.requests[-1].body
    assert reply.text.startswith("<answer>")
    assert {name: body.get(name) for name in expected} == expected
    assert not [name for name in absent if name in body]


@pytest.mark.parametrize("message, settings, hint", [
    (ANTHROPIC_REFUSES_BOTH, GenerationSettings(temperature=0.6, top_p=0.95),
     "(sent for --temperature and --top-p: drop --temperature or --top-p)"),
    ("temperature may only be set to 1 when thinking is enabled", GenerationSettings(mode="thinking", temperature=0.6),
     "(sent for --temperature: drop --temperature)"),
])
async def test_a_refused_sampling_field_names_the_flag(message, settings, hint):
    from lhe_tui.common.errors import ProviderError
    from lhe_tui.testing.fake_llm_server import Fault

    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(Fault("status", status=400, message=message))
        provider = AnthropicProvider("claude-x", settings, api_key="k", base_url=server.anthropic_base_url)
        with pytest.raises(ProviderError) as caught:
            await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
    text = str(caught.value)
    assert text.endswith(hint) and message in text and "\n" not in text
    assert caught.value.status == 400 and not caught.value.transient


async def test_a_refusal_of_something_else_is_left_as_it_is():
    from lhe_tui.common.errors import ProviderError
    from lhe_tui.testing.fake_llm_server import Fault

    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(Fault("status", status=400, message="max_tokens: 99999 > 64000"))
        provider = AnthropicProvider("claude-x", GenerationSettings(temperature=0.6), api_key="k",
                                     base_url=server.anthropic_base_url)
        with pytest.raises(ProviderError) as caught:
            await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
    assert "drop" not in str(caught.value) and "max_tokens: 99999 > 64000" in str(caught.value)


@pytest.mark.parametrize("argv, expected, absent, said", [
    (["--temperature", "0.3", "--top-p", "0.9"], {"temperature": 0.3, "top_p": 0.9, "max_tokens": 1024}, (), None),
    (["--paper"], {"temperature": 0.6, "max_tokens": 10_000}, ("top_p", "thinking"),
     "--paper set: data=paper (the reference generator's rows 0..1), seed=42, temperature=0.6, "
     "max_tokens=10,000, protocol=paper"),
    (["--paper", "--mode", "thinking"], {"top_p": 0.95, "thinking": {"type": "enabled", "budget_tokens": 2048}},
     ("temperature",), "--paper set: data=paper (the reference generator's rows 0..1), seed=42, "
                       "top_p=0.95, protocol=paper"),
    (["--paper-settings", "--top-p", "0.9"], {"temperature": 0.6, "top_p": 0.9, "max_tokens": 10_000}, (),
     "--paper-settings set: temperature=0.6, max_tokens=10,000"),
])
def test_cli_anthropic_run_sends_sampling_and_paper_settings(capsys, monkeypatch, tmp_path, argv, expected, absent,
                                                            said):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    db = str(tmp_path / "lhe.db")
    with FakeLLMServer(summing_responder()) as server:
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", "anthropic", "--model", "claude-x",
                                 "--base-url", server.anthropic_base_url, "--samples", "2", "--turns", "2",
                                 "--db", db, *argv)
        bodies = [r.body for r in server.requests]
    assert code == 0, err
    assert len(bodies) == 4
    for body in bodies:
        assert {name: body.get(name) for name in expected} == expected
        assert not [name for name in absent if name in body]
    assert [line.removeprefix("lhe-tui: ") for line in err.splitlines() if " set: " in line] == ([said] if said else [])


def test_cli_anthropic_refusal_is_one_line_naming_the_flag(capsys, monkeypatch, tmp_path):
    from lhe_tui.testing.fake_llm_server import Fault

    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with FakeLLMServer(summing_responder()) as server:
        server.add_faults(Fault("status", status=400, message=ANTHROPIC_REFUSES_BOTH))
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", "anthropic", "--model", "claude-x",
                                 "--base-url", server.anthropic_base_url, "--turns", "2", "--retries", "0",
                                 "--temperature", "0.6", "--top-p", "0.95", "--db", str(tmp_path / "lhe.db"))
    assert code != 0 and "Traceback" not in out + err and "TypeError" not in out + err
    assert any(line.endswith("drop --temperature or --top-p)") for line in err.splitlines()), err


# --------------------------------------------------------------------------- every option on every provider
# One case per request option and provider path: the flag, through RunConfig and GenerationSettings, to the
# body the fake server receives. A broken option (lost on the way, sent under the wrong name, or refused by
# the SDK) fails its case; "absent" guards against a field sent where it must not be.

OPENAI_CASES = [
    (["--temperature", "0.3"], {"temperature": 0.3}, ()),
    (["--top-p", "0.8"], {"top_p": 0.8}, ()),
    (["--max-tokens", "77"], {"max_tokens": 77}, ("max_completion_tokens",)),
    (["--enable-thinking", "on"], {"chat_template_kwargs": {"enable_thinking": True}}, ()),
    (["--enable-thinking", "off", "--extra-body", '{"chat_template_kwargs": {"x": 1}}'],
     {"chat_template_kwargs": {"x": 1, "enable_thinking": False}}, ()),
    (["--extra-body", '{"top_k": 3, "min_p": 0.1}'], {"top_k": 3, "min_p": 0.1}, ()),
    (["--mode", "thinking", "--reasoning-effort", "high"], {}, ("reasoning_effort",)),  # not to a --base-url server
    (["--paper-settings"], {"temperature": 0.6, "top_p": 0.95, "max_tokens": 10_000}, ()),
    ([], {}, ("temperature", "top_p", "max_tokens", "chat_template_kwargs", "reasoning_effort", "top_k")),
]
ANTHROPIC_CASES = [
    (["--temperature", "0.3"], {"temperature": 0.3}, ("top_p",)),
    (["--top-p", "0.8"], {"top_p": 0.8}, ("temperature",)),
    (["--max-tokens", "77"], {"max_tokens": 77}, ()),
    (["--mode", "thinking", "--thinking-budget", "1500"],
     {"thinking": {"type": "enabled", "budget_tokens": 1500}, "max_tokens": 2524}, ()),
    (["--extra-body", '{"top_k": 3}'], {"top_k": 3}, ()),
    (["--no-cache"], {"system": "SYSTEM"}, ()),
    ([], {"max_tokens": 1024}, ("temperature", "top_p", "top_k", "thinking")),
]


def _option_cases():
    for provider, cases in (("openai", OPENAI_CASES), ("local", OPENAI_CASES), ("anthropic", ANTHROPIC_CASES)):
        clients = ("direct", "sdk") if provider != "anthropic" else ("sdk",)
        for client in clients:
            for argv, expected, absent in cases:
                yield pytest.param(provider, client, argv, expected, absent,
                                   id=f"{provider}-{client}-{' '.join(argv) or 'none'}")


@pytest.mark.parametrize("provider, client, argv, expected, absent", list(_option_cases()))
def test_every_request_option_reaches_the_body(capsys, monkeypatch, tmp_path, provider, client, argv, expected,
                                               absent):
    monkeypatch.setenv("LHE_TUI_OPENAI_CLIENT", client)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLMServer(summing_responder()) as server:
        url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
        code, out, err = run_cli(capsys, "run", "--headless", "--provider", provider, "--model", "m", "--base-url",
                                 url, "--turns", "1", "--db", str(tmp_path / "lhe.db"), *argv)
        body = server.requests[-1].body
    assert code == 0, err
    if expected.get("system") == "SYSTEM":    # --no-cache: the system prompt as plain text, no breakpoints
        assert isinstance(body["system"], str) and "cache_control" not in json.dumps(body)
        expected = {}
    assert {name: body.get(name) for name in expected} == expected
    assert not [name for name in absent if name in body]


@pytest.mark.parametrize("client", ["direct", "sdk"])
async def test_openai_api_options_reach_the_body(monkeypatch, client):
    """The OpenAI API itself (no --base-url): max_completion_tokens, and reasoning_effort in thinking mode."""
    import lhe_tui.providers.openai_http as openai_http

    with FakeLLMServer(summing_responder()) as server:
        monkeypatch.setattr(openai_http, "OPENAI_API", server.openai_base_url)   # the direct client's default
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)           # the SDK's
        settings = GenerationSettings(mode="thinking", max_tokens=77, reasoning_effort="high", temperature=0.6)
        provider = OpenAIChatProvider("o3", settings, api_key="k", base_url=None, client=client)
        await provider.complete(MESSAGES, RequestMeta(0, 1))
        await provider.aclose()
        body = server.requests[-1].body
    assert (body["max_completion_tokens"], body["reasoning_effort"], body["temperature"]) == (77, "high", 0.6)
    assert "max_tokens" not in body and "chat_template_kwargs" not in body


@pytest.mark.parametrize("streamed", [False, True])
async def test_our_local_servers_provider_sends_every_option(streamed):
    """--provider local without --base-url talks to our own llama.cpp server through LocalChatProvider, whose
    headless replies are not streamed (the SDK's create()): every option reaches that body too."""
    from lhe_tui.providers.local_provider import LocalChatProvider

    settings = GenerationSettings(temperature=0.3, top_p=0.8, max_tokens=77, enable_thinking=False,
                                  extra_body={"top_k": 3})
    with FakeLLMServer(summing_responder()) as server:
        provider = LocalChatProvider("m", settings, base_url=server.openai_base_url)
        await provider.complete(MESSAGES, RequestMeta(0, 1), (lambda kind, text: None) if streamed else None)
        await provider.aclose()
        body = server.requests[-1].body
    assert body["stream"] is streamed
    assert {k: body.get(k) for k in ("temperature", "top_p", "max_tokens", "top_k", "chat_template_kwargs")} == {
        "temperature": 0.3, "top_p": 0.8, "max_tokens": 77, "top_k": 3, "chat_template_kwargs": {"enable_thinking": False}}
