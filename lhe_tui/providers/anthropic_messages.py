"""Anthropic Messages API, streaming; extended thinking in `thinking` mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anthropic

from lhe_tui.core.urls import split_query
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, ReplyTooLarge, RequestMeta
from lhe_tui.providers.failures import RequestDeadline, translated_errors
from lhe_tui.providers.line_cap import line_cap_hook, max_line_bytes
from lhe_tui.providers.openai_stream import BodyEncoder
from lhe_tui.providers.reasoning import ThinkSplitter

DEFAULT_MAX_TOKENS = 1024
EPHEMERAL = {"type": "ephemeral"}
"""Anthropic's cache_control value (5-minute cache). A request carries at most 4 breakpoints; lhe-tui sets 2:
the system prompt (the prefix every turn and every sample of a run shares; what a sliding window still
keeps) and the last message (the growing history: the next turn's request finds this prefix again within
Anthropic's 20-block lookback, since a turn adds 2 blocks). See docs/prompt-caching.md."""


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, model: str, settings: GenerationSettings, *, api_key: str, base_url: str | None = None) -> None:
        super().__init__(model, settings)
        self.base_url = base_url
        self.api_key = api_key
        # Redirects are not followed (a 3xx is an error naming the target), as with the OpenAI clients; an
        # event line longer than the capped reply could need ends the reading, as on the OpenAI paths.
        http_client = anthropic.DefaultAsyncHttpxClient(
            follow_redirects=False,
            event_hooks={"response": [line_cap_hook(max_line_bytes(settings.max_reply_chars))]})
        sdk_url, query = split_query(base_url)   # a query string goes on every request, as given
        self.client = anthropic.AsyncAnthropic(api_key=api_key, base_url=sdk_url, max_retries=0, default_query=query,
                                               timeout=settings.timeout, http_client=http_client)
        self._system_key: str | None = None
        self._system_blocks: list[dict[str, object]] = []
        # The request body, each history message JSON-encoded once per sample (the SDK's messages.create()
        # copies the whole params tree in Python and encodes it again every request: ~30 ms of CPU per
        # request at 10,000 turns; docs/benchmarks.md, issue 26).
        self._bodies = BodyEncoder()
        self._scanned: dict[int, tuple[Message, int]] = {}  # see _runners_shape

    def _system(self, text: str) -> str | list[dict[str, object]]:
        """The system prompt, as one cached text block (built once per distinct prompt, not once a turn)."""
        if not self.settings.prompt_cache or not text:
            return text
        if text != self._system_key:
            self._system_key, self._system_blocks = text, [{"type": "text", "text": text, "cache_control": EPHEMERAL}]
        return self._system_blocks

    def request_params(self, messages: list[Message]) -> dict[str, object]:
        """The keyword arguments of `messages.create(**request_params(messages))` for this request."""
        if self._runners_shape(None, messages):
            # Its {"role", "content"} dicts are sent as they are (a slice, no copies).
            system, chat = messages[0]["content"], messages[1:]
        else:
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            chat = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        if chat and (last := self._with_breakpoint(chat[-1])) is not None:
            chat[-1] = last
        params: dict[str, object] = {"messages": chat, **self._standard_fields(system)}
        if extra := self._extra_fields():
            params["extra_body"] = extra
        return params

    def _extra_fields(self) -> dict[str, object]:
        """The body fields create() takes only as its extra_body: --extra-body (e.g. top_k) over the sampling
        ones (enable_thinking is refused for anthropic by RunConfig.validate)."""
        return {**self.sampling_fields(), **self.settings.extra_body}

    def _standard_fields(self, system: str) -> dict[str, object]:
        """The fields create() takes by name, but the messages."""
        s = self.settings
        max_tokens = s.max_tokens or DEFAULT_MAX_TOKENS
        fields: dict[str, object] = {"model": self.model, "system": self._system(system), "stream": True}
        if s.mode == "thinking":
            # Extended thinking needs max_tokens above the budget.
            fields["thinking"] = {"type": "enabled", "budget_tokens": s.thinking_budget}
            fields["max_tokens"] = max(max_tokens, s.thinking_budget + DEFAULT_MAX_TOKENS)
        else:
            fields["max_tokens"] = max_tokens
        return fields

    def _with_breakpoint(self, last: Message) -> dict[str, object] | None:
        """With the prompt cache, the last message as a content block with a breakpoint (a new dict: the
        caller's message is left as it is): it marks the growing prefix. None when it stays as it is."""
        if not self.settings.prompt_cache or not last["content"]:
            return None
        return {"role": last["role"],
                "content": [{"type": "text", "text": last["content"], "cache_control": EPHEMERAL}]}

    def sampling_fields(self) -> dict[str, object]:
        """temperature and top_p as set, in every mode. The SDK's create() (anthropic 2.x) takes neither, so
        they go in the body through its extra_body; a combination the model refuses (extended thinking with a
        temperature, temperature with top_p on current Claude models) is a one-line error naming the flag."""
        s = self.settings
        return {name: value for name, value in (("temperature", s.temperature), ("top_p", s.top_p))
                if value is not None}

    def request_body(self, sample: int, messages: list[Message]) -> bytes:
        """The JSON body of `messages.create(**request_params(messages))`: the extra fields (--extra-body) merged
        over the others, as the SDK's extra_body is. The sample's messages sent before are not encoded again,
        and in the runner's shape neither copied nor read again (see `_runners_shape`)."""
        if self._runners_shape(sample, messages):
            fields = self._standard_fields(messages[0]["content"])
            if extra := self._extra_fields():
                fields.update(extra)
            last = self._with_breakpoint(messages[-1]) if len(messages) > 1 else None
            return self._bodies.encode(sample, messages, fields, start=1, last=last)
        params = self.request_params(messages)
        chat = params.pop("messages")
        extra = params.pop("extra_body", None)
        return self._bodies.encode(sample, chat, {**params, **extra} if extra else params)  # type: ignore[arg-type]

    def _runners_shape(self, sample: int | None, messages: list[Message]) -> bool:
        """Whether the first message is a system one and no other is (the runner's shape). Between a
        sample's requests the runner's list only grows at its end (its last message may be replaced), so
        for a `sample` only what its requests have not shown before is read: told by identity of the last
        one read (a slid window or a rebuilt history has another object there), as BodyEncoder tells its
        prefix. Reading all 20,000 messages at 10,000 turns cost 0.7 ms a request, and touched every one."""
        if not messages or messages[0]["role"] != "system":
            return False
        start = 1
        seen = self._scanned.get(sample) if sample is not None else None
        if seen is not None:
            anchor, count = seen
            if count < len(messages) and messages[count - 1] is anchor:
                start = count
        if any(messages[i]["role"] == "system" for i in range(start, len(messages))):
            return False
        count = len(messages) - 1   # all but the last, which the runner may replace
        if count and sample is not None:
            self._scanned[sample] = (messages[count - 1], count)
        return True

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        loop = asyncio.get_running_loop()
        started = loop.time()
        splitter = ThinkSplitter()
        thinking: list[str] = []
        tokens_out = None
        usage_in: dict[str, int | None] = {}  # input_tokens, cache_read_input_tokens, cache_creation_input_tokens
        stop_reason = None
        size, cap = 0, self.settings.max_reply_chars
        cut_off = None
        try:
            async with RequestDeadline("anthropic", self.settings.deadline), self._refusals_named():
                with translated_errors("anthropic", anthropic, anthropic.AnthropicError, self.base_url):
                    # What messages.create(**request_params) sends (its own post, headers and error mapping),
                    # with the body encoded here.
                    stream = await self.client.post("/v1/messages", content=self.request_body(meta.sample_index, messages),
                                                    cast_to=anthropic.types.Message, stream=True,
                                                    stream_cls=anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent])
                    async with stream:  # closes the response if the loop is left early
                        async for event in stream:
                            if event.type == "message_start":
                                _input_usage(usage_in, event.message.usage)
                            elif event.type == "content_block_delta":
                                delta = event.delta
                                if delta.type == "text_delta":
                                    size += len(delta.text)
                                    if size > cap:
                                        raise ReplyTooLarge(f"the reply passed {cap:,} characters")
                                    splitter.feed_to(delta.text, on_delta)
                                elif delta.type == "thinking_delta":
                                    size += len(delta.thinking)
                                    if size > cap:
                                        raise ReplyTooLarge(f"the reply passed {cap:,} characters")
                                    thinking.append(delta.thinking)
                                    if on_delta:
                                        on_delta("reasoning", delta.thinking)
                            elif event.type == "message_delta":
                                tokens_out = event.usage.output_tokens
                                _input_usage(usage_in, event.usage)  # newer servers repeat (final) counts here
                                stop_reason = event.delta.stop_reason
                            elif event.type == "message_stop":
                                stop_reason = stop_reason or "end_turn"
        except ReplyTooLarge as exc:
            cut_off, stop_reason = str(exc), "cut_off"
            on_delta = None
        splitter.flush_to(on_delta)
        if stop_reason is None:
            raise ProviderError("anthropic: stream ended before the reply was complete", transient=True)
        return Reply(text="".join(splitter.text), reasoning="".join(thinking) + "".join(splitter.reasoning),
                     tokens_out=tokens_out, latency_s=loop.time() - started,
                     finish_reason=stop_reason, cut_off=cut_off, **_input_counts(usage_in))

    @asynccontextmanager
    async def _refusals_named(self) -> AsyncIterator[None]:
        """A 400 that refuses a sampling field we sent says which flag sets it (the server's message names the
        body field, which a user never typed)."""
        try:
            yield
        except ProviderError as exc:
            flags = [flag for name, flag in SAMPLING_FLAGS.items()
                     if name in self.sampling_fields() and f"{name}" in str(exc)]
            if exc.status != 400 or not flags:
                raise
            raise ProviderError(f"{exc} (sent for {' and '.join(flags)}: drop "
                                f"{' or '.join(flags)})", status=exc.status) from exc

    async def aclose(self) -> None:
        await self.client.close()


