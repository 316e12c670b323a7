"""The chat provider for our own llama.cpp server, and how a RunConfig gets that server and its provider."""

from __future__ import annotations

import asyncio
import dataclasses

from lhe_tui.common.errors import ProviderError
from lhe_tui.core.config import RunConfig
from lhe_tui.providers.base import GenerationSettings, Message, OnDelta, Reply, RequestMeta
from lhe_tui.providers.failures import RequestDeadline, translated_errors
from lhe_tui.providers.local_server import LocalModelServer
from lhe_tui.providers.local_server_death import ServerRef
from lhe_tui.providers.openai_chat import OpenAIChatProvider
from lhe_tui.providers.openai_stream import usage_counts
from lhe_tui.providers.reasoning import ThinkSplitter


class StickySlot:
    """One request in flight, handed to the same sample again when it comes back within `grace` seconds.

    llama.cpp keeps one evaluated context and reuses its longest common prefix with the next prompt.
    Samples taking turns (FIFO) would re-evaluate each sample's diverging history on every request
    (measured: 4 samples x 20 turns ran at 15 turns/min, 50 with a saved-state cache); running one
    sample's turns back to back only ever evaluates each turn's new tokens, and a switch to the next
    sample re-uses the shared system prompt. Samples therefore advance one after another here.
    """

    def __init__(self, grace: float = 0.25) -> None:
        self.grace = grace
        self._lock = asyncio.Lock()
        self._owner: int | None = None
        self._pending_release: asyncio.TimerHandle | None = None

    async def acquire(self, owner: int) -> None:
        if self._pending_release is not None and self._owner == owner:
            self._pending_release.cancel()  # still held for this sample: go on at once
            self._pending_release = None
            return
        await self._lock.acquire()
        self._owner = owner

    def release(self, *, keep_for_owner: bool) -> None:
        if keep_for_owner and self.grace > 0:
            self._pending_release = asyncio.get_running_loop().call_later(self.grace, self._release_now)
        else:
            self._release_now()

    def _release_now(self) -> None:
        if self._pending_release is not None:
            self._pending_release.cancel()
            self._pending_release = None
        self._owner = None
        if self._lock.locked():
            self._lock.release()


class LocalChatProvider(OpenAIChatProvider):
    """The OpenAI Chat provider against our llama.cpp server.

    llama-cpp-python's server puts no `usage` into streamed replies, so when nobody consumes the deltas
    (`on_delta is None`, the headless path) the request is not streamed and the token counts are the
    server's own. With `on_delta` the reply streams as usual (token counts then stay unknown).

    The server computes one reply at a time, so requests wait here for a `StickySlot`: the per-request
    timeout (and the stored latency) then measure the server's work, not the wait behind other samples
    (with 8 samples the wait alone outgrew 120 s), and a timed-out request cannot keep the server busy
    behind the others' backs. `sticky=False` hands the slot round in arrival order instead (needed when
    the runner's --concurrency is below the number of samples: a sample whose next request is held up
    by the runner could not come back for its slot).
    """

    name = "local"

    def __init__(self, model: str, settings: GenerationSettings, *, base_url: str, sticky: bool = True,
                 server: LocalModelServer | ServerRef | None = None) -> None:
        super().__init__(model, settings, api_key="no-key-needed", base_url=base_url)
        self.slot = StickySlot(grace=0.25 if sticky else 0.0)
        self.server = server   # when it is ours and in this process: a failure is checked against its death

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        await self.slot.acquire(meta.sample_index)
        ok = False
        try:
            reply = await self._complete(messages, meta, on_delta)
            ok = True
            return reply
        except ProviderError as exc:
            # A stream cut (or a connection refused) by our server's death is not worth a retry, nor the
            # end of one sample only: say how it died, and the run ends.
            server = self.server
            if exc.status is None and server is not None and await asyncio.to_thread(server.died, 0.25):
                raise ProviderError(server.death_message(), fatal=True) from exc
            raise
        finally:
            # After a failure the others go first (the retry waits its turn); after a reply this
            # sample's next turn may follow straight on.
            self.slot.release(keep_for_owner=ok)

    async def _complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None) -> Reply:
        if on_delta is not None:
            return await super().complete(messages, meta, on_delta)
        loop = asyncio.get_running_loop()
        started = loop.time()
        params = self.request_params(messages)
        params.pop("stream_options", None)
        params["stream"] = False
        import openai  # the SDK only here (headless non-streamed replies): importing it costs ~0.5 s

        async with RequestDeadline("local", self.settings.deadline):
            with translated_errors("local", openai, openai.OpenAIError, self.base_url):
                response = await self.client.chat.completions.create(**params)  # type: ignore[call-overload]
        if not response.choices:
            raise ProviderError("local: the server returned no choices", transient=True)
        choice = response.choices[0]
        splitter = ThinkSplitter()
        splitter.feed(choice.message.content or "")
        splitter.flush()
        usage = response.usage
        return Reply(text="".join(splitter.text), reasoning="".join(splitter.reasoning),
                     latency_s=loop.time() - started, finish_reason=choice.finish_reason,
                     **usage_counts(usage.model_dump() if usage is not None else None))


def make_local_provider(config: RunConfig, base_url: str,
                        server: LocalModelServer | ServerRef | None = None) -> LocalChatProvider:
    """The provider for our own server at `base_url`, serving the model `config.model` (its served name:
    see `local_config`); `server`: that server (or, from another process, a reference to it)."""
    from lhe_tui.providers.factory import generation_settings

    return LocalChatProvider(config.model, generation_settings(config), base_url=base_url,
                             sticky=config.concurrency >= config.samples, server=server)


def server_for(config: RunConfig) -> LocalModelServer:
    """The server a RunConfig asks for (its --model-path, and --model as the served name if given)."""
    return LocalModelServer(config.model_path, model_name=config.model or None)


def local_config(config: RunConfig, server: LocalModelServer) -> RunConfig:
    """The config as stored with the session: the served model's name and the GGUF it came from."""
    return dataclasses.replace(config, model=server.model_name,
                               model_path=str(server.model_path) if server.model_path else config.model_path)


def prepare_own_server(config: RunConfig) -> tuple[LocalModelServer | None, RunConfig, LocalChatProvider | None]:
    """For `--provider local` without `--base-url`: the server (resolved, not started), the config as
    stored, and the provider that talks to it; a missing extra or GGUF fails here, before anything
    starts. For any other config: (None, config, None), and the usual provider is made from the config."""
    if config.provider != "local" or config.base_url:
        return None, config, None
    server = server_for(config).resolve()
    run_config = local_config(config, server)
    return server, run_config, make_local_provider(run_config, server.base_url, server)
