"""OpenAI Chat Completions (and any OpenAI-compatible server: vLLM, OpenRouter, Ollama, llama.cpp), streaming."""

from __future__ import annotations

import asyncio
import os

from typing import TYPE_CHECKING

from lhe_tui.core.urls import split_query
from lhe_tui.common.errors import ConfigError
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, ReplyTooLarge, RequestMeta
from lhe_tui.providers.failures import RequestDeadline, translated_errors
from lhe_tui.providers.line_cap import line_cap_hook, max_line_bytes
from lhe_tui.providers.openai_http import OPENAI_API, DirectChatClient, proxy_for
from lhe_tui.providers.openai_stream import BodyEncoder, ChunkReader

if TYPE_CHECKING:
    import openai

# With the SDK client, samples share out over this many SDK clients (one connection pool each, made as
# needed): httpx's pool scans all of its connections twice per request, so one pool for 64 concurrent
# streams costs O(samples) CPU per request (~0.5 ms of ~5 at 64 samples here; docs/benchmarks.md).
POOL_SHARDS = 8
CLIENT_ENV = "LHE_TUI_OPENAI_CLIENT"
CLIENTS = ("direct", "sdk")


class OpenAIChatProvider(Provider):
    name = "openai"

    def __init__(self, model: str, settings: GenerationSettings, *, api_key: str, base_url: str | None = None,
                 client: str | None = None) -> None:
        """`client`: "direct" (openai_http, the default) or "sdk"; else $LHE_TUI_OPENAI_CLIENT. The SDK is
        also the client when a proxy is set for the server's URL (httpx speaks to proxies; `http1` does not)."""
        super().__init__(model, settings)
        self.base_url = base_url
        self._api_key = self.api_key = api_key
        self.client_kind = client or os.environ.get(CLIENT_ENV) or "direct"
        if self.client_kind not in CLIENTS:
            raise ConfigError(f"{CLIENT_ENV}={self.client_kind!r}: use one of {', '.join(CLIENTS)}")
        if self.client_kind == "direct" and proxy_for(base_url or OPENAI_API):
            self.client_kind = "sdk"
        self._clients: list[openai.AsyncOpenAI] = []  # SDK: shard i serves samples i modulo POOL_SHARDS
        self._http: DirectChatClient | None = None
        self._bodies = BodyEncoder()
        # The settings are frozen: the same fields for every request, built (and, by the direct client's
        # BodyEncoder, JSON-encoded) once. The SDK gets the extra ones as its extra_body (`extra_json`).
        self._fields = self.body_fields()
        self._standard = self.standard_fields()
        # Redirects are not followed (the SDK's default would re-send the prompt to wherever it points):
        # a 3xx is an error naming the target, as on the direct client.
        self._sdk_options: dict[str, object] = {"security": {"bearer_auth": True}, "follow_redirects": False}
        if settings.extra_fields():
            self._sdk_options["extra_json"] = settings.extra_fields()
        if self.client_kind == "sdk":
            self._clients.append(self._new_client())
        else:
            # An SSE line longer than any the capped reply could need (4 bytes a character, JSON escapes
            # and all) ends the reading too: an endless line must not grow without bound.
            self._http = DirectChatClient(api_key=api_key, base_url=base_url, timeout=settings.timeout,
                                          max_line=max_line_bytes(settings.max_reply_chars))

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client of shard 0 (made on first use when the direct client is the one sending)."""
        return self.client_for(0)

    def _new_client(self) -> openai.AsyncOpenAI:
        import openai  # only here: the SDK is imported (~0.5 s) only when it is the client

        # Retries are ours (counted per turn and shown), so the SDK's own are off. The hook caps the length
        # of a line of the response, as the direct client's SSE decoder does: an endless event line must
        # not grow the SDK's buffer without bound.
        http_client = openai.DefaultAsyncHttpxClient(
            event_hooks={"response": [line_cap_hook(max_line_bytes(self.settings.max_reply_chars))]})
        base_url, query = split_query(self.base_url)   # a query string goes on every request, as given
        return openai.AsyncOpenAI(api_key=self._api_key, base_url=base_url, max_retries=0, default_query=query,
                                  timeout=self.settings.timeout, http_client=http_client)

    def client_for(self, sample: int) -> openai.AsyncOpenAI:
        shard = sample % POOL_SHARDS
        while len(self._clients) <= shard:
            self._clients.append(self._new_client())
        return self._clients[shard]

    def request_params(self, messages: list[Message]) -> dict[str, object]:
        """The keyword arguments of `chat.completions.create(**request_params(messages))` for this request:
        the standard fields, and the others (--enable-thinking, --extra-body) as the SDK's `extra_body`."""
        params: dict[str, object] = {"messages": messages, **self.standard_fields()}
        extra = self.settings.extra_fields()
        if extra:
            params["extra_body"] = extra
        return params

    def body_fields(self) -> dict[str, object]:
        """Every body field but the messages, as sent: the standard ones, then the extra ones merged over
        them (an --extra-body key that names a standard field replaces it, as the SDK's extra_body does)."""
        return {**self.standard_fields(), **self.settings.extra_fields()}

    def standard_fields(self) -> dict[str, object]:
        """The Chat Completions fields lhe-tui sets itself."""
        s = self.settings
        params: dict[str, object] = {"model": self.model, "stream": True, "stream_options": {"include_usage": True}}
        if s.temperature is not None:
            params["temperature"] = s.temperature
        if s.top_p is not None:
            params["top_p"] = s.top_p
        if s.max_tokens is not None:
            params["max_completion_tokens" if self.base_url is None else "max_tokens"] = s.max_tokens
        if s.mode == "thinking" and self.base_url is None:
            params["reasoning_effort"] = s.reasoning_effort
        return params

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader = ChunkReader("openai", on_delta, self.settings.max_reply_chars)
        try:
            async with RequestDeadline(self.name, self.settings.deadline):
                if self._http is not None:
                    body = self._bodies.pieces(meta.sample_index, messages, self._fields)
                    await self._http.send(body, reader.feed_batch)
                else:
                    await self._sdk_chunks(messages, meta, reader)
        except ReplyTooLarge as exc:  # the connection is closed: the rest is not read
            return reader.cut_reply(str(exc), loop.time() - started)
        return reader.reply(loop.time() - started)

    async def _sdk_chunks(self, messages: list[Message], meta: RequestMeta, reader: ChunkReader) -> None:
        import openai
        from openai.types.chat import ChatCompletion

        with translated_errors("openai", openai, openai.OpenAIError, self.base_url):
            # The SDK's own `post`, not `chat.completions.create()`: create() first walks every message
            # through the SDK's TypedDict params transform (~0.3 ms of event-loop CPU per message, 0.5 s
            # at 2,000 messages; it changes nothing for plain string messages). Same request, headers,
            # auth, timeout and error mapping otherwise (docs/benchmarks.md, bottleneck 1). The chunks
            # come as the SDK's parsed JSON dicts (AsyncStream[object]) rather than ChatCompletionChunk
            # models, which cost ~3 ms of CPU per reply of six chunks.
            client = self.client_for(meta.sample_index)
            # The extra fields go in the options' `extra_json`, where create(extra_body=...) puts them.
            stream = await client.post("/chat/completions", body={"messages": messages, **self._standard},
                                       cast_to=ChatCompletion, options=self._sdk_options, stream=True,
                                       stream_cls=openai.AsyncStream[object])  # chunks as parsed JSON
            async with stream:  # closes the response if the loop is left early (cancelled, on_delta raised)
                async for chunk in stream:
                    reader.feed(chunk)
                    reader.flush_deltas()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()
        if self._http is not None:
            await self._http.aclose()
