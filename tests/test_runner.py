import asyncio
import pathlib
import tempfile

from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import EventBus, Injected, RunFinished, TokenDelta, TurnFinished
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task
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


def test_format_miss_is_step_wrong_and_next_turn_builds_on_the_last_stated_answer():
    # Issue 13 changed this rule: after a missing answer the next turn used to be scored from the gold sum
    # of the missed turn, a total the model never stated. Now the base is the model's last valid answer
    # (here the wrong one at turn 1) plus the keys of every turn since, the missed turn's included.
    def script(meta, previous, step):
        if meta.turn == 1:
            return f"<answer>{previous + step + 5}</answer>"
        if meta.turn == 2:
            return "I think it is big"
        return None

    _, events, _ = run(RunConfig(provider="sim", turns=4, samples=1), EchoHistoryProvider(script))
    recs = {r.turn: r for r in records(events)}
    assert recs[2].answer_status == "format" and not recs[2].correct and not recs[2].step_correct
    assert recs[2].seen_previous == recs[1].model_answer and recs[2].expected_step == recs[1].model_answer + recs[2].turn_sum
    assert recs[3].seen_previous == recs[1].model_answer + recs[2].turn_sum   # not recs[2].gold_sum
    assert recs[3].expected_step == recs[3].gold_sum + 5
    # The echo model restarts from 0 after a reply it cannot read: step-wrong at 3, self-consistent after.
    assert not recs[3].step_correct and recs[4].step_correct


def test_step_accuracy_after_missing_wrong_and_injected_answers():
    """The scenarios the m003 migration is tested on, scored by today's runner (tests/step_scenarios.py)."""
    from lhe_tui.store.database import open_database
    from tests.step_scenarios import run_scenario

    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(pathlib.Path(tmp) / "s.db")
        events = []
        run_scenario(db, "steps-k1", extra_subscribers=[events.append])
        db.conn.close()
    recs = {(r.sample, r.turn): r for r in records(events)}
    # sample 0: wrong at 1 (+5), no answer at 2, then its own answer plus the keys of turns 2 and 3
    assert not recs[0, 1].correct and not recs[0, 1].step_correct
    assert not recs[0, 2].step_correct and recs[0, 2].model_answer is None
    assert recs[0, 3].seen_previous == recs[0, 1].model_answer + recs[0, 2].turn_sum
    assert recs[0, 3].step_correct and not recs[0, 3].correct
    # sample 0: turn 5 injected (value 1000) before turn 6 was sent: turn 6 builds on 1000
    assert recs[0, 6].seen_previous == 1000 and recs[0, 6].step_correct
    # sample 1: an invalid answer at turn 1 is step-wrong; turn 2 builds on 0 plus turn 1's keys
    assert recs[1, 1].answer_status == "invalid" and not recs[1, 1].step_correct
    assert recs[1, 2].seen_previous == recs[1, 1].turn_sum and recs[1, 2].step_correct
    # sample 1: no answer at 3, but a value injected into turn 3 before turn 4: turn 4 builds on it
    assert recs[1, 4].seen_previous == recs[1, 3].gold_sum + 4 and recs[1, 4].step_correct
    # sample 2: turn 3 injected while turn 4 was in flight: turn 4 was sent (and is scored) with the
    # original answer; turn 5 builds on turn 4's answer
    injected = {(e.sample, e.turn): e for e in events if isinstance(e, Injected)}
    assert injected[2, 3].injected == recs[2, 3].model_answer + 7
    assert recs[2, 4].seen_previous == recs[2, 3].model_answer and recs[2, 4].step_correct
    assert recs[2, 5].seen_previous == recs[2, 4].model_answer
    # sample 4: the same, but no answer at turn 4: turn 5 builds on the injected value plus turn 4's keys
    assert recs[4, 4].seen_previous == recs[4, 3].model_answer and not recs[4, 4].step_correct
    assert recs[4, 5].seen_previous == recs[4, 3].model_answer - 6 + recs[4, 4].turn_sum
    assert recs[4, 5].step_correct


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


def test_step_base_is_rebuilt_from_a_given_history_as_a_resume_does():
    from lhe_tui.runner.history import HistoryEntry
    from lhe_tui.runner.step_base import StepBase

    def entry(turn, gold, shown):
        return HistoryEntry(turn=turn, keys=("apple",), reply_visible="", model_answer=shown, history_answer=shown,
                            gold_sum=gold)

    # gold sums 5, 8, 6, 16: turn sums 5, 3, -2, 10; the last answer shown is 9 at turn 2
    history = [entry(1, 5, None), entry(2, 8, 9), entry(3, 6, None), entry(4, 16, None)]
    assert StepBase.from_history(history).value == 9 - 2 + 10
    assert StepBase.from_history(history[:1]).value == 5      # no answer yet: 0 plus the keys so far
    assert StepBase.from_history([]).value == 0
    base = StepBase.from_history(history)
    base.anchor(40)                                           # an injection into the latest entry
    assert base.value == 40
    base.advance(None, 7)
    assert base.value == 47


def test_induced_errors_fall_on_each_samples_own_turns():
    """--induced-error-rate replaces each past answer independently: samples do not share the turns (nor the
    values) of their induced errors, and the rate holds per sample."""
    config = RunConfig(provider="sim", turns=60, samples=6, seed=8, induced_error_rate=0.3)
    _, events, _ = run(config, EchoHistoryProvider())
    induced: dict[int, list[tuple[int, int]]] = {}
    for r in records(events):   # a perfect model: a shown answer that is not its own is an induced error
        if r.history_answer != r.model_answer:
            induced.setdefault(r.sample, []).append((r.turn, r.history_answer - r.model_answer))
    assert sorted(induced) == list(range(6))
    turns = [frozenset(t for t, _ in induced[s]) for s in range(6)]
    assert len(set(turns)) == 6                                  # no two samples alike
    for s in range(6):
        assert 6 <= len(turns[s]) <= 32                          # 0.3 of 60 turns: 18 expected
    # independence: the share of turns induced in both of two samples is about 0.3 * 0.3, not 0.3
    both = sum(len(turns[a] & turns[b]) for a in range(6) for b in range(a + 1, 6))
    assert both / (15 * 60) < 0.2


def test_a_full_speed_sim_run_lets_other_tasks_run_between_its_turns():
    """The sim with no token delay never waits: the runner yields between a simulated sample's turns, so
    the loop's other work (the run process's event batches to the screen, its pipe of pause, stop and
    inject commands) happens during the run, not after it (issue 26). Here a task that stops the run once
    it sees a few finished turns lands mid-run."""
    config = RunConfig(provider="sim", turns=400, samples=2, concurrency=2, seed=1, sim_delay=0.0).validate()
    bus, finished = EventBus(), []
    bus.subscribe(lambda e: finished.append(e) if isinstance(e, TurnFinished) else None)
    runner = Runner(config, build_task(config), make_provider(config), "t", bus)

    async def main() -> str:
        async def stop_when_started() -> None:
            while len(finished) < 5:
                await asyncio.sleep(0)
            runner.stop()

        stopper = asyncio.create_task(stop_when_started())
        status = await runner.run()
        await stopper
        return status

    assert asyncio.run(main()) == "interrupted"
    assert 5 <= len(finished) < 50
