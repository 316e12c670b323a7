"""Compare sessions: the numbers behind `lhe-tui compare` and the TUI's compare screen."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lhe_tui.metrics import (PairedDiff, accuracy_at, first_errors_or_end, paired_difference,
                             paired_horizon_difference, paired_mean_difference, sample_counts, summarize,
                             task_accuracy, turn_accuracy)
from lhe_tui.metrics.paired import DEFAULT_N_BOOT, DEFAULT_SEED
from lhe_tui.core.lineage import Lineage
from lhe_tui.store.queries import load_session, session_cost, session_costs, session_flags  # noqa: F401

__all__ = ["session_cost", "session_costs"]   # (they live in the store's queries: `sessions` needs no metrics)

if TYPE_CHECKING:
    from sqlite_utils import Database


def policy_label(config: dict, manual: list[int] | tuple[int, ...] = ()) -> str:
    """The session's history policy in a few words; `manual`: the turns injected by hand during the run
    (`i`/`I` in the live view; they are events, not config: `manual_injection_turns`)."""
    parts = []
    if config.get("heal"):
        parts.append("heal")
    if config.get("induced_error_rate"):
        parts.append(f"r={config['induced_error_rate']:g}")
    if config.get("window"):
        parts.append(f"w={config['window']}")
    if config.get("inject_at"):
        parts.append("inject@" + ",".join(str(i["turn"]) for i in config["inject_at"]))
    if manual:
        turns = sorted(set(manual))
        shown = ",".join(str(t) for t in turns[:3]) + (",…" if len(turns) > 3 else "")
        parts.append(f"manual inject@{shown}")
    return " ".join(parts) or "plain"


def manual_injection_turns(db: Database, session_id: str) -> list[int]:
    """The turns of the session's injections made by hand during the run (any sample), in order."""
    rows = db.execute("SELECT DISTINCT turn FROM events WHERE session_id = ? AND kind = 'injected' AND "
                      "COALESCE(json_extract(payload_json, '$.source'), 'manual') NOT IN ('scripted', 'fork') ORDER BY turn",
                      [session_id]).fetchall()
    return [row[0] for row in rows if row[0] is not None]


@dataclass(frozen=True)
class SessionCurves:
    session_id: str
    label: str
    n_samples: int
    n_turns: int
    turn_curve: list[float]                  # turn accuracy (the update; the step rule's flags)
    task_curve: list[float]
    horizon_05: int | None
    median_first_error: float | None
    mean_turn_accuracy: float | None         # fit 1 of p
    p_before_first_error: float | None = None   # fit 2 of p (the theory's)
    counts: list[int] = field(default_factory=list)   # samples each point counts (failed: wrong past failure)
    k: int = 1
    horizon_05_steps: int | None = None
    p_step_before_first_error: float | None = None   # derived: p_before_first_error ** (1 / k)
    protocol: str = "lenient"
    step_rule: str = "own"
    cost: str = "-"   # the session's cost as shown (`$0.0123`), "-" without a price, "not reported" without counts
    no_data: bool = False   # no turn was answered: no curve, left out of comparisons (`with_data`)


def with_data(curves: list[SessionCurves]) -> tuple[list[SessionCurves], list[SessionCurves]]:
    """(the sessions that have metrics, those left out: no turn was answered, so no numbers to compare)."""
    return [c for c in curves if not c.no_data], [c for c in curves if c.no_data]


def no_data_note(left_out: list[SessionCurves]) -> str:
    """The line that says which sessions a comparison or figure leaves out, and why ('' for none)."""
    if not left_out:
        return ""
    ids = ", ".join(c.session_id for c in left_out)
    return f"left out, no data (no turn was answered): {ids}"




def session_label(db: Database, session_id: str, session: dict) -> str:
    """What a session ran, as compare and the figures label it: provider/model, K, mode, protocol, policy."""
    label = (f"{session['provider']}/{session['model']} K={session['k']} {session['mode']} {session['protocol']} "
             f"{policy_label(session['config'], manual_injection_turns(db, session_id))}")
    lineage = Lineage.from_row(session)
    if lineage.is_fork:   # a fork's edit is its lineage, not a manual injection
        label += f" fork@{lineage.fork_turn}" + ("" if lineage.edit is None else f" {lineage.edit.short()}")
    return label