SAMPLING_FLAGS = {"temperature": "--temperature", "top_p": "--top-p"}
"""The body fields of `sampling_fields` and the flags that set them (--paper and --paper-settings fill them
when unset; an explicit value, or `--extra-body`, replaces theirs)."""


_INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _input_usage(into: dict[str, int | None], usage: object) -> None:
    """The input counts an event's `usage` carries (message_start's; message_delta's where the server sends them)."""
    for name in _INPUT_FIELDS:
        value = getattr(usage, name, None)
        if value is not None:   # believed or not by the runner (distrust_counts)
            into[name] = value


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _input_counts(usage: dict[str, int | None]) -> dict[str, int | None]:
    """Reply's input fields. Anthropic's `input_tokens` leaves out the cached input, so tokens_in is the sum of
    the three (all the input, as OpenAI's prompt_tokens); a count not reported stays None."""
    uncached = usage.get("input_tokens")
    read = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    bad = next((v for v in (uncached, read, written) if v is not None and not (_whole(v) and v >= 0)), None)
    if bad is not None:   # a part that is no count: the whole is none either (the runner says so)
        total = bad
    else:
        total = None if uncached is None else uncached + (read or 0) + (written or 0)
    return {"tokens_in": total, "tokens_cached": read, "tokens_cache_write": written}
