"""OpenAI Chat Completions (and any OpenAI-compatible server: vLLM, OpenRouter, Ollama, llama.cpp), streaming."""

from __future__ import annotations

import asyncio

import openai
from openai.types.chat import ChatCompletion

from lhe_tui.errors import ProviderError
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta
from lhe_tui.providers.failures import translated_errors
from lhe_tui.providers.reasoning import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")
_STREAM_CLS = openai.AsyncStream[object]  # chunks as parsed JSON; see complete()
# Samples share out over this many SDK clients (one connection pool each, created as needed): httpx's
# pool scans all of its connections twice per request, so one pool for 64 concurrent streams costs
# O(samples) CPU per request (~0.5 ms of ~5 at 64 samples here; docs/benchmarks.md).
POOL_SHARDS = 8


def _count(usage: object, field: str) -> int | None:
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


class OpenAIChatProvider(Provider):
    name = "openai"

    def __init__(self, model: str, settings: GenerationSettings, *, api_key: str, base_url: str | None = None) -> None:
        super().__init__(model, settings)
        self.base_url = base_url
        self._api_key = api_key
        self.client = self._new_client()
        self._clients = [self.client]  # shard i serves the samples whose index is i modulo POOL_SHARDS

    def _new_client(self) -> openai.AsyncOpenAI:
        # Retries are ours (counted per turn and shown), so the SDK's own are off.
        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                  timeout=self.settings.timeout)

    def client_for(self, sample: int) -> openai.AsyncOpenAI:
        shard = sample % POOL_SHARDS
        while len(self._clients) <= shard:
            self._clients.append(self._new_client())
        return self._clients[shard]

    def request_params(self, messages: list[Message]) -> dict[str, object]:
        s = self.settings
        params: dict[str, object] = {"model": self.model, "messages": messages, "stream": True,
                                     "stream_options": {"include_usage": True}}
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
        splitter = ThinkSplitter()
        native_reasoning: list[str] = []
        usage = None
        finish_reason = None
        with translated_errors("openai", openai, openai.OpenAIError):
            # The SDK's own `post`, not `chat.completions.create()`: create() first walks every message
            # through the SDK's TypedDict params transform (~0.3 ms of event-loop CPU per message, 0.5 s
            # at 2,000 messages; it changes nothing for plain string messages). Same request, headers,
            # auth, timeout and error mapping otherwise (docs/benchmarks.md, bottleneck 1). The chunks
            # come as the SDK's parsed JSON dicts (AsyncStream[object]) rather than ChatCompletionChunk
            # models, which cost ~3 ms of CPU per reply of six chunks; the loop reads four fields.
            client = self.client_for(meta.sample_index)
            stream = await client.post("/chat/completions", body=self.request_params(messages), cast_to=ChatCompletion,
                                       options={"security": {"bearer_auth": True}}, stream=True, stream_cls=_STREAM_CLS)
            async with stream:  # closes the response if the loop is left early (cancelled, on_delta raised)
                async for chunk in stream:
                    if not isinstance(chunk, dict):
                        continue
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        reasoning = next((delta[f] for f in _REASONING_FIELDS if isinstance(delta.get(f), str)), None)
                        if reasoning:
                            native_reasoning.append(reasoning)
                            if on_delta:
                                on_delta("reasoning", reasoning)
                        content = delta.get("content")
                        if content and isinstance(content, str):
                            splitter.feed_to(content, on_delta)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
        splitter.flush_to(on_delta)
        if finish_reason is None:
            raise ProviderError("openai: stream ended before the reply was complete", transient=True)
        return Reply(text="".join(splitter.text), reasoning="".join(native_reasoning) + "".join(splitter.reasoning),
                     tokens_in=_count(usage, "prompt_tokens"), tokens_out=_count(usage, "completion_tokens"),
                     latency_s=loop.time() - started, finish_reason=finish_reason)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()
