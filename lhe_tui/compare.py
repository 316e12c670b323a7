"""Compare sessions: the numbers behind `lhe-tui compare` and the TUI's compare screen."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lhe_tui.metrics import accuracy_at, sample_counts, summarize, task_accuracy, turn_accuracy
from lhe_tui.core.prices import PriceTable, cost_cell, load_prices
from lhe_tui.store.queries import load_session, session_flags, session_token_totals

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
                      "COALESCE(json_extract(payload_json, '$.source'), 'manual') != 'scripted' ORDER BY turn",
                      [session_id]).fetchall()
    return [row[0] for row in rows if row[0] is not None]


@dataclass(frozen=True)
class SessionCurves:
    session_id: str
    label: str
    n_samples: int
    n_turns: int
    turn_curve: list[float]
    task_curve: list[float]
    horizon_05: int | None
    median_first_error: float | None
    fitted_p: float | None
    counts: list[int] = field(default_factory=list)   # samples each point counts (failed: wrong past failure)
    k: int = 1
    horizon_05_steps: int | None = None
    fitted_p_step: float | None = None
    protocol: str = "lenient"
    cost: str = "-"   # the session's cost as shown (`$0.0123`), "-" without a price, "not reported" without counts


def session_cost(db: Database, session_id: str, model: str | None, prices: PriceTable | None = None) -> str:
    """The session's cost as the lists show it (core.prices.cost_cell), over the turns it played."""
    table = prices if prices is not None else load_prices()
    return cost_cell(session_token_totals(db, session_id), table.for_model(model))


def session_costs(db: Database, rows: list[dict], prices: PriceTable | None = None) -> dict[str, str]:
    """Each listed session's (list_sessions rows) cost cell: `lhe-tui sessions` and the TUI's sessions screen."""
    table = prices if prices is not None else load_prices()
    return {row["id"]: session_cost(db, row["id"], row.get("model"), table) for row in rows}


def session_label(db: Database, session_id: str, session: dict) -> str:
    """What a session ran, as compare and the figures label it: provider/model, K, mode, protocol, policy."""
    return (f"{session['provider']}/{session['model']} K={session['k']} {session['mode']} {session['protocol']} "
            f"{policy_label(session['config'], manual_injection_turns(db, session_id))}")


def session_curves(db: Database, session_id: str) -> SessionCurves:
    session = load_session(db, session_id)
    flags = session_flags(db, session_id)
    correct, ragged = flags.correct, dict(status=flags.status, turns=flags.turns)
    summary = summarize(correct, flags.step, 0.5, k=flags.k, **ragged)
    task = task_accuracy(correct, **ragged)
    # A sample with no error yet counts as erring after its last turn, so the median stays honest.
    firsts_or_end = [f if f is not None else len(c) + 1 for f, c in zip(summary.first_errors, correct) if c or f]
    return SessionCurves(session_id=session_id, label=session_label(db, session_id, session), n_samples=len(correct), n_turns=len(task),
                         turn_curve=turn_accuracy(correct, **ragged), task_curve=task,
                         horizon_05=summary.horizon_measured,
                         median_first_error=statistics.median(firsts_or_end) if firsts_or_end else None,
                         fitted_p=summary.fitted_p, counts=sample_counts(correct, **ragged), k=flags.k,
                         horizon_05_steps=summary.horizon_measured_steps, fitted_p_step=summary.fitted_p_step,
                         protocol=session["protocol"], cost=session_cost(db, session_id, session.get("model")))


def default_turns(n_turns: int) -> list[int]:
    marks = sorted({t for t in (1, 10, n_turns // 4, n_turns // 2, n_turns) if t >= 1})
    return marks


def parse_turns(text: str | None) -> list[int] | None:
    if not text:
        return None
    from lhe_tui.errors import ConfigError

    try:
        turns = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--at expects comma-separated turn numbers, got {text!r}") from None
    if not turns or min(turns) < 1:
        raise ConfigError(f"--at turns must be at least 1, got {text!r}")
    return turns


def compare_rows(curves: list[SessionCurves], turns: list[int], *, cost: bool = False) -> list[dict]:
    """One row a session. With any session of K > 1, H_0.5 and p also per step (key); `@t turn/task/n`:
    turn and task accuracy at turn t and how many samples that point counts; `cost`: each session's cost."""
    steps = any(c.k > 1 for c in curves)
    rows = []
    for c in curves:
        row: dict[str, object] = {"session": c.session_id, "label": c.label, "samples": c.n_samples,
                                  "turns": c.n_turns, "H_0.5": c.horizon_05}
        if steps:
            row["H_0.5 steps"] = c.horizon_05_steps
        row["median 1st err"] = c.median_first_error
        row["p"] = c.fitted_p
        if steps:
            row["p/step"] = None if c.fitted_p_step is None else f"{c.fitted_p_step:.4f}"
        if cost:
            row["cost"] = c.cost
        for t in turns:
            n = c.counts[t - 1] if 0 < t <= len(c.counts) else None
            row[f"@{t} turn/task/n"] = (accuracy_at(c.turn_curve, t), accuracy_at(c.task_curve, t), n)
        rows.append(row)
    return rows
