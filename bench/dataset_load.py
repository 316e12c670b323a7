"""Loading a paper-sized --dataset (issue 22 §4): time and peak memory of `load_dataset` on a ~250 MB file.

The file is the reference's shape (`{"dictionary": {...}, "ground_truth_data": [{"input", "values",
"output"}, ...]}`, indented by 2 as its generate_dataset_json.py writes it): 100 rows of 50,000 keys from
lhe_tui.task.paper_data's generator. It is written once at --file and reused. Each measurement runs in a
fresh child process (its peak RSS is the child's own): the interpreter with lhe_tui imported, then
`dataset_turns` (what the CLI asks when --turns is unset) and `load_dataset` of --samples x --turns at K=1.

    python bench/dataset_load.py --file /tmp/paper_250mb.json
    python bench/dataset_load.py --file /tmp/paper_250mb.json --samples 10 --offset 90
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import resource, sys, time
from lhe_tui.task.dataset import dataset_turns, load_dataset
path, samples, turns, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
default_turns = dataset_turns(path, samples, 1, offset)
t1 = time.perf_counter()
task = load_dataset(path, samples, turns, 1, offset)
t2 = time.perf_counter()
assert len(task.samples) == samples and all(len(s.keys) == turns for s in task.samples)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {base / 1024:.0f} {peak / 1024:.0f} {default_turns}")
"""


def write_paper_file(path: Path) -> None:
    from lhe_tui.task.paper_data import PAPER_KEYS_PER_ROW, PAPER_ROWS, paper_dictionary, paper_rows

    dictionary = paper_dictionary()
    with open(path, "w", encoding="utf-8") as f:
        f.write('{\n  "dictionary": ' + json.dumps(dictionary, indent=2).replace("\n", "\n  ")
                + ',\n  "ground_truth_data": [\n')
        for i, keys in enumerate(paper_rows(PAPER_ROWS, PAPER_KEYS_PER_ROW)):
            values = [dictionary[key] for key in keys]
            sums, running = [], 0
            for value in values:
                running += value
                sums.append(running)
            row = json.dumps({"input": keys, "values": values, "output": sums}, indent=2)
            f.write(("    " if i == 0 else ",\n    ") + row.replace("\n", "\n    "))
        f.write("\n  ]\n}\n")


def measure(path: Path, samples: int, turns: int, offset: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(samples), str(turns), str(offset)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if done.returncode:
        return f"failed: {done.stderr.strip().splitlines()[-1]}"
    turns_s, load_s, base_mb, peak_mb, default_turns = done.stdout.split()
    return (f"dataset_turns {turns_s} s (-> {default_turns}), load_dataset {load_s} s, peak RSS {peak_mb} MB "
            f"({base_mb} MB before loading), {wall:.2f} s wall in all, load {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, required=True, help="the paper-sized file (written if not there)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.file.exists():
        t0 = time.perf_counter()
        write_paper_file(args.file)
        print(f"wrote {args.file} in {time.perf_counter() - t0:.0f} s")
    print(f"{args.file}: {args.file.stat().st_size / 2**20:.0f} MB; {args.samples} samples x {args.turns} turns "
          f"from row {args.offset}, K=1")
    for _ in range(args.repeats):
        print("  " + measure(args.file, args.samples, args.turns, args.offset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
