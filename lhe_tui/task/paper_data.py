"""The paper's data without a download: the reference repository's dataset generator, reimplemented.

The reference (github.com/long-horizon-execution/measuring-execution, `generate_dataset_json.py`) builds its
dict-sum dataset with Python's module-level `random`, seeded once with 42, in this order:
1. a sample of 100 distinct words from its five-letter word file (shipped here as data/paper_words.txt);
2. a value for each word, in the sampled order, uniform over -99..99 (`randint`);
3. for each of its 100 rows in turn, 50,000 keys drawn with replacement (`choices`, one draw a key).
Row i's keys therefore start after 50,000·i draws from the state the dictionary left. A run takes rows
offset..offset+samples-1 and the first turns·K keys of each (turn t holds keys (t-1)·K+1..t·K, as the
reference chunks a row); the draws it does not need are skipped without building the keys.
tests/test_paper_data.py checks the result against a file the reference's own code built.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache
from importlib import resources

from lhe_tui.common.errors import ConfigError
from lhe_tui.task.model import Sample, Task

PAPER_SEED = 42
PAPER_DICT_SIZE = 100
PAPER_MIN_VALUE, PAPER_MAX_VALUE = -99, 99
PAPER_ROWS = 100                 # rows (samples) the reference generator makes
PAPER_KEYS_PER_ROW = 50_000      # keys in each row
BITS_PER_DRAW = 64               # random() reads two 32-bit words of the Mersenne Twister
_SKIP_CHUNK = 1 << 20            # draws skipped per getrandbits call (8 MB of bits at most)


@cache
def paper_words() -> tuple[str, ...]:
    """The reference's word file, in its order."""
    text = resources.files("lhe_tui.task").joinpath("data/paper_words.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


@cache
def _dictionary_and_state() -> tuple[tuple[tuple[str, int], ...], tuple]:
    rng = random.Random(PAPER_SEED)
    words = rng.sample(paper_words(), PAPER_DICT_SIZE)
    entries = tuple((word, rng.randint(PAPER_MIN_VALUE, PAPER_MAX_VALUE)) for word in words)
    return entries, rng.getstate()


def paper_dictionary() -> dict[str, int]:
    """The reference generator's dictionary, in its order (word -> value)."""
    return dict(_dictionary_and_state()[0])


def _skip(rng: random.Random, draws: int) -> None:
    """Advance `rng` as `draws` calls of random() would, without making them one by one."""
    while draws > 0:
        chunk = min(draws, _SKIP_CHUNK)
        rng.getrandbits(BITS_PER_DRAW * chunk)
        draws -= chunk


def check_rows(n_samples: int, n_keys: int, offset: int = 0) -> None:
    """ConfigError (one line) unless rows offset..offset+n_samples-1 and n_keys keys a row exist."""
    if offset < 0:
        raise ConfigError(f"--dataset-offset must not be negative, got {offset}")
    if offset + n_samples > PAPER_ROWS:
        first = f"from row {offset} " if offset else ""
        raise ConfigError(f"--data paper has {PAPER_ROWS} rows (0..{PAPER_ROWS - 1}); --samples {n_samples} "
                          f"{first}goes past them")
    if n_keys > PAPER_KEYS_PER_ROW:
        raise ConfigError(f"--data paper has {PAPER_KEYS_PER_ROW:,} keys a row; --turns x --k asks for {n_keys:,}")


def paper_rows(n_samples: int, n_keys: int, offset: int = 0) -> Iterator[tuple[str, ...]]:
    """The first `n_keys` keys of rows offset..offset+n_samples-1 of the reference generator's data."""
    check_rows(n_samples, n_keys, offset)
    entries, state = _dictionary_and_state()
    words = [word for word, _ in entries]
    rng = random.Random()
    rng.setstate(state)
    _skip(rng, offset * PAPER_KEYS_PER_ROW)
    for _ in range(n_samples):
        yield tuple(rng.choices(words, k=n_keys))
        _skip(rng, PAPER_KEYS_PER_ROW - n_keys)


def paper_task(n_samples: int, turns: int, k: int = 1, offset: int = 0) -> Task:
    """A task of the reference generator's data: its dictionary, rows offset.. and turns*k keys of each."""
    for name, value in (("--samples", n_samples), ("--turns", turns), ("--k", k)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    dictionary = paper_dictionary()
    samples = tuple(Sample(index=i, keys=keys, values=tuple(dictionary[key] for key in keys), k=k)
                    for i, keys in enumerate(paper_rows(n_samples, turns * k, offset)))
    last = offset + n_samples - 1
    return Task(dictionary=dictionary, samples=samples, k=k, turns=turns,
                source=f"paper data (the reference generator, seed {PAPER_SEED}) rows {offset}..{last}")
