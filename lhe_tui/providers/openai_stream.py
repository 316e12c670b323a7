"""The OpenAI Chat Completions streaming format, whatever carries it: chunks in, one Reply out.

Both ways of sending a request (`openai_http`'s direct client and the openai SDK) hand the parsed
`chat.completion.chunk` objects to a `ChunkReader`. `BodyEncoder` builds the request body, reusing
the JSON of the messages it already encoded for that sample (the history is append-only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import DeltaKind, Message, OnDelta, Reply, ReplyTooLarge
from lhe_tui.providers.reasoning import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")


def _count(usage: object, field: str) -> int | None:
    """The count as the server sent it (None: not sent); whether it is believed is the runner's call
    (lhe_tui.providers.base.distrust_counts), which says so when it is not."""
    return usage.get(field) if isinstance(usage, dict) else None


def usage_counts(usage: object) -> dict[str, int | None]:
    """Reply's token fields from an OpenAI `usage` object (parsed JSON): prompt and completion tokens, the
    cached part of the prompt (`prompt_tokens_details.cached_tokens`) and the reasoning part of the completion
    (`completion_tokens_details.reasoning_tokens`). A count the server leaves out is None ("not reported")."""
    if not isinstance(usage, dict):
        return {"tokens_in": None, "tokens_out": None, "tokens_cached": None, "tokens_reasoning": None}
    return {"tokens_in": _count(usage, "prompt_tokens"), "tokens_out": _count(usage, "completion_tokens"),
            "tokens_cached": _count(usage.get("prompt_tokens_details"), "cached_tokens"),
            "tokens_reasoning": _count(usage.get("completion_tokens_details"), "reasoning_tokens")}


class ChunkReader:
    """Folds one streamed reply's chunks (parsed JSON) into text, reasoning, usage and finish reason.

    Deltas for `on_delta` are gathered and handed on by `flush_deltas()`, merged by kind: the direct
    client flushes once per network read, so a reply that arrives in one read is one delta event
    (a TokenDelta costs the runner, the bus and every subscriber, and at 64 samples there are
    thousands a second), while a slowly streamed reply still shows as it comes. Likewise the content
    of consecutive chunks goes through the `<think>` splitter in one piece, at the flush or when native
    reasoning comes between (the splitter's pieces are the same whatever the cuts, and a content
    chunk with a tag's `<` takes its slow path).
    """

    __slots__ = ("provider", "on_delta", "splitter", "native_reasoning", "usage", "finish_reason", "_pending",
                 "_content", "size", "max_chars")

    def __init__(self, provider: str, on_delta: OnDelta | None, max_chars: int | None = None) -> None:
        self.provider = provider
        self.on_delta = on_delta
        self.splitter = ThinkSplitter()
        self.native_reasoning: list[str] = []
        self.usage: object = None
        self.finish_reason: str | None = None
        self._pending: list[list] = []  # [kind, text] pieces not yet handed to on_delta
        self._content: list[str] = []   # content not yet through the splitter
        self.size = 0                    # characters of content and reasoning so far
        self.max_chars = max_chars       # more than this: ReplyTooLarge

    def _collect(self, kind: DeltaKind, text: str) -> None:
        pending = self._pending
        if pending and pending[-1][0] == kind:
            pending[-1][1] += text
        else:
            pending.append([kind, text])

    def _split_content(self) -> None:
        content = self._content
        if content:
            self._content = []
            self.splitter.feed_to(content[0] if len(content) == 1 else "".join(content),
                                  self._collect if self.on_delta is not None else None)

    def flush_deltas(self) -> None:
        self._split_content()
        if self._pending:
            pending, self._pending = self._pending, []
            if self.on_delta is not None:
                for kind, text in pending:
                    self.on_delta(kind, text)

    def _malformed(self, what: str, value: object) -> ProviderError:
        return ProviderError(f"{self.provider}: the server sent malformed data: {what} is "
                             f"{type(value).__name__} {json.dumps(value, default=str)[:40]}", transient=True)

    def _grew(self, text: str) -> None:
        self.size += len(text)
        if self.max_chars is not None and self.size > self.max_chars:
            raise ReplyTooLarge(f"the reply passed {self.max_chars:,} characters")

    def feed(self, chunk: object) -> None:
        """One chunk; a chunk whose fields have the wrong shape is a server fault (transient ProviderError)."""
        if not isinstance(chunk, dict):
            return
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return
        if type(choices) is not list:
            raise self._malformed("`choices`", choices)
        for choice in choices:
            if type(choice) is not dict:
                raise self._malformed("`choices[]`", choice)
            delta = choice.get("delta")
            if delta:
                if type(delta) is not dict:
                    raise self._malformed("`delta`", delta)
                if not delta.keys().isdisjoint(_REASONING_FIELDS):
                    reasoning = next((delta[f] for f in _REASONING_FIELDS if isinstance(delta.get(f), str)), None)
                    if reasoning:
                        self._grew(reasoning)
                        self._split_content()  # the content before it goes first
                        self.native_reasoning.append(reasoning)
                        if self.on_delta is not None:
                            self._collect("reasoning", reasoning)
                content = delta.get("content")
                if content:
                    if type(content) is not str:
                        raise self._malformed("`delta.content`", content)
                    self._grew(content)
                    self._content.append(content)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                if type(finish_reason) is not str:
                    raise self._malformed("`finish_reason`", finish_reason)
                self.finish_reason = finish_reason

    def feed_batch(self, chunks: list) -> None:
        """The chunks of one network read, then their deltas handed on."""
        for chunk in chunks:
            self.feed(chunk)
        self.flush_deltas()

    def cut_reply(self, reason: str, latency_s: float) -> Reply:
        """What came before the size cap stopped the reading, with the reason (`Reply.cut_off`)."""
        self._split_content()
        self.splitter.flush_to(None)
        self._pending = []
        splitter = self.splitter
        return Reply(text="".join(splitter.text), reasoning="".join(self.native_reasoning) + "".join(splitter.reasoning),
                     latency_s=latency_s, finish_reason="cut_off", cut_off=reason)

    def reply(self, latency_s: float) -> Reply:
        """The whole reply; a stream that ended without a finish reason was cut off (transient)."""
        self._split_content()
        self.splitter.flush_to(self._collect if self.on_delta is not None else None)
        self.flush_deltas()
        if self.finish_reason is None:
            raise ProviderError(f"{self.provider}: stream ended before the reply was complete", transient=True)
        splitter = self.splitter
        return Reply(text="".join(splitter.text),
                     reasoning="".join(self.native_reasoning) + "".join(splitter.reasoning),
                     latency_s=latency_s, finish_reason=self.finish_reason, **usage_counts(self.usage))


def stream_error(chunk: Mapping[str, object]) -> str | None:
    """The message of an error sent as a stream event (`{"error": {...}}`), as the SDK reads it."""
    error = chunk.get("error")
    if not error:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else "An error occurred during streaming"


_escape = json.encoder.encode_basestring_ascii  # what json.dumps uses for every str (ensure_ascii)


def message_json(message: object) -> str:
    """json.dumps(message), without building a JSON encoder per call for the usual flat dict of strings."""
    if type(message) is dict:
        parts = []
        for key, value in message.items():
            if type(key) is not str or type(value) is not str:
                return json.dumps(message)
            parts.append(f"{_escape(key)}: {_escape(value)}")
        return "{" + ", ".join(parts) + "}"
    return json.dumps(message)


class _Encoded:
    """One sample's last request: its messages but the last, their JSON joined (as bytes, grown in place),
    and the last's JSON apart (the runner renders the pending user turn anew once the turn is in the
    history)."""

    __slots__ = ("head", "pieces", "joined", "last", "last_piece")

    def __init__(self, messages: list[Message], pieces: list[str]) -> None:
        self.head = messages[:-1]
        self.pieces = pieces[:-1]
        self.joined = bytearray(", ".join(self.pieces).encode())
        self.last = messages[-1] if messages else None
        self.last_piece = pieces[-1] if pieces else ""


class BodyEncoder:
    """The JSON request body, with each message encoded once per sample rather than once per request.

    A sample's history only grows (and a window policy drops old turns), so nearly every message of a
    request was in the previous one: its JSON is reused by identity of the message object. Encoding
    the whole history every time is O(turns) of CPU per request (~0.4 ms at 200 turns, 14 ms at 5,000);
    here the usual request is the previous one's messages but the last, then new ones, and only the new
    ones are encoded, appended to the previous JSON (a bytearray, grown in place); the body is one copy
    of it. That the previous messages start the request is told, as the sim does (providers.sim), by
    identity of the first and of the last of them (a pass of `is` over all of them cost 0.3 ms at
    10,000 turns): a slid window or a rebuilt history (an injection) has other objects there. This
    relies on a message, once sent, not being changed in place, nor a list being spliced from old
    and new message objects (the runner's MessageLog does neither). The cache holds the previous
    request's messages, so an id cannot be reused by another object while its piece is cached.
    """

    def __init__(self) -> None:
        self._by_sample: dict[int, _Encoded] = {}
        self.reencoded = 0  # requests that missed the fast path (for tests and benchmarks)
        self._rest: tuple[Mapping[str, object], bytes] | None = None  # the last other fields and their JSON

    def encode(self, sample: int, messages: list[Message], params: Mapping[str, object], start: int = 0,
               last: Message | None = None) -> bytes:
        """The body as one bytes object: see `pieces`."""
        return b"".join(self.pieces(sample, messages, params, start, last))

    def pieces(self, sample: int, messages: list[Message], params: Mapping[str, object], start: int = 0,
               last: Message | None = None) -> tuple[bytes | bytearray, ...]:
        """The body in pieces whose concatenation is the JSON body, for a client to join once with its own
        head (each copy of a 1 MB body costs ~0.06 ms and evicts as much from the caches). A piece may be
        the encoder's own buffer, changed by its next call for the sample: use the pieces before that.

        `params` are the other body fields; the body equals json.dumps({"messages": sent, **params}),
        where `sent` is messages[start:] with its last message replaced by `last` if one is given (the
        Anthropic body: the system prompt is not a message, and the last one carries a cache breakpoint).
        The list is not copied: at 10,000 turns a copy of 20,000 references costs more than the rest of
        the encoding, and touches every message."""
        old = self._by_sample.get(sample)
        head = old.head if old is not None else []
        keep = len(head)
        if old is not None and keep < len(messages) - start and (
                not keep or (messages[start + keep - 1] is head[-1] and messages[start] is head[0])):
            # The previous request's messages but its last start this one: append to their JSON.
            new = messages[start + keep:]
            if last is not None:
                new[-1] = last
            pieces = [old.last_piece if new[0] is old.last else message_json(new[0])]
            pieces += map(message_json, new[1:])
            if len(pieces) > 1:  # all but the last join the head (in place: the cache is the encoder's own)
                head += new[:-1]
                old.pieces += pieces[:-1]
                more = ", ".join(pieces[:-1]).encode()
                if old.joined:
                    old.joined += b", "
                old.joined += more
            old.last, old.last_piece = new[-1], pieces[-1]
        else:  # the first request, a window slid or an entry was rewritten: reuse what can be found
            if old is not None:
                self.reencoded += 1
                known = {id(m): p for m, p in zip(old.head, old.pieces)}
                if old.last is not None:
                    known[id(old.last)] = old.last_piece
            else:
                known = {}
            messages = messages[start:]
            if last is not None and messages:
                messages[-1] = last
            pieces = [known.get(id(m)) or message_json(m) for m in messages]
            old = self._by_sample[sample] = _Encoded(messages, pieces)
        rest = self._rest
        if rest is None or (rest[0] is not params and rest[0] != params):  # mostly the same fields every time
            encoded = json.dumps(dict(params))
            rest = self._rest = (params, (", " + encoded[1:] if len(encoded) > 2 else "}").encode())
        last_json = old.last_piece.encode()
        if not old.joined:
            return (b'{"messages": [', last_json, b"]", rest[1])
        return (b'{"messages": [', old.joined, b", " if last_json else b"", last_json, b"]", rest[1])
