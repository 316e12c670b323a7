"""Client CPU of one streamed chat request, by client path (backs docs/benchmarks.md, bottlenecks 1-2).

Against a zero-latency FakeLLMServer in a child process, the fixed reply `<answer>0</answer>`, this
process's CPU time per request (median of batches) for a history of H turns (2H+2 messages):

  provider        lhe_tui's OpenAIChatProvider.complete with its default client: a pre-encoded body over
                  lhe_tui.providers.http1, the SSE stream read by openai_http (no SDK)
  provider-sdk    the same provider with LHE_TUI_OPENAI_CLIENT=sdk: the SDK's `client.post(..., stream=True)`
                  with chunks as parsed JSON dicts (AsyncStream[object])
  create          the SDK's `chat.completions.create(stream=True)`, typed chunks (the provider's path
                  before issue 6's fixes: params transform + ChatCompletionChunk models)
  create-notx     the same with the SDK's params transform replaced by the identity (diagnostic)
  post-typed      `client.post(..., stream=True)` with ChatCompletionChunk models (no transform)
  httpx2          a bare httpx2 stream + json.loads per SSE line (the floor for a Python client)

    python bench/request_cpu.py                     # H = 0 and 1000, 30 requests each
    python bench/request_cpu.py --history 0 100 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_server import FakeServerProcess  # noqa: E402
from per_turn_cost import history_messages  # noqa: E402

from lhe_tui.providers.base import GenerationSettings, RequestMeta  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def per_request(fn, n: int, rounds: int = 3) -> float:
    """Median over `rounds` of the mean CPU per request over n requests in a row (per-request timings
    are below the accounting's resolution for the cheap paths)."""
    for _ in range(3):
        await fn()
    means = []
    for _ in range(rounds):
        c0 = cpu()
        for _ in range(n):
            await fn()
        means.append((cpu() - c0) / n)
    return statistics.median(means)


async def measure(url: str, history: list[int], n: int) -> None:
    import httpx2
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    import overhead
    from lhe_tui.providers.openai_chat import OpenAIChatProvider

    provider = OpenAIChatProvider("fake-model", GenerationSettings(), api_key="sk-bench-dummy", base_url=url)
    sdk_provider = OpenAIChatProvider("fake-model", GenerationSettings(), api_key="sk-bench-dummy", base_url=url,
                                      client="sdk")
    http = httpx2.AsyncClient()
    rows = []
    try:
        for h in history:
            messages = history_messages(h + 1)
            params = provider.request_params(messages)

            async def via_provider() -> None:
                await provider.complete(messages, RequestMeta(0, h + 1), lambda kind, text: None)

            async def via_provider_sdk() -> None:
                await sdk_provider.complete(messages, RequestMeta(0, h + 1), lambda kind, text: None)

            async def via_create() -> None:
                stream = await provider.client.chat.completions.create(**params)
                async for _chunk in stream:
                    pass

            async def via_post_typed() -> None:
                stream = await provider.client.post("/chat/completions", body=params, cast_to=ChatCompletion,
                                                    stream=True, stream_cls=openai.AsyncStream[ChatCompletionChunk])
                async for _chunk in stream:
                    pass

            async def via_httpx2() -> None:
                async with http.stream("POST", url + "/chat/completions", json=params) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: {"):
                            json.loads(line[6:])

            row = {"provider": await per_request(via_provider, n)}
            row["provider-sdk"] = await per_request(via_provider_sdk, n)
            row["create"] = await per_request(via_create, n)
            row["post-typed"] = await per_request(via_post_typed, n)
            row["httpx2"] = await per_request(via_httpx2, n)
            rows.append((h, len(messages), row))
        overhead.bypass_sdk_transform()  # from here on, for the rest of the process
        for h, _, row in rows:
            params = provider.request_params(history_messages(h + 1))

            async def via_create_notx() -> None:
                stream = await provider.client.chat.completions.create(**params)
                async for _chunk in stream:
                    pass

            row["create-notx"] = await per_request(via_create_notx, n)
    finally:
        await provider.aclose()
        await sdk_provider.aclose()
        await http.aclose()
    print(f"client CPU per streamed request, median of 3 means over {n} requests (milliseconds)")
    names = ("provider", "provider-sdk", "create", "create-notx", "post-typed", "httpx2")
    print(f"{'history turns':>13}  {'messages':>8}  " + "  ".join(f"{name:>13}" for name in names))
    for h, m, row in rows:
        print(f"{h:>13}  {m:>8}  " + "  ".join(f"{row[name] * 1e3:>13.2f}" for name in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 1000], help="history turns before the request")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    with FakeServerProcess(0.0) as srv:
        asyncio.run(measure(srv.base_url, args.history, args.requests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
