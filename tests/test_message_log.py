"""The runner's append-only message list (MessageLog) sends exactly what a full rebuild
(HistoryPolicy.messages) would, across windows, heal, induced errors and injections."""

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lhe_tui.core.config import Injection, RunConfig
from lhe_tui.core.events import EventBus, TurnFinished
from lhe_tui.runner.history import HistoryEntry, HistoryPolicy, MessageLog
from lhe_tui.runner.runner import Runner
from lhe_tui.runs.session import build_task

from tests.helpers import EchoHistoryProvider

policies = st.builds(HistoryPolicy, seed=st.integers(0, 5), induced_error_rate=st.sampled_from([0.0, 0.3, 1.0]),
                     heal=st.booleans(), window=st.none() | st.integers(0, 6))
# a step: append a finished turn (model answer, or None for a miss), inject into the latest entry, or
# replace the history list by a copy (as a resume does)
steps = st.lists(st.one_of(st.tuples(st.just("turn"), st.none() | st.integers(-50, 50)),
                           st.tuples(st.just("inject"), st.integers(-9, 9)),
                           st.tuples(st.just("copy"), st.none())), max_size=40)


@settings(max_examples=200, deadline=None)
@given(policies, steps)
def test_message_log_equals_a_full_rebuild(policy, ops):
    log = MessageLog(policy, "SYSTEM")
    history: list[HistoryEntry] = []
    sent: list[tuple[list, list]] = []  # (list handed out, a copy of it then)
    gold = 0
    for op, arg in ops:
        if op == "turn":
            turn = len(history) + 1
            gold += turn
            shown = policy.history_answer(0, turn, arg, gold)
            history.append(HistoryEntry(turn=turn, keys=(f"k{turn}a", f"k{turn}b"),
                                        reply_visible="" if arg is None else f"sum is <answer>{arg}</answer>",
                                        model_answer=arg, history_answer=shown, gold_sum=gold))
        elif op == "inject" and history:
            entry = history[-1]
            entry.history_answer = (entry.history_answer if entry.history_answer is not None else gold) + arg
            log.invalidate()
        elif op == "copy":
            history = list(history)
        keys = (f"next{len(history)}",)
        if sent:  # what the provider was handed stays as it was until the next request (an injection too)
            assert sent[-1][0] == sent[-1][1]
        messages = log.messages(history, keys)
        assert messages == policy.messages("SYSTEM", history, keys)
        sent.append((messages, [dict(m) for m in messages]))
    # A list the log grows no more (a rebuild or a window gave out a new one) stays as last handed out.
    last_handed_out = {id(handed_out): (handed_out, then) for handed_out, then in sent}
    for handed_out, then in last_handed_out.values():
        if handed_out is not sent[-1][0]:
            assert handed_out == then


def test_message_log_appends_without_rebuilding():
    log = MessageLog(HistoryPolicy(), "S")
    history: list[HistoryEntry] = []
    for turn in range(1, 50):
        log.messages(history, ("k",))
        history.append(HistoryEntry(turn=turn, keys=("k",), reply_visible="<answer>1</answer>", model_answer=1,
                                    history_answer=1, gold_sum=1))
    assert log.rebuilds == 1


class CheckingProvider(EchoHistoryProvider):
    """Compares every request with a full rebuild; injects by hand while some requests are in flight."""

    def __init__(self) -> None:
        super().__init__(lambda meta, previous, step: "no tag" if meta.turn % 5 == 0 else None)
        self.runner: Runner | None = None
        self.checked = 0

    async def complete(self, messages, meta, on_delta=None):
        runner = self.runner
        expected = runner.policy.messages(runner.system, runner.history[meta.sample_index],
                                          runner.task.samples[meta.sample_index].turn_keys(meta.turn))
        assert messages == expected, f"sample {meta.sample_index} turn {meta.turn}"
        self.checked += 1
        await asyncio.sleep(random.random() / 1000)
        if (meta.turn + meta.sample_index) % 4 == 0:
            runner.inject(meta.sample_index, offset=3)  # lands in the entry already sent this turn
        return await super().complete(messages, meta, on_delta)


def test_runner_requests_equal_a_full_rebuild_under_every_policy():
    for extra in ({}, {"window": 3}, {"window": 1}, {"heal": True}, {"induced_error_rate": 0.4},
                  {"window": 2, "induced_error_rate": 0.5}):
        config = RunConfig(provider="sim", turns=14, samples=3, concurrency=3, seed=2,
                           inject_at=(Injection(turn=3, offset=5), Injection(turn=7, value=0)), **extra).validate()
        provider = CheckingProvider()
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        runner = provider.runner = Runner(config, build_task(config), provider, "t", bus)
        assert asyncio.run(runner.run()) == "finished", extra
        assert provider.checked == 14 * 3
        assert len([e for e in events if isinstance(e, TurnFinished)]) == 14 * 3
