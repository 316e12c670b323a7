"""Timings that used to be pass/fail assertions in the test suite (issue 28): the tests now check what these
paths compute, and this script prints how long they take (medians of 3), with the bound each test once had.

    PYTHONPATH=. python bench/suite_timings.py

- the forecast of 1,000 turns x 100 samples (was: < 5 s)
- the m003 step rescoring of 100 samples x 1,000 turns (was: < 10 s)
- SSE decoding of one 16 MB line in 16 KiB reads (was: < 2 s; quadratic re-joining took ~8 s)
- 64 concurrent streams against the fake server with 0.2 s latency (was: < 3 s; one after another: 12.8 s)
- the live run view's redraws a second with 32 streaming samples (was: 1..20; the flush timer is 10 Hz)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_of(fn: Callable[[], float], n: int = 3) -> float:
    return statistics.median(fn() for _ in range(n))


def forecast_1000x100() -> float:
    from lhe_tui.core.config import RunConfig
    from lhe_tui.analysis.estimate import forecast

    started = time.perf_counter()
    result = forecast(RunConfig(turns=1000, samples=100))
    took = time.perf_counter() - started
    assert result.requests == 100_000
    return took


def m003_rescoring() -> float:
    from lhe_tui.store.database import open_database
    from lhe_tui.store.schema import _rescore_steps
    from lhe_tui.testing.stores import insert_unscored_turns

    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "big.db")
        conn = db.conn
        insert_unscored_turns(conn)
        started = time.perf_counter()
        with conn:
            _rescore_steps(db.utils)
        took = time.perf_counter() - started
        conn.close()
    return took


def sse_16mb_line() -> float:
    from lhe_tui.providers.openai_http import SSEDecoder

    line = b"data: " + b"x" * (16 << 20) + b"\n\n"
    decoder = SSEDecoder()
    started = time.perf_counter()
    events = [e for i in range(0, len(line), 16384) for e in decoder.feed(line[i:i + 16384])]
    took = time.perf_counter() - started
    assert len(events) == 1
    return took


def streams_64() -> float:
    import anthropic
    import openai

    from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply

    async def go(srv) -> float:
        async with (openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="sk-test", max_retries=0) as oc,
                    anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="sk-test", max_retries=0) as ac):
            async def one(i: int) -> str:
                msgs = [{"role": "user", "content": str(i)}]
                if i % 2:
                    stream = await oc.chat.completions.create(model="m", messages=msgs, stream=True)
                    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                async with ac.messages.stream(model="m", max_tokens=9, messages=msgs) as s:
                    return "".join([t async for t in s.text_stream])

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(64)))
            return time.perf_counter() - started

    with FakeLLMServer(lambda b: ScriptedReply(text=f"<answer>{b['messages'][0]['content']}</answer>"),
                       latency=0.2, chunk_delay=0.01) as srv:
        return asyncio.run(go(srv))


def redraw_rate() -> float:
    from lhe_tui.core.config import RunConfig
    from lhe_tui.ui.app import LheApp, start_live_run

    async def go(db_path: Path) -> float:
        live = start_live_run(RunConfig(samples=32, turns=100, seed=0, sim_delay=0.002, mode="thinking",
                                        concurrency=32), db_path)
        app = LheApp(db_path, live=live)
        async with app.run_test(size=(160, 48)) as pilot:
            screen = app.screen
            while getattr(getattr(screen, "model", None), "turns_done", 0) == 0:
                await pilot.pause(0.05)
                screen = app.screen
            start, redraws = time.monotonic(), screen.redraws
            await pilot.pause(1.5)
            rate = (screen.redraws - redraws) / (time.monotonic() - start)
            await pilot.press("x")
            await app.workers.wait_for_complete()
        return rate

    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(go(Path(folder) / "lhe.db"))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(f"python {sys.version.split()[0]}, medians of 3")
    print(f"forecast of 1,000 turns x 100 samples: {median_of(forecast_1000x100):.2f} s (was bound: < 5 s)")
    print(f"m003 rescoring of 100 x 1,000 turns: {median_of(m003_rescoring):.2f} s (was bound: < 10 s)")
    print(f"SSE decoding of a 16 MB line: {median_of(sse_16mb_line):.2f} s (was bound: < 2 s)")
    print(f"64 concurrent streams, 0.2 s latency: {median_of(streams_64):.2f} s (was bound: < 3 s)")
    print(f"live run view, 32 streaming samples: {median_of(redraw_rate):.1f} redraws/s (was bound: 1..20)")


if __name__ == "__main__":
    main()
