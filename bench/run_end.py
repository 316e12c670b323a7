"""The end of a run (issue 26): what the store's writer does once the last turn is in, at any length.

At its end a run stores its session's summary (task accuracy at the last turn, H_0.5, mean turn accuracy)
and token totals beside the session. They used to be summed by reading every stored turn back (two reads
of the session's turns, on the run's event loop); the writer now tallies the turns as it stores them
(lhe_tui.store.tally: 2 bytes a turn) and sums from that. This bench fills a throw-away store through the
real SessionWriter with S samples x T turns (synthetic turns: random right and wrong answers, token
counts), then times, alternated, over `--repeats`:

    tally      session_summary(tally=...) + the tally's token totals      (what the end does now)
    read back  session_summary + session_token_totals from the store      (what it did before)

and the writer's whole RunFinished handler (the summary, the totals, the session's row, the last
checkpoint), once per store. Medians, in ms.

    python bench/run_end.py                                   # 64 x 1,000 and 64 x 10,000 turns
    python bench/run_end.py --samples 100 --turns 10000       # 1,000,000 turns (filling it takes ~2 min)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lhe_tui.core.events import RunFinished, RunStarted, SampleFinished, TurnFinished, TurnRecord  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.store.queries import session_token_totals  # noqa: E402
from lhe_tui.store.summary import session_summary  # noqa: E402
from lhe_tui.store.writer import SessionWriter  # noqa: E402


def fill(db, samples: int, turns: int, seed: int) -> SessionWriter:
    """A run's events through the writer, the samples' turns interleaved as concurrent samples finish them."""
    rng = random.Random(seed)
    writer = SessionWriter(db, "run")
    writer(RunStarted(session_id="run", config={"provider": "sim", "turns": turns, "k": 1},
                      dictionary={"apple": 1}, sample_keys=(("apple",),) * samples, provider_label="sim",
                      simulated=True))
    wrong_after = [rng.randint(1, turns) for _ in range(samples)]   # each sample goes wrong from some turn on
    for turn in range(1, turns + 1):
        for sample in range(samples):
            right = turn < wrong_after[sample] or rng.random() < 0.5
            answer = turn if right else -turn
            writer(TurnFinished(TurnRecord(
                sample=sample, turn=turn, keys=("apple",), key_values=(1,), turn_sum=1, gold_sum=turn,
                seen_previous=turn - 1, expected_step=turn, raw_reply=f"<answer>{answer}</answer>", reasoning="",
                answer_status="ok", model_answer=answer, correct=right, step_correct=right or rng.random() < 0.3,
                history_answer=answer, tokens_in=40 + 12 * turn, tokens_out=rng.randint(5, 30))))
    for sample in range(samples):
        writer(SampleFinished(sample=sample, status="finished"))
    return writer


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--turns", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"the end of a run: {args.samples} samples, turns {args.turns}, {args.repeats} repeats alternated; "
          f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    for turns in args.turns:
        with tempfile.TemporaryDirectory(prefix="lhe-bench-") as tmp:
            db = open_database(Path(tmp) / "end.db")
            started = time.perf_counter()
            writer = fill(db, args.samples, turns, seed=turns)
            filled = time.perf_counter() - started
            tally = writer.tally
            assert tally is not None and not tally.broken
            now, before = [], []
            for _ in range(args.repeats):
                now.append(timed(lambda: (session_summary(db, "run", tally=tally), tally.token_totals())))
                before.append(timed(lambda: (session_summary(db, "run"), session_token_totals(db, "run"))))
            if (session_summary(db, "run", tally=tally), tally.token_totals()) != \
                    (session_summary(db, "run"), session_token_totals(db, "run")):
                raise SystemExit("the tally's sums differ from the store's")
            handler = timed(lambda: writer(RunFinished(status="finished", wall_time_s=filled)))
            kept = sum(len(flags) for flags in tally.correct) + sum(len(flags) for flags in tally.update)
            n = args.samples * turns
            print(f"  {args.samples} x {turns:,} = {n:,} turns (stored in {filled:.1f} s): summary and totals "
                  f"from the tally {statistics.median(now):8.1f} ms, read back from the store "
                  f"{statistics.median(before):8.1f} ms ({statistics.median(before) / statistics.median(now):.0f}x); "
                  f"the writer's whole RunFinished {handler:.1f} ms; the tally keeps {kept / n:.0f} B a turn")
            db.conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
