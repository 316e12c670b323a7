"""Ragged per-sample flag lists -> a padded matrix plus a mask (the one numpy entry point).

Which turns a sample counts at (DESIGN §2, "ragged samples"; docs/protocol.md):
- a sample counts at every turn it finished;
- a sample that FAILED (status "failed": the provider gave up) also counts, as wrong, at every turn from
  the one it failed at up to the run's frontier: the furthest turn any sample reached (a failed sample
  reached the turn it failed at), never past the configured turns. The paper's runner records no
  answer there, which scores wrong; past the frontier no sample has anything to say;
- a sample stopped EARLY by its --until rule (lhe_tui.core.until) after an error counts, as wrong, in task
  accuracy up to the frontier too (a task that has failed stays failed: that is what makes --until exact),
  and in every other curve only at its own turns;
- a sample that was stopped, is still running (or pending), or finished, counts only at its own turns.
Every curve, count, fit and summary takes the same `status` (one string per sample, or None) and
`turns` (the configured turns, a cap) and pads through `to_matrix`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Flags = Sequence[Sequence[bool]]
Statuses = Sequence[str | None] | None

FAILED = "failed"
CURVE_KINDS = ("answer", "turn", "task")
EARLY = "early"     # lhe_tui.core.until.EARLY (metrics import nothing from the layers above them)


def frontier(lengths: Sequence[int], status: Statuses = None, turns: int | None = None) -> int:
    """The last turn any point of a curve can be at: the furthest turn a sample reached (a failed sample
    reached the turn after its last finished one: the one it failed at), capped at `turns`."""
    if status is not None and len(status) != len(lengths):
        raise ValueError(f"{len(status)} sample statuses for {len(lengths)} samples")
    reach = [n + (1 if status is not None and status[i] == FAILED else 0) for i, n in enumerate(lengths)]
    furthest = max(reach, default=0)
    return furthest if turns is None else min(furthest, max(int(turns), 0))


def _width(lengths: Sequence[int], status: Statuses, turns: int | None) -> int:
    return max(max(lengths, default=0), frontier(lengths, status, turns))


def curve_length(by_sample: Flags, status: Statuses = None, turns: int | None = None) -> int:
    """How many turns the curves of `by_sample` have (the matrices' width): the turn numbers 1..n that
    `at` (curve_flags) picks from."""
    return _width([len(sample) for sample in by_sample], status, turns)


def to_matrix(by_sample: Flags, status: Statuses = None, turns: int | None = None, *,
              task: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(flags, mask)``, both bool arrays of shape ``(n_samples, n_turns)``.

    ``mask[i, t]`` is True when sample ``i`` counts at turn ``t + 1``: it finished that turn, or it failed
    before it (then ``flags`` is False there; see the module's rule); with ``task``, also a sample stopped
    early after an error. Other padded cells are False in both. Samples of any length (including zero) are
    accepted. Without ``status`` nothing is padded.
    """
    rows = [np.asarray(sample, dtype=bool).reshape(-1) for sample in by_sample]
    lengths = [row.size for row in rows]
    n_turns = _width(lengths, status, turns)
    flags = np.zeros((len(rows), n_turns), dtype=bool)
    mask = np.zeros((len(rows), n_turns), dtype=bool)
    last = frontier(lengths, status, turns) if status is not None else 0
    for i, row in enumerate(rows):
        flags[i, : row.size] = row
        mask[i, : row.size] = True
        if status is not None and row.size < last and (status[i] == FAILED or
                                                       (task and status[i] == EARLY and not row.all())):
            mask[i, row.size: last] = True
    return flags, mask


def prefix_all(flags: np.ndarray) -> np.ndarray:
    """Per sample, True at turn t when every flag at turns 1..t is True (task correctness)."""
    return np.logical_and.accumulate(flags, axis=1) if flags.size else flags.copy()


def masked_mean(flags: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-turn mean over the samples that count at the turn (every column has at least one)."""
    if flags.shape[1] == 0:
        return np.zeros(0)
    reached = mask.sum(axis=0)
    hits = (flags & mask).sum(axis=0)
    return hits / reached


def curve_flags(by_sample: Flags, kind: str, status: Statuses = None, turns: int | None = None,
                at: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-sample flags whose masked mean is the curve of ``kind``: "answer" (answer-correct flags),
    "turn" (update flags under a step rule) or "task" (answer-correct flags, every turn 1..t). `at`: only
    these turns' columns (0-based, turn t at t - 1), for a view that draws fewer points than turns; each
    column is what it is in the whole matrix (the task flags are taken over all turns before)."""
    if kind not in CURVE_KINDS:
        raise ValueError(f"unknown curve kind {kind!r}; expected 'answer', 'turn' or 'task'")
    flags, mask = to_matrix(by_sample, status, turns, task=kind == "task")
    if kind == "task":
        flags = prefix_all(flags)
    if at is not None:
        columns = np.asarray(at, dtype=int)
        flags, mask = flags[:, columns], mask[:, columns]
    return flags, mask
