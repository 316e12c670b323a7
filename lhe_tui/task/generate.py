"""Seeded generation of the dictionary and the key sequences (same seed, same task)."""

from __future__ import annotations

import random

from lhe_tui.common.errors import ConfigError
from lhe_tui.task.model import Sample, Task
from lhe_tui.task.words import load_words


def make_dictionary(seed: int, size: int = 100, min_value: int = -99, max_value: int = 99) -> dict[str, int]:
    words = load_words()
    if not 1 <= size <= len(words):
        raise ConfigError(f"--dict-size must be between 1 and {len(words)}, got {size}")
    if min_value > max_value:
        raise ConfigError(f"--min-value ({min_value}) is greater than --max-value ({max_value})")
    rng = random.Random(f"lhe-dict:{seed}")
    chosen = rng.sample(words, size)
    return {word: rng.randint(min_value, max_value) for word in chosen}


def make_samples(dictionary: dict[str, int], seed: int, n_samples: int, turns: int, k: int) -> tuple[Sample, ...]:
    words = list(dictionary)
    samples = []
    for index in range(n_samples):
        rng = random.Random(f"lhe-keys:{seed}:{index}")
        keys = tuple(rng.choices(words, k=turns * k))
        samples.append(Sample(index=index, keys=keys, values=tuple(dictionary[w] for w in keys), k=k))
    return tuple(samples)


def generate_task(seed: int, n_samples: int, turns: int, k: int = 1, dict_size: int = 100,
                  min_value: int = -99, max_value: int = 99) -> Task:
    for name, value in (("--samples", n_samples), ("--turns", turns), ("--k", k)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    dictionary = make_dictionary(seed, dict_size, min_value, max_value)
    return Task(dictionary=dictionary, samples=make_samples(dictionary, seed, n_samples, turns, k),
                k=k, turns=turns, source=f"generated(seed={seed})")
