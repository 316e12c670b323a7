"""`sim`: a built-in, offline, seedable stand-in for an LLM. Labelled simulated everywhere.

It knows the task (the Runner hands it over with `bind_task`: the dictionary and each sample's keys), so
it works with any prompt template; like a model, it reads its previous answer from the visible history
(the assistant messages). It updates its own visible answer (so injected errors are carried forward) and
slips with a per-step probability

    p_err = base_error + growth * turn + conditioning * (share of inconsistent steps in its visible history)

which is the self-conditioning effect the paper measures: errors in its history breed new errors.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta
from lhe_tui.task.answer import parse_answer
from lhe_tui.task.model import Sample, Task


@dataclass(frozen=True)
class SimSettings:
    seed: int = 0
    base_error: float = 0.005
    growth: float = 0.0004
    conditioning: float = 0.6
    format_miss: float = 0.003
    token_delay: float = 0.002


class SimProvider(Provider):
    name = "sim"
    simulated = True

    def __init__(self, model: str, settings: GenerationSettings, sim: SimSettings) -> None:
        super().__init__(model or "sim-1", settings)
        self.sim = sim
        self.dictionary: dict[str, int] = {}
        self.samples: dict[int, Sample] = {}

    def bind_task(self, task: Task) -> None:
        self.dictionary = dict(task.dictionary)
        self.samples = {sample.index: sample for sample in task.samples}

    def error_probability(self, turn: int, history_error_share: float) -> float:
        p = self.sim.base_error + self.sim.growth * turn + self.sim.conditioning * history_error_share
        return min(max(p, 0.0), 0.95)

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sample = self.samples.get(meta.sample_index)
        dictionary = self.dictionary
        previous, share = self._read_history(messages, sample, meta.turn)
        keys = list(sample.turn_keys(meta.turn)) if sample is not None else []
        values = [dictionary.get(key, 0) for key in keys]
        expected = previous + sum(values)

        rng = random.Random(f"sim:{self.sim.seed}:{meta.sample_index}:{meta.turn}")
        answer = expected
        if rng.random() < self.error_probability(meta.turn, share):
            answer = expected + rng.choice([-1, 1]) * rng.randint(1, 10)
        format_miss = rng.random() < self.sim.format_miss

        reasoning = ""
        if self.settings.mode == "thinking":
            reasoning = f"The running total was {previous}. " + " ".join(
                f"{key} is {value}." for key, value in zip(keys, values)) + f" So the total is now {answer}."
        text = self._reply_text(previous, keys, values, answer, format_miss)
        for kind, piece in [("reasoning", p) for p in _pieces(reasoning)] + [("text", p) for p in _pieces(text)]:
            if self.sim.token_delay:
                await asyncio.sleep(self.sim.token_delay)
            if on_delta:
                on_delta(kind, piece)  # type: ignore[arg-type]
        tokens_in = sum(len(m["content"]) for m in messages) // 4
        return Reply(text=text, reasoning=reasoning, tokens_in=tokens_in,
                     tokens_out=len(_pieces(text)) + len(_pieces(reasoning)),
                     latency_s=loop.time() - started, finish_reason="stop")

    def _reply_text(self, previous: int, keys: list[str], values: list[int], answer: int, format_miss: bool) -> str:
        if format_miss:
            return f"The total is {answer}."
        if self.settings.mode == "cot":
            terms = " + ".join(f"{key} ({value})" for key, value in zip(keys, values))
            return f"Previous total {previous}; {terms}; {previous} + {sum(values)} = {answer}. <answer>{answer}</answer>"
        return f"<answer>{answer}</answer>"

    @staticmethod
    def _read_history(messages: list[Message], sample: Sample | None, turn: int) -> tuple[int, float]:
        """Return (last visible running total, share of visible steps that do not add up).

        The visible (user, assistant) pairs are the turns just before this one (a sliding window drops
        the oldest), so pair i of n is turn `turn - n + i`; its keys' values come from the task."""
        turns = [messages[i + 1]["content"] for i in range(1, len(messages) - 1, 2)
                 if messages[i]["role"] == "user" and messages[i + 1]["role"] == "assistant"]
        complete_history = len(turns) == turn - 1  # nothing dropped by a sliding window
        total: int | None = 0 if complete_history else None
        checked = wrong = 0
        first = turn - len(turns)
        for offset, assistant in enumerate(turns):
            step = sample.turn_sum(first + offset) if sample is not None and first + offset >= 1 else 0
            parsed = parse_answer(assistant)
            if parsed.status != "ok":
                total = None if total is None else total + step
                checked, wrong = checked + 1, wrong + 1
                continue
            if total is not None:
                checked += 1
                wrong += parsed.value != total + step
            total = parsed.value
        return (total or 0), (wrong / checked if checked else 0.0)


def _pieces(text: str) -> list[str]:
    """Split text into token-sized pieces the way a tokenizer roughly would."""
    pieces, current = [], ""
    for char in text:
        if char in " <>" and current:
            pieces.append(current)
            current = ""
        current += char
        if char == ">":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces
