"""OpenAI Chat Completions (and any OpenAI-compatible server: vLLM, OpenRouter, Ollama, llama.cpp), streaming."""

from __future__ import annotations

import asyncio

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lhe_tui.errors import ProviderError
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Provider, Reply, RequestMeta
from lhe_tui.providers.failures import translated_errors
from lhe_tui.providers.reasoning import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")
# What `chat.completions.create(stream=True)` passes to the client's `post`, minus its params transform.
_STREAM_CLS = openai.AsyncStream[ChatCompletionChunk]


class OpenAIChatProvider(Provider):
    name = "openai"

    def __init__(self, model: str, settings: GenerationSettings, *, api_key: str, base_url: str | None = None) -> None:
        super().__init__(model, settings)
        self.base_url = base_url
        # Retries are ours (counted per turn and shown), so the SDK's own are off.
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=settings.timeout)

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
            # auth, timeout, error mapping and chunk types otherwise (docs/benchmarks.md, bottleneck 1).
            stream = await self.client.post("/chat/completions", body=self.request_params(messages),
                                            cast_to=ChatCompletion, options={"security": {"bearer_auth": True}},
                                            stream=True, stream_cls=_STREAM_CLS)
            async with stream:  # closes the response if the loop is left early (cancelled, on_delta raised)
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta
                        extra = delta.model_extra or {}
                        reasoning = next((extra[f] for f in _REASONING_FIELDS if isinstance(extra.get(f), str)), None)
                        if reasoning:
                            native_reasoning.append(reasoning)
                            if on_delta:
                                on_delta("reasoning", reasoning)
                        if delta.content:
                            splitter.feed_to(delta.content, on_delta)
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
        splitter.flush_to(on_delta)
        if finish_reason is None:
            raise ProviderError("openai: stream ended before the reply was complete", transient=True)
        return Reply(text="".join(splitter.text), reasoning="".join(native_reasoning) + "".join(splitter.reasoning),
                     tokens_in=usage.prompt_tokens if usage else None,
                     tokens_out=usage.completion_tokens if usage else None,
                     latency_s=loop.time() - started, finish_reason=finish_reason)

    async def aclose(self) -> None:
        await self.client.close()
