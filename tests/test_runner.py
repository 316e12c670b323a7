import asyncio

from lhe_tui.runner.config import Injection, RunConfig
from lhe_tui.runner.events import EventBus, Injected, RunFinished, TokenDelta, TurnFinished
from lhe_tui.runner.runner import Runner
from lhe_tui.session import build_task
from lhe_tui.providers.factory import make_provider

from tests.helpers import EchoHistoryProvider


def run(config, provider=None):
    config = config.validate()
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    runner = Runner(config, build_task(config), provider or make_provider(config), "test", bus)
    status = asyncio.run(runner.run())
    return status, events, runner


def records(events):
    return [e.record for e in events if isinstance(e, TurnFinished)]


def test_sim_same_seed_same_answers():
    config = RunConfig(provider="sim", turns=40, samples=3, seed=5, sim_delay=0)
    a = [(r.sample, r.turn, r.model_answer) for r in records(run(config)[1])]
    b = [(r.sample, r.turn, r.model_answer) for r in records(run(config)[1])]
    assert sorted(a) == sorted(b)
    assert len(a) == 120
    c = [(r.sample, r.turn, r.model_answer) for r in records(run(RunConfig(provider="sim", turns=40, samples=3,
                                                                          seed=6, sim_delay=0))[1])]
    assert sorted(a) != sorted(c)


def test_sim_streams_deltas_and_is_labelled_simulated():
    status, events, runner = run(RunConfig(provider="sim", turns=3, samples=1, sim_delay=0, mode="thinking"))
    assert status == "finished"
    assert "simulated" in runner.provider.label
    kinds = {e.kind for e in events if isinstance(e, TokenDelta)}
    assert kinds == {"text", "reasoning"}
    assert all(r.reasoning and "<answer>" in r.raw_reply for r in records(events))


def test_perfect_model_scores_all_correct():
    status, events, _ = run(RunConfig(provider="sim", turns=10, samples=2), EchoHistoryProvider())
    recs = records(events)
    assert status == "finished"
    assert all(r.correct and r.step_correct for r in recs)
    assert isinstance(events[-1], RunFinished)


def test_carried_error_is_turn_wrong_but_step_right():
    def slip_at_3(meta, previous, step):
        return f"<answer>{previous + step + 5}</answer>" if meta.turn == 3 else None

    _, events, _ = run(RunConfig(provider="sim", turns=6, samples=1), EchoHistoryProvider(slip_at_3))
    recs = {r.turn: r for r in records(events)}
    assert recs[2].correct and recs[2].step_correct
    assert not recs[3].correct and not recs[3].step_correct
    assert all(not recs[t].correct and recs[t].step_correct for t in (4, 5, 6))
    assert recs[4].model_answer - recs[4].gold_sum == 5


def test_format_miss_counts_wrong_and_scores_next_turn_against_gold():
    def miss_at_2(meta, previous, step):
        return "I think it is big" if meta.turn == 2 else None

    _, events, _ = run(RunConfig(provider="sim", turns=4, samples=1), EchoHistoryProvider(miss_at_2))
    recs = {r.turn: r for r in records(events)}
    assert recs[2].answer_status == "format" and not recs[2].correct and not recs[2].step_correct
    assert recs[3].seen_previous == recs[2].gold_sum


def test_scripted_injection_is_carried_forward_then_heal_recovers():
    config = RunConfig(provider="sim", turns=6, samples=1, inject_at=(Injection(turn=2, offset=7),))
    _, events, _ = run(config, EchoHistoryProvider())
    injections = [e for e in events if isinstance(e, Injected)]
    assert len(injections) == 1 and injections[0].injected - injections[0].original == 7
    recs = {r.turn: r for r in records(events)}
    assert recs[2].correct  # the model's stored answer is kept
    assert all(not recs[t].correct and recs[t].step_correct for t in (3, 4, 5, 6))

    healed = RunConfig(provider="sim", turns=6, samples=1, heal=True, inject_at=(Injection(turn=2, offset=7),))
    _, events, _ = run(healed, EchoHistoryProvider())
    recs = {r.turn: r for r in records(events)}
    assert not recs[3].correct  # saw the injected value once
    assert all(recs[t].correct for t in (4, 5, 6))  # heal shows gold from then on


def test_window_sends_system_prompt_and_last_w_turns():
    provider = EchoHistoryProvider()
    run(RunConfig(provider="sim", turns=6, samples=1, window=2), provider)
    last = provider.seen[-1]
    assert last[0]["role"] == "system"
    assert len(last) == 1 + 2 * 2 + 1
    assert [m["role"] for m in last[1:]] == ["user", "assistant", "user", "assistant", "user"]


def test_pause_blocks_new_turns_and_stop_interrupts():
    async def scenario():
        config = RunConfig(provider="sim", turns=500, samples=2, sim_delay=0.001).validate()
        bus = EventBus()
        done = []
        bus.subscribe(lambda e: done.append(e) if isinstance(e, TurnFinished) else None)
        runner = Runner(config, build_task(config), make_provider(config), "t", bus)
        task = asyncio.create_task(runner.run())
        while len(done) < 4:
            await asyncio.sleep(0.005)
        runner.pause()
        await asyncio.sleep(0.05)
        frozen = len(done)
        await asyncio.sleep(0.1)
        assert len(done) <= frozen + 2  # at most the turns already in flight finish
        runner.resume()
        while len(done) < frozen + 6:
            await asyncio.sleep(0.005)
        runner.stop()
        return await task, len(done)

    status, finished = asyncio.run(scenario())
    assert status == "interrupted"
    assert finished < 1000


def test_manual_injection_all_samples_and_typed_value():
    async def scenario():
        config = RunConfig(provider="sim", turns=4, samples=3).validate()
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        runner = Runner(config, build_task(config), EchoHistoryProvider(), "t", bus)
        assert runner.inject(0, offset=3) is None  # nothing to inject into yet
        # play two turns per sample by hand, then inject
        for sample in runner.task.samples:
            gold = sample.gold_sums()
            for turn in (1, 2):
                runner.bus.emit(TurnFinished(await runner._play_turn(sample, turn, gold[turn - 1],
                                                                     runner.history[sample.index])))
        typed = runner.inject(1, value=12345)
        everyone = runner.inject_all()
        return runner, typed, everyone

    runner, typed, everyone = asyncio.run(scenario())
    assert typed.injected == 12345 and typed.turn == 2 and typed.sample == 1
    assert len(everyone) == 3
    for event in everyone:
        assert event.injected != event.original and 1 <= abs(event.injected - event.original) <= 10
    assert runner.history[1][-1].history_answer == everyone[1].injected


def test_unexpected_exception_fails_the_sample_visibly():
    class Broken(EchoHistoryProvider):
        async def complete(self, messages, meta, on_delta=None):
            raise RuntimeError("boom")

    status, events, runner = run(RunConfig(provider="sim", turns=3, samples=2), Broken())
    assert status == "failed"
    assert "internal error: RuntimeError: boom" in events[-1].message
