"""`sim`: a built-in, offline, seedable stand-in for an LLM. Labelled simulated everywhere.

It knows the task (the Runner hands it over with `bind_task`: the dictionary and each sample's keys), so
it works with any prompt template; like a model, it reads its previous answer from the visible history
(the assistant messages). It updates its own visible answer (so injected errors are carried forward) and
slips with a per-step probability

    p_err = base_error + growth * turn + conditioning * (share of inconsistent steps in its visible history)

which is the self-conditioning effect the paper measures: errors in its history breed new errors. It reads
only the part of a sample's history that is new since its previous request, so a turn costs the same at
turn 10,000 as at turn 10 (issue 26; `_ReadSoFar`).
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
        self._read: dict[int, _ReadSoFar] = {}   # per sample: what it has read of its visible history

    def bind_task(self, task: Task) -> None:
        self.dictionary = dict(task.dictionary)
        self.samples = {sample.index: sample for sample in task.samples}
        self._read = {}

    def error_probability(self, turn: int, history_error_share: float) -> float:
        p = self.sim.base_error + self.sim.growth * turn + self.sim.conditioning * history_error_share
        return min(max(p, 0.0), 0.95)

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sample = self.samples.get(meta.sample_index)
        dictionary = self.dictionary
        previous, share, chars = self._read_history(messages, sample, meta.turn, meta.sample_index)
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
        return Reply(text=text, reasoning=reasoning, tokens_in=chars // 4,
                     tokens_out=len(_pieces(text)) + len(_pieces(reasoning)),
                     latency_s=loop.time() - started, finish_reason="stop")

    def _reply_text(self, previous: int, keys: list[str], values: list[int], answer: int, format_miss: bool) -> str:
        if format_miss:
            return f"The total is {answer}."
        if self.settings.mode == "cot":
            terms = " + ".join(f"{key} ({value})" for key, value in zip(keys, values))
            return f"Previous total {previous}; {terms}; {previous} + {sum(values)} = {answer}. <answer>{answer}</answer>"
        return f"<answer>{answer}</answer>"

    def _read_history(self, messages: list[Message], sample: Sample | None, turn: int,
                      sample_index: int) -> tuple[int, float, int]:
        """Return (last visible running total, share of visible steps that do not add up, characters of
        all the messages).

        The visible (user, assistant) pairs are the turns just before this one (a sliding window drops
        the oldest), so pair i of n is turn `turn - n + i`; its keys' values come from the task. Only
        the pairs not read for the sample's previous request are read (see `_ReadSoFar`)."""
        if not messages:
            return 0, 0.0, 0
        read = self._read.get(sample_index)
        if read is None or not read.continues(messages):
            read = self._read[sample_index] = _ReadSoFar(messages, sample)
        answers, end = _new_answers(messages, read.end)
        if read.pairs and turn - (read.pairs + len(answers)) != read.first:  # the same pairs, other turns
            read = self._read[sample_index] = _ReadSoFar(messages, sample)
            answers, end = _new_answers(messages, read.end)
        read.add(answers, turn, messages, end)
        return read.previous, read.share, read.chars + sum(len(m["content"]) for m in messages[end:])


class _ReadSoFar:
    """One sample's visible history as far as the sim has read it: the state after its first `pairs`
    (user, assistant) pairs, which end before message `end`.

    A sample's next request normally repeats the previous one's messages (the same objects: the runner's
    MessageLog renders each once) and adds the turn just finished, so only the new pairs are read: O(1)
    per turn instead of re-parsing the whole history. Whether the history still starts with what was
    read is told by identity of the last message read (and of the first): a rebuilt message list (an
    injection re-renders it; a resume, fork or probe makes new ones; a sliding window moves it, so a
    windowed run reads its w visible turns each time) has new objects there, and the history is read
    again from the start. Like the OpenAI BodyEncoder, this relies on a message object, once sent, not
    being changed in place; the reference it keeps means its id cannot be reused by another object
    meanwhile.
    """

    __slots__ = ("sample", "head", "anchor", "end", "pairs", "first", "total", "checked", "wrong", "chars")

    def __init__(self, messages: list[Message], sample: Sample | None) -> None:
        self.sample = sample
        self.head = self.anchor = messages[0]
        self.end = 1                  # the next pair's user message (pairs sit at odd indices)
        self.pairs = 0
        self.first = 0                # the turn of the first pair (set with the first pairs read)
        self.total: int | None = 0    # the running total the visible history shows (None: unknown)
        self.checked = self.wrong = 0
        self.chars = len(messages[0]["content"])   # of messages[:end]

    def continues(self, messages: list[Message]) -> bool:
        """Whether `messages` start with what was read (bind_task forgets it all: a new task)."""
        end = self.end
        return len(messages) >= end and messages[end - 1] is self.anchor and messages[0] is self.head

    def add(self, answers: list[str], turn: int, messages: list[Message], end: int) -> None:
        if not self.pairs:
            self.first = turn - len(answers)
            self.total = 0 if self.first == 1 else None   # nothing dropped by a sliding window: from 0
        sample, total, checked, wrong = self.sample, self.total, self.checked, self.wrong
        at = self.first + self.pairs
        for offset, assistant in enumerate(answers):
            step = sample.turn_sum(at + offset) if sample is not None and at + offset >= 1 else 0
            parsed = parse_answer(assistant)
            if parsed.status != "ok":
                total = None if total is None else total + step
                checked, wrong = checked + 1, wrong + 1
                continue
            if total is not None:
                checked += 1
                wrong += parsed.value != total + step
            total = parsed.value
        self.total, self.checked, self.wrong = total, checked, wrong
        self.pairs += len(answers)
        if end > self.end:
            self.chars += sum(len(m["content"]) for m in messages[self.end:end])
            self.end, self.anchor = end, messages[end - 1]

    @property
    def previous(self) -> int:
        return self.total or 0

    @property
    def share(self) -> float:
        return self.wrong / self.checked if self.checked else 0.0


def _new_answers(messages: list[Message], start: int) -> tuple[list[str], int]:
    """The assistant contents of the (user, assistant) pairs at odd indices from `start`, and the index the
    next pair would start at."""
    answers = []
    i = start
    last = len(messages) - 1
    while i < last:
        if messages[i]["role"] == "user" and messages[i + 1]["role"] == "assistant":
            answers.append(messages[i + 1]["content"])
        i += 2
    return answers, i


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