def session_curves(db: Database, session_id: str, *, step_rule: str | None = None) -> SessionCurves:
    """`step_rule`: score turn accuracy under this rule (None: the session's)."""
    session = load_session(db, session_id)
    flags = session_flags(db, session_id, step_rule)
    correct, ragged = flags.correct, dict(status=flags.status, turns=flags.turns)
    summary = summarize(correct, flags.update, 0.5, k=flags.k, answered=flags.answered, **ragged)
    if summary.no_data:
        return SessionCurves(session_id=session_id, label=session_label(db, session_id, session),
                             n_samples=len(correct), n_turns=0, turn_curve=[], task_curve=[], horizon_05=None,
                             median_first_error=None, mean_turn_accuracy=None, k=flags.k,
                             protocol=session["protocol"], step_rule=flags.step_rule,
                             cost=session_cost(db, session_id, session.get("model")), no_data=True)
    task = task_accuracy(correct, **ragged)
    # A sample with no error yet counts as erring after its last turn, so the median stays honest.
    firsts_or_end = [f if f is not None else len(c) + 1 for f, c in zip(summary.first_errors, correct) if c or f]
    return SessionCurves(session_id=session_id, label=session_label(db, session_id, session), n_samples=len(correct), n_turns=len(task),
                         turn_curve=turn_accuracy(flags.update, **ragged), task_curve=task,
                         horizon_05=summary.horizon_measured,
                         median_first_error=statistics.median(firsts_or_end) if firsts_or_end else None,
                         mean_turn_accuracy=summary.mean_turn_accuracy,
                         p_before_first_error=summary.p_before_first_error,
                         counts=sample_counts(correct, **ragged), k=flags.k,
                         horizon_05_steps=summary.horizon_measured_steps,
                         p_step_before_first_error=summary.p_step_before_first_error,
                         protocol=session["protocol"], step_rule=flags.step_rule,
                         cost=session_cost(db, session_id, session.get("model")))


