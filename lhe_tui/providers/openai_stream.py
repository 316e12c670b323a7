"""The OpenAI Chat Completions streaming format, whatever carries it: chunks in, one Reply out.

Both ways of sending a request (`openai_http`'s direct client and the openai SDK) hand the parsed
`chat.completion.chunk` objects to a `ChunkReader`. `BodyEncoder` builds the request body, reusing
the JSON of the messages it already encoded for that sample (the history is append-only).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping

from lhe_tui.errors import ProviderError
from lhe_tui.providers.base import DeltaKind, Message, OnDelta, Reply
from lhe_tui.providers.reasoning import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")


def _count(usage: object, field: str) -> int | None:
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


class ChunkReader:
    """Folds one streamed reply's chunks (parsed JSON) into text, reasoning, usage and finish reason.

    Deltas for `on_delta` are gathered and handed on by `flush_deltas()`, merged by kind: the direct
    client flushes once per network read, so a reply that arrives in one read is one delta event
    (a TokenDelta costs the runner, the bus and every subscriber, and at 64 samples there are
    thousands a second), while a slowly streamed reply still shows as it comes.
    """

    __slots__ = ("provider", "on_delta", "splitter", "native_reasoning", "usage", "finish_reason", "_pending")

    def __init__(self, provider: str, on_delta: OnDelta | None) -> None:
        self.provider = provider
        self.on_delta = on_delta
        self.splitter = ThinkSplitter()
        self.native_reasoning: list[str] = []
        self.usage: object = None
        self.finish_reason: str | None = None
        self._pending: list[list] = []  # [kind, text] pieces not yet handed to on_delta

    def _collect(self, kind: DeltaKind, text: str) -> None:
        pending = self._pending
        if pending and pending[-1][0] == kind:
            pending[-1][1] += text
        else:
            pending.append([kind, text])

    def flush_deltas(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            if self.on_delta is not None:
                for kind, text in pending:
                    self.on_delta(kind, text)

    def feed(self, chunk: object) -> None:
        if not isinstance(chunk, dict):
            return
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        collect = self._collect if self.on_delta is not None else None
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                if not delta.keys().isdisjoint(_REASONING_FIELDS):
                    reasoning = next((delta[f] for f in _REASONING_FIELDS if isinstance(delta.get(f), str)), None)
                    if reasoning:
                        self.native_reasoning.append(reasoning)
                        if collect:
                            collect("reasoning", reasoning)
                content = delta.get("content")
                if content and isinstance(content, str):
                    self.splitter.feed_to(content, collect)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = finish_reason

    def feed_batch(self, chunks: list) -> None:
        """The chunks of one network read, then their deltas handed on."""
        for chunk in chunks:
            self.feed(chunk)
        self.flush_deltas()

    def reply(self, latency_s: float) -> Reply:
        """The whole reply; a stream that ended without a finish reason was cut off (transient)."""
        self.splitter.flush_to(self._collect if self.on_delta is not None else None)
        self.flush_deltas()
        if self.finish_reason is None:
            raise ProviderError(f"{self.provider}: stream ended before the reply was complete", transient=True)
        splitter = self.splitter
        return Reply(text="".join(splitter.text),
                     reasoning="".join(self.native_reasoning) + "".join(splitter.reasoning),
                     tokens_in=_count(self.usage, "prompt_tokens"), tokens_out=_count(self.usage, "completion_tokens"),
                     latency_s=latency_s, finish_reason=self.finish_reason)


def stream_error(chunk: Mapping[str, object]) -> str | None:
    """The message of an error sent as a stream event (`{"error": {...}}`), as the SDK reads it."""
    error = chunk.get("error")
    if not error:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else "An error occurred during streaming"


class BodyEncoder:
    """The JSON request body, with each message encoded once per sample rather than once per request.

    A sample's history only grows (and a window policy drops old turns), so nearly every message of a
    request was in the previous one: its JSON is reused by identity of the message object. Encoding
    the whole history every time is O(turns) of CPU per request (~0.4 ms at 200 turns, 14 ms at 5,000);
    joining cached pieces is a copy. The cache holds the previous request's messages, so an id cannot
    be reused by another object while its piece is cached.
    """

    def __init__(self) -> None:
        self._by_sample: dict[int, tuple[list[Message], list[str]]] = {}
        self.reencoded = 0  # requests that missed the fast path (for tests and benchmarks)
        self._rest: tuple[Mapping[str, object], str] | None = None  # the last other fields and their JSON

    def encode(self, sample: int, messages: list[Message], params: Mapping[str, object]) -> bytes:
        """`params` are the other body fields; the result equals json.dumps({"messages": ..., **params})."""
        old_messages, old_pieces = self._by_sample.get(sample, ([], []))
        # The previous request's messages, but for its last one (the runner renders the pending user
        # turn anew once the turn is in the history), are usually the start of this one.
        keep = len(old_messages)
        if keep > len(messages) or not all(map(operator.is_, old_messages, messages)):
            keep -= 1
            if keep > len(messages) or not all(map(operator.is_, old_messages[:keep], messages)):
                keep = -1
        if keep >= 0:
            pieces = old_pieces[:keep]
            pieces += map(json.dumps, messages[keep:])
        else:  # a window slid or an entry was rewritten: reuse what can be found
            self.reencoded += 1
            known = {id(m): p for m, p in zip(old_messages, old_pieces)}
            pieces = [known.get(id(m)) or json.dumps(m) for m in messages]
        self._by_sample[sample] = (list(messages), pieces)
        rest = self._rest
        if rest is None or rest[0] is not params:  # the provider passes the same fields every time
            encoded = json.dumps(dict(params))
            rest = self._rest = (params, ", " + encoded[1:] if len(encoded) > 2 else "}")
        return ('{"messages": [' + ", ".join(pieces) + "]" + rest[1]).encode()
