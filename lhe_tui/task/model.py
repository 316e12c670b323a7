"""The dict-sum task: a dictionary, samples of keys, and gold running sums per turn."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate


@dataclass(frozen=True)
class Sample:
    """One multi-turn conversation's worth of keys. Turns are 1-based; K keys per turn."""

    index: int
    keys: tuple[str, ...]
    values: tuple[int, ...]
    k: int

    @property
    def turns(self) -> int:
        return len(self.keys) // self.k

    def turn_keys(self, turn: int) -> tuple[str, ...]:
        return self.keys[(turn - 1) * self.k : turn * self.k]

    def turn_values(self, turn: int) -> tuple[int, ...]:
        return self.values[(turn - 1) * self.k : turn * self.k]

    def turn_sum(self, turn: int) -> int:
        return sum(self.turn_values(turn))

    def gold_sums(self) -> list[int]:
        """Running sum after each turn (index 0 is turn 1)."""
        per_turn = (self.turn_sum(t) for t in range(1, self.turns + 1))
        return list(accumulate(per_turn))


@dataclass(frozen=True)
class Task:
    dictionary: dict[str, int]
    samples: tuple[Sample, ...]
    k: int
    turns: int
    source: str
