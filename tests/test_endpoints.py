"""One model on several servers (issue 24, section 4): pinning, spreading, a server down and back, and a
server killed mid-run over real sockets losing nothing."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import threading
import time

import pytest

from lhe_tui.cli.args import build_parser
from lhe_tui.runs.run_flags import config_from_args
from lhe_tui.cli.main import main
from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import EndpointsChanged, EventBus, SampleFinished, endpoints_line
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import GenerationSettings, Provider, Reply, RequestMeta
from lhe_tui.providers.endpoints import DOWN_AFTER, RETRY_S, EndpointRouter
from lhe_tui.providers.factory import make_provider
from lhe_tui.task.prompts import parse_dictionary
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply, content_text

URLS = [f"http://10.0.0.{i}:8000/v1" for i in range(1, 5)]


# ---------------------------------------------------------------------------- flags and stored config


def parsed(*flags: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["run", "--provider", "openai", "--model", "m", *flags]))


def test_base_url_repeated_or_comma_separated_gives_every_server_and_the_first_as_base_url():
    config = parsed("--base-url", URLS[0], "--base-url", f"{URLS[1]}, {URLS[2]}", "--endpoint-concurrency", "4")
    assert config.base_url == URLS[0]
    assert config.endpoints == tuple(URLS[:3])
    assert config.endpoint_concurrency == 4
    one = parsed("--base-url", URLS[0])
    assert one.base_url == URLS[0] and one.endpoints == ()


def test_stored_config_keeps_the_servers_and_an_old_one_without_them_loads():
    config = parsed("--base-url", URLS[0], "--base-url", URLS[1])
    assert RunConfig.from_dict(__import__("json").loads(__import__("json").dumps(config.to_dict()))) == config
    old = config.to_dict()
    del old["endpoints"], old["endpoint_concurrency"]
    loaded = RunConfig.from_dict(old)
    assert loaded.endpoints == () and loaded.endpoint_concurrency is None and loaded.base_url == URLS[0]


@pytest.mark.parametrize("flags, says", [
    (["--base-url", URLS[0], "--base-url", URLS[1], "--endpoint-concurrency", "0"], "--endpoint-concurrency"),
    (["--base-url", f"{URLS[0]},ftp://x"], "ftp://x"),
])
def test_bad_server_flags_are_one_line_errors(flags, says, capsys):
    assert main(["run", "--headless", "--provider", "openai", "--model", "m", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err


def test_several_servers_make_one_provider_each_behind_the_router():
    router = make_provider(parsed("--base-url", ",".join(URLS), "--endpoint-concurrency", "2"))
    assert isinstance(router, EndpointRouter)
    assert [e.url for e in router.endpoints] == URLS
    assert [e.provider.base_url for e in router.endpoints] == URLS   # type: ignore[attr-defined]
    assert router.label == "openai:m"       # the same model, whichever server answers
    assert isinstance(make_provider(parsed("--base-url", URLS[0])), Provider)
    assert not isinstance(make_provider(parsed("--base-url", URLS[0])), EndpointRouter)


# ---------------------------------------------------------------------------- routing, with stand-in servers


class Server(Provider):
    """A stand-in server: answers unless `failing` holds an error; records who it served and its peak load."""

    name = "openai"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__("m", GenerationSettings())
        self.delay = delay
        self.failing: ProviderError | None = None
        self.served: list[tuple[int, int]] = []
        self.active = self.peak = self.sent = 0

    async def complete(self, messages, meta, on_delta=None):
        self.sent += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            if self.failing is not None:
                raise self.failing
            self.served.append((meta.sample_index, meta.turn))
            return Reply(text="<answer>0</answer>")
        finally:
            self.active -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def router_of(n: int, **kwargs) -> tuple[EndpointRouter, list[Server]]:
    servers = [Server(kwargs.pop("delay", 0.0)) for _ in range(n)] if "delay" in kwargs else [Server() for _ in range(n)]
    return EndpointRouter(list(zip(URLS, servers)), **kwargs), servers


async def turn(router: EndpointRouter, sample: int, number: int) -> Reply:
    return await router.complete([{"role": "user", "content": "x"}], RequestMeta(sample, number))


def who_served(servers: list[Server]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for index, server in enumerate(servers):
        for sample, _ in server.served:
            found.setdefault(sample, set()).add(index)
    return found


async def test_samples_spread_evenly_and_stay_on_their_server():
    router, servers = router_of(4)
    for number in (1, 2, 3):
        await asyncio.gather(*(turn(router, sample, number) for sample in range(10)))
    assert sorted(len(s.served) for s in servers) == [6, 6, 9, 9]           # loads 2, 2, 3, 3
    assert all(len(ends) == 1 for ends in who_served(servers).values())      # pinned for the whole run
    assert sorted(e.load for e in router.statuses()) == [2, 2, 3, 3]


async def test_endpoint_concurrency_caps_the_requests_in_flight_per_server():
    router, servers = router_of(2, delay=0.01, concurrency=2)
    await asyncio.gather(*(turn(router, sample, 1) for sample in range(12)))
    assert [s.peak for s in servers] == [2, 2]
    assert sum(len(s.served) for s in servers) == 12
    unlimited, free = router_of(2, delay=0.01)
    await asyncio.gather(*(turn(unlimited, sample, 1) for sample in range(12)))
    assert [s.peak for s in free] == [6, 6]


async def test_requests_waiting_for_a_slot_on_a_server_that_went_down_are_not_sent_to_it():
    router, servers = router_of(2, delay=0.02, concurrency=1)
    servers[0].failing = ProviderError("openai: request timed out", transient=True, unreachable=True)
    await asyncio.gather(*(turn(router, sample, 1) for sample in range(6)))   # 0, 2, 4 queue on the first
    assert servers[0].sent == 1                                  # only the one that found out
    assert sorted(s for s, _ in servers[1].served) == list(range(6))


async def test_a_server_that_cannot_be_reached_is_down_its_samples_move_and_it_is_tried_again_later():
    clock = Clock()
    router, servers = router_of(4, clock=clock)
    bus, told = EventBus(), []
    bus.subscribe(told.append)
    router.attach(bus)
    for sample in range(8):
        await turn(router, sample, 1)
    on_third = [sample for sample, _ in servers[2].served]                   # samples 2 and 6
    servers[2].failing = ProviderError("openai: cannot connect: connection refused", unreachable=True)
    for sample in range(8):
        await turn(router, sample, 2)                                        # nothing raised: re-sent elsewhere
    assert [s for s, t in servers[2].served if t == 2] == []
    assert sorted(s for server in servers for s, t in server.served if t == 2) == list(range(8))
    assert [e.state for e in router.statuses()] == ["up", "up", "down", "up"]
    assert max(e.load for e in router.statuses()) <= 3                       # 8 over 3 servers up
    await asyncio.sleep(0)                                                   # the views are told once per pass
    assert "down" in endpoints_line(told[-1].endpoints)

    servers[2].failing = None                                                # it comes back, but is not
    clock.now += RETRY_S - 0.1                                               # tried before its back-off ends
    await turn(router, 0, 3)
    assert not [t for _, t in servers[2].served if t == 3]
    clock.now += 0.2
    for sample in range(8):
        await turn(router, sample, 3)
    assert router.statuses()[2].state == "up"
    for sample in range(8):
        await turn(router, sample, 4)
    assert sorted(e.load for e in router.statuses()) == [2, 2, 2, 2]        # even again
    assert len({s for s, t in servers[2].served if t == 4}) == 2
    assert set(on_third) != set() and all(len(ends) <= 3 for ends in who_served(servers).values())


async def test_server_errors_are_retried_by_the_runner_until_repeated_then_the_server_is_down():
    router, servers = router_of(2)
    await turn(router, 0, 1)
    servers[0].failing = ProviderError("openai: HTTP 502: bad gateway", transient=True, status=502)
    for _ in range(DOWN_AFTER - 1):
        with pytest.raises(ProviderError, match="502"):                      # the runner retries, same server
            await turn(router, 0, 2)
    assert router.statuses()[0].state == "up"
    await turn(router, 0, 2)                                                 # the last straw: moved, answered
    assert router.statuses()[0].state == "down" and servers[1].served == [(0, 2)]


async def test_request_errors_and_rate_limits_do_not_mark_a_server_down():
    router, servers = router_of(2)
    for error in (ProviderError("HTTP 400", status=400), ProviderError("HTTP 429", transient=True, status=429)):
        servers[0].failing = error
        for _ in range(DOWN_AFTER + 1):
            with pytest.raises(ProviderError):
                await turn(router, 0, 1)
    assert [e.state for e in router.statuses()] == ["up", "up"]


async def test_every_server_down_is_a_transient_error_that_says_when_the_next_is_tried():
    clock = Clock()
    router, servers = router_of(2, clock=clock)
    for server in servers:
        server.failing = ProviderError("connection lost", transient=True, unreachable=True)
    with pytest.raises(ProviderError, match="all 2 servers are down.*connection lost") as caught:
        await turn(router, 0, 1)
    assert caught.value.transient and caught.value.retry_after == pytest.approx(RETRY_S)
    assert not caught.value.refused


def test_a_run_whose_servers_all_refuse_ends_at_once_in_one_line(tmp_path, capsys):
    dead = []
    for _ in range(2):   # two ports nothing listens on
        server = FakeLLMServer().start()
        dead.append(server.openai_base_url)
        server.stop()
    started = time.monotonic()
    code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--turns", "3", "--db",
                 str(tmp_path / "lhe.db"), "--base-url", ",".join(dead)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and time.monotonic() - started < 60          # not minutes of retries
    last = err.splitlines()[-1]
    assert last.startswith("lhe-tui: error:") and "all 2 servers are down" in last and "refused" in last


async def test_finished_samples_leave_their_servers_load():
    router, servers = router_of(2)
    bus = EventBus()
    router.attach(bus)
    await asyncio.gather(*(turn(router, sample, 1) for sample in range(4)))
    bus.emit(SampleFinished(sample=0, status="finished"))
    bus.emit(SampleFinished(sample=2, status="finished"))
    assert [e.load for e in router.statuses()] == [0, 2]


# ---------------------------------------------------------------------------- a server killed mid-run


_parsing = threading.Lock()
_dictionaries: dict[str, dict[str, int]] = {}


def dictionary_of(system: str) -> dict[str, int]:
    """parse_dictionary, once per system prompt and one server thread at a time (CPython 3.11's
    ast.literal_eval, which it uses, can fail when threads call it at once: "AST constructor recursion
    depth mismatch")."""
    with _parsing:
        if system not in _dictionaries:
            _dictionaries[system] = parse_dictionary(system) or {}
        return _dictionaries[system]


def deterministic_model(body: dict) -> ScriptedReply:
    """Adds this turn's values to the last answer it sees, and errs by one where a hash of what it sees says
    so: its reply depends only on the request, never on which server answers it."""
    messages = body["messages"]
    dictionary = dictionary_of(content_text(messages[0]["content"]))
    previous = 0
    for message in reversed(messages[:-1]):
        found = re.search(r"<answer>(-?\d+)</answer>", content_text(message["content"]))
        if message["role"] == "assistant" and found:
            previous = int(found.group(1))
            break
    keys = content_text(messages[-1]["content"])
    step = sum(dictionary.get(k.strip(), 0) for k in keys.split(","))
    seen = hashlib.sha256(f"{len(messages)}:{keys}:{previous}".encode()).digest()[0]
    return ScriptedReply(text=f"<answer>{previous + step + (seen % 9 == 0)}</answer>", prompt_tokens=len(messages))


SAMPLES, TURNS = 8, 40
ROWS = ("SELECT sample, turn, raw_reply, model_answer, correct, step_correct, history_answer, tokens_in, "
        "tokens_out FROM turns WHERE session_id = ? ORDER BY sample, turn")


def run_on(servers: list[FakeLLMServer], db, kill: FakeLLMServer | None = None, after: int = 0) -> str:
    flags = ["run", "--headless", "--provider", "openai", "--model", "m", "--turns", str(TURNS), "--samples",
             str(SAMPLES), "--seed", "7", "--db", str(db)]
    for server in servers:
        flags += ["--base-url", server.openai_base_url]
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 60
        while len(kill.requests) < after and time.monotonic() < deadline:
            time.sleep(0.002)
        kill.stop()
        killed.set()

    if kill is not None:
        threading.Thread(target=killer, daemon=True).start()
    assert main(flags) == 0
    if kill is not None:
        assert killed.wait(10)
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id FROM sessions ORDER BY rowid DESC").fetchone()[0]


def test_one_of_four_servers_killed_mid_run_loses_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    db = tmp_path / "lhe.db"
    healthy = [FakeLLMServer(deterministic_model, latency=0.01, max_streams=2).start() for _ in range(4)]
    try:
        calm = run_on(healthy, db)
    finally:
        for server in healthy:
            server.stop()
    servers = [FakeLLMServer(deterministic_model, latency=0.01, max_streams=2).start() for _ in range(4)]
    try:
        hit = run_on(servers, db, kill=servers[1], after=25)    # it holds 2 samples x 40 turns: mid-run
    finally:
        for server in servers:
            server.stop()
    err = capsys.readouterr().err
    assert "server 2 (" in err and "down" in err
    served = [len(s.requests) for s in servers]
    assert 25 <= served[1] < 2 * TURNS                          # killed with its samples' turns half done
    assert sum(served) >= SAMPLES * TURNS                       # the others took the rest
    with sqlite3.connect(db) as conn:
        calm_rows, hit_rows = conn.execute(ROWS, [calm]).fetchall(), conn.execute(ROWS, [hit]).fetchall()
        statuses = conn.execute("SELECT status FROM samples WHERE session_id = ?", [hit]).fetchall()
        session = conn.execute("SELECT status, config_json FROM sessions WHERE id = ?", [hit]).fetchone()
    assert len(hit_rows) == SAMPLES * TURNS                     # every turn stored
    assert hit_rows == calm_rows                                # the same results as on healthy servers
    assert any(not row[4] for row in hit_rows)                  # (the model errs: the check has teeth)
    assert session[0] == "finished" and statuses == [("finished",)] * SAMPLES
    assert all(s.openai_base_url in session[1] for s in servers)   # the servers are stored with the session


def test_the_status_bar_shows_each_servers_load_or_state_while_running():
    from lhe_tui.core.events import EndpointStatus, RunStarted
    from lhe_tui.ui.feed import RunModel
    from lhe_tui.ui.widgets.status_bar import SourceInfo, StatusBar

    bar = StatusBar()
    bar._s = lambda name: ""   # no app, no theme: the plain text is what is checked
    model = RunModel()
    model.apply(RunStarted("s1", {"provider": "openai", "mode": "direct", "k": 1}, {}, (("a",),), "openai:m", False))
    assert " ep " not in bar.compose_text(model, None, SourceInfo()).plain     # one server: nothing said
    model.apply(EndpointsChanged((EndpointStatus(URLS[0], "up", 22), EndpointStatus(URLS[1], "down", 0),
                                  EndpointStatus(URLS[2], "trying", 1))))
    assert " · ep 22 down trying · " in bar.compose_text(model, None, SourceInfo()).plain


def test_a_server_back_after_its_back_off_gets_samples_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("lhe_tui.providers.endpoints.RETRY_S", 0.2)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    first = FakeLLMServer(deterministic_model, latency=0.01).start()
    other = FakeLLMServer(deterministic_model, latency=0.01).start()
    back: list[FakeLLMServer] = []

    def bounce() -> None:   # down after 10 of its requests, back on the same port 0.3 s later
        deadline = time.monotonic() + 60
        while len(first.requests) < 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        first.stop()
        time.sleep(0.3)
        back.append(FakeLLMServer(deterministic_model, latency=0.01, port=first.port).start())

    threading.Thread(target=bounce, daemon=True).start()
    try:
        code = main(["run", "--headless", "--provider", "openai", "--model", "m", "--turns", "150", "--samples",
                     "4", "--db", str(tmp_path / "lhe.db"), "--base-url", f"{first.openai_base_url},{other.openai_base_url}"])
    finally:
        other.stop()
        for server in back:
            server.stop()
    err = capsys.readouterr().err
    assert code == 0
    assert "server 1 (" in err and "down" in err and "up again" in err
    assert back and len(back[0].requests) > 0                   # samples went back to it
    with sqlite3.connect(tmp_path / "lhe.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 4 * 150
