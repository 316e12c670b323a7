"""Client CPU of one streamed chat request, by client path (backs docs/benchmarks.md, bottlenecks 1-2).

Against a zero-latency FakeLLMServer in a child process, the fixed reply `<answer>0</answer>`, this
process's CPU time per request (median of batches) for a history of H turns (2H+2 messages):

  provider        lhe_tui's OpenAIChatProvider.complete (openai SDK `chat.completions.create`)
  provider-notx   the same with the SDK's params transform replaced by the identity (diagnostic)
  sdk-post        the SDK's low-level `client.post(..., stream=True)`: no params transform
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


async def per_request(fn, n: int) -> float:
    for _ in range(3):
        await fn()
    times = []
    for _ in range(n):
        c0 = cpu()
        await fn()
        times.append(cpu() - c0)
    return statistics.median(times)


async def measure(url: str, history: list[int], n: int) -> None:
    import httpx2
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    import overhead
    from lhe_tui.providers.openai_chat import OpenAIChatProvider

    provider = OpenAIChatProvider("fake-model", GenerationSettings(), api_key="sk-bench-dummy", base_url=url)
    http = httpx2.AsyncClient()
    rows = []
    try:
        for h in history:
            messages = history_messages(h + 1)
            params = provider.request_params(messages)

            async def via_provider() -> None:
                await provider.complete(messages, RequestMeta(0, h + 1), lambda kind, text: None)

            async def via_post() -> None:
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
            row["sdk-post"] = await per_request(via_post, n)
            row["httpx2"] = await per_request(via_httpx2, n)
            rows.append((h, len(messages), row))
        overhead.bypass_sdk_transform()  # from here on, for the rest of the process
        for h, _, row in rows:
            messages = history_messages(h + 1)

            async def via_provider_notx() -> None:
                await provider.complete(messages, RequestMeta(0, h + 1), lambda kind, text: None)

            row["provider-notx"] = await per_request(via_provider_notx, n)
    finally:
        await provider.aclose()
        await http.aclose()
    print(f"client CPU per streamed request, median of {n} (milliseconds)")
    names = ("provider", "provider-notx", "sdk-post", "httpx2")
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
