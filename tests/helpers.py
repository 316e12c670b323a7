"""Shared test doubles: a scripted provider that answers from what it sees."""

from __future__ import annotations

from collections.abc import Callable

from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta
from lhe_tui.task.answer import parse_answer
from lhe_tui.task.prompts import parse_dictionary


class EchoHistoryProvider(Provider):
    """Adds this turn's values to the last answer it can see (a perfect self-consistent model).

    `script(meta, previous, step) -> reply text` may override a reply (e.g. to make a mistake).
    """

    name = "echo"

    def __init__(self, script: Callable[[RequestMeta, int, int], str | None] | None = None) -> None:
        super().__init__("echo-1", GenerationSettings())
        self.script = script
        self.seen: list[list[Message]] = []

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        self.seen.append(list(messages))   # the runner grows its list in place: keep a copy
        dictionary = parse_dictionary(messages[0]["content"]) or {}
        previous = 0
        for message in reversed(messages[:-1]):
            if message["role"] == "assistant":
                previous = parse_answer(message["content"]).value or 0
                break
        step = sum(dictionary[key.strip()] for key in messages[-1]["content"].split(","))
        text = (self.script(meta, previous, step) if self.script else None) or f"<answer>{previous + step}</answer>"
        if on_delta:
            on_delta("text", text)
        return Reply(text=text, tokens_in=len(messages), tokens_out=1, latency_s=0.0, finish_reason="stop")
