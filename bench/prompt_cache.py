"""Prompt caching (issue 17): the input bill of one Anthropic run with and without cache breakpoints.

One sample of 100 turns x K=1 (direct mode, the default prompt) runs through the real path (`prepare_run`:
Runner, SessionWriter on a throw-away store, lhe_tui's AnthropicProvider over the real anthropic SDK) against
FakeLLMServer(anthropic_cache=True), which bills each request like Anthropic's prompt cache
(lhe_tui.testing.fake_llm_server.AnthropicPromptCache: prefixes looked up at the breakpoints with a 20-block
lookback, nothing cached under the 1,024-token minimum; tokens approximated as characters / 4 per block). The fake model answers correctly (the running
sum), so the history is what a good model's run sends.

    billed input = input_tokens + 1.25 x cache_creation_input_tokens + 0.1 x cache_read_input_tokens

(Anthropic's multipliers for 5-minute cache writes and for cache reads, relative to the base input price.)
Printed per variant: the tokens summed over the run's requests, the billed input, and its ratio to the run
with --no-cache, and the first turn whose request read from the cache. Two more variants show what breaks the prefix: --window 10
(the history shifts every turn: only the system prompt stays cached) and --inject-at 50 (one rewrite).

    python bench/prompt_cache.py [--turns 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lhe_tui.core.config import Injection, RunConfig  # noqa: E402
from lhe_tui.runs.session import prepare_run  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.task.prompts import parse_dictionary  # noqa: E402
from lhe_tui.testing.fake_llm_server import FakeLLMServer, ScriptedReply, content_text  # noqa: E402

WRITE, READ = 1.25, 0.1


def summing(body: dict) -> ScriptedReply:
    values = parse_dictionary(content_text(body.get("system"))) or {}
    total = sum(values.get(k.strip(), 0) for m in body["messages"] if m["role"] == "user"
                for k in content_text(m["content"]).split(","))
    return ScriptedReply(text=f"<answer>{total}</answer>")


def billed(usage: dict) -> float:
    return (usage["input_tokens"] + WRITE * usage["cache_creation_input_tokens"]
            + READ * usage["cache_read_input_tokens"])


def run(config: RunConfig, folder: Path) -> dict[str, float]:
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-bench")
    with FakeLLMServer(summing, anthropic_cache=True) as server:
        config = replace(config, base_url=server.anthropic_base_url).validate()
        db = open_database(folder / f"{len(list(folder.iterdir()))}.db")
        prepared = prepare_run(config, db, stream_deltas=False)

        status = asyncio.run(prepared.run())
        db.close()
        usages = [r.usage for r in server.requests if r.path == "/v1/messages" and r.usage is not None]
    if status != "finished" or len(usages) != config.turns * config.samples:
        raise SystemExit(f"the run ended {status} after {len(usages)} requests")
    sums = {key: float(sum(u[key] for u in usages))
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
    sums["billed"] = sum(billed(u) for u in usages)
    sums["first_read"] = next((n + 1 for n, u in enumerate(usages) if u["cache_read_input_tokens"]), 0)
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    base = RunConfig(provider="anthropic", model="claude-fake", turns=args.turns, samples=1, k=1, seed=0)
    variants = [
        ("cache off (--no-cache)", replace(base, prompt_cache=False)),
        ("cache on", base),
        ("cache on, --window 10", replace(base, window=10)),
        ("cache on, --inject-at 50", replace(base, inject_at=(Injection(min(50, args.turns - 1)),))),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        results = [(name, run(config, Path(tmp))) for name, config in variants]
    off = results[0][1]["billed"]
    print(f"{args.turns} turns x K=1, 1 sample, tokens = characters/4; billed = input + {WRITE} x writes + "
          f"{READ} x reads")
    print(f"{'variant':26} {'input':>9} {'writes':>9} {'reads':>10} {'billed':>10} {'ratio':>6} {'1st read':>8}")
    for name, r in results:
        first = f"{r['first_read']:8.0f}" if r["first_read"] else f"{'-':>8}"
        print(f"{name:26} {r['input_tokens']:9.0f} {r['cache_creation_input_tokens']:9.0f} "
              f"{r['cache_read_input_tokens']:10.0f} {r['billed']:10.0f} {r['billed'] / off:6.3f} {first}")


if __name__ == "__main__":
    main()