def default_turns(n_turns: int) -> list[int]:
    marks = sorted({t for t in (1, 10, n_turns // 4, n_turns // 2, n_turns) if t >= 1})
    return marks


def parse_turns(text: str | None) -> list[int] | None:
    if not text:
        return None
    from lhe_tui.common.errors import ConfigError

    try:
        turns = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--at expects comma-separated turn numbers, got {text!r}") from None
    if not turns or min(turns) < 1:
        raise ConfigError(f"--at turns must be at least 1, got {text!r}")
    return turns


def compare_rows(curves: list[SessionCurves], turns: list[int], *, cost: bool = False) -> list[dict]:
    """One row a session. With any session of K > 1, H_0.5 and p also per step (key, derived); `@t turn/task/n`:
    turn and task accuracy at turn t and how many samples that point counts; `cost`: each session's cost.
    `p<1st err`: p before the first error, the theory's p (the mean turn accuracy, the other fit, is in `show`
    and the exports; turn accuracy at each turn is in the `@t` columns)."""
    steps = any(c.k > 1 for c in curves)
    rows = []
    for c in curves:
        row: dict[str, object] = {"session": c.session_id, "label": c.label, "samples": c.n_samples,
                                  "turns": c.n_turns, "H_0.5": c.horizon_05}
        if steps:
            row["H_0.5 steps"] = c.horizon_05_steps
        row["median 1st err"] = c.median_first_error
        row["p<1st err"] = None if c.p_before_first_error is None else f"{c.p_before_first_error:.4f}"
        if steps:
            row["p/step (derived)"] = (None if c.p_step_before_first_error is None
                                       else f"{c.p_step_before_first_error:.4f}")
        if cost:
            row["cost"] = c.cost
        for t in turns:
            n = c.counts[t - 1] if 0 < t <= len(c.counts) else None
            row[f"@{t} turn/task/n"] = (accuracy_at(c.turn_curve, t), accuracy_at(c.task_curve, t), n)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- paired arms (issue 15)


@dataclass(frozen=True)
class PairComparison:
    """Arm B against arm A over the same samples (same keys): B - A at the reported turns, with paired
    bootstrap intervals (lhe_tui.metrics.paired), and the mean first-error turn and horizon H_0.5."""

    session_a: str
    session_b: str
    name_a: str
    name_b: str
    n_samples: int
    turns: list[int]
    turn: list[PairedDiff]            # turn accuracy (the update, the step rule's flags)
    task: list[PairedDiff]
    answer: list[PairedDiff]          # answer accuracy (answer = gold; not in the printed table)
    first_error: PairedDiff
    horizon: PairedDiff
    first_divergence: int | None     # the first turn at which some sample is right in one arm only
    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_SEED
    level: float = 0.95
    after: int | None = None                  # a fork's turn: the first error after it, per arm, below
    first_error_after: PairedDiff | None = None


def sample_keys(db: Database, session_id: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT keys_json FROM samples WHERE session_id = ? ORDER BY sample",
                                         [session_id]).fetchall()]


def check_same_keys(db: Database, a: str, b: str) -> None:
    """A paired comparison needs the same samples: the same dictionary and keys. LheError (one line) if not."""
    from lhe_tui.common.errors import LheError

    dicts = [db.execute("SELECT dictionary_json FROM sessions WHERE id = ?", [sid]).fetchone()[0] for sid in (a, b)]
    keys_a, keys_b = sample_keys(db, a), sample_keys(db, b)
    if dicts[0] != dicts[1] or len(keys_a) != len(keys_b) or any(
            x != y for x, y in zip(keys_a, keys_b)):
        raise LheError(f"sessions {a} and {b} did not run the same keys: a paired comparison needs the arms of "
                       "one group (`lhe-tui run … --arm …`) or runs of the same task")


def _first_divergence(a: list[list[bool]], b: list[list[bool]]) -> int | None:
    turns = [next((t for t, (x, y) in enumerate(zip(fa, fb), 1) if x != y), None) for fa, fb in zip(a, b)]
    found = [t for t in turns if t is not None]
    return min(found) if found else None


def paired_comparison(db: Database, a: str, b: str, turns: list[int] | None = None, *, name_a: str | None = None,
                      name_b: str | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
                      level: float = 0.95, after: int | None = None,
                      step_rule: str | None = None) -> PairComparison:
    """B - A between two sessions over the same keys (refused in one line otherwise). `turns`: the turns to
    report (default: `default_turns`). The bootstrap is seeded: the same store gives the same intervals.
    Turn accuracy under `step_rule` (None: each session's)."""
    check_same_keys(db, a, b)
    fa, fb = session_flags(db, a, step_rule), session_flags(db, b, step_rule)
    ra = dict(status_a=fa.status, status_b=fb.status, turns=fa.turns)
    n_turns = max(max((len(c) for c in fa.correct), default=0), max((len(c) for c in fb.correct), default=0))
    turns = turns or default_turns(n_turns)
    boot = dict(n_boot=n_boot, seed=seed, level=level)
    return PairComparison(
        session_a=a, session_b=b, name_a=name_a or a, name_b=name_b or b, n_samples=len(fa.correct), turns=turns,
        turn=paired_difference(fa.update, fb.update, "turn", turns, **ra, **boot),
        task=paired_difference(fa.correct, fb.correct, "task", turns, **ra, **boot),
        answer=paired_difference(fa.correct, fb.correct, "answer", turns, **ra, **boot),
        first_error=paired_mean_difference(first_errors_or_end(fa.correct, fa.status),
                                           first_errors_or_end(fb.correct, fb.status), **boot),
        horizon=paired_horizon_difference(fa.correct, fb.correct, 0.5, **ra, **boot),
        first_divergence=_first_divergence(fa.correct, fb.correct), after=after,
        first_error_after=None if after is None else paired_mean_difference(
            _first_errors_after(fa.correct, fa.status, after), _first_errors_after(fb.correct, fb.status, after),
            **boot), **boot)


def _first_errors_after(correct: list[list[bool]], status: list[str | None] | None, after: int) -> list:
    """Per sample its first error after turn `after` (no error: after its last turn), as first_errors_or_end."""
    tails = first_errors_or_end([flags[after:] for flags in correct], status)
    return [None if t is None else t + after for t in tails]


def parse_arm_names(text: str | None) -> list[str] | None:
    """`--arms a,b`: two or more distinct arm names; ConfigError (one line) otherwise."""
    if text is None:
        return None
    from lhe_tui.common.errors import ConfigError

    names = [part.strip() for part in text.split(",") if part.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"--arms expects two or more distinct arm names, e.g. plain,inj; got {text!r}")
    return names


def pair_comparisons(db: Database, arms: list[tuple[str, str]], turns: list[int] | None = None,
                     after: int | None = None, **boot: Any) -> list[PairComparison]:
    """The first arm against each other arm; `after`: also the first error after this turn (a fork's)."""
    (name_a, a), rest = arms[0], arms[1:]
    return [paired_comparison(db, a, b, turns, name_a=name_a, name_b=name_b, after=after, **boot)
            for name_b, b in rest]
