"""Export a session (or a group: every arm, named): JSON (session, full config, prompt, summary, curves, samples, turns, events), CSV (one row a
turn, with session_id; probe sessions also probe_rate), or its per-turn curves (`--curves`) as CSV or JSON.

The curves are `lhe_tui.reports.api.curves`: the notebook API and the export give the same numbers."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

from lhe_tui.core.prices import ModelPrice, load_prices
from lhe_tui.core.urls import redact_url
from lhe_tui.store.queries import (flags_by_sample, live_status, load_events, load_samples, load_session,
                                   session_step_rule, session_token_totals)

if TYPE_CHECKING:
    from sqlite_utils import Database

# The store's columns as exported: `correct` is answer_correct, `expected_step` expected_update, and
# `step_correct` is replaced by turn_correct under the step rule (docs/protocol.md lists the old names).
RENAMED = {"correct": "answer_correct", "step_correct": "turn_correct", "expected_step": "expected_update"}
EXPORT_COLUMNS = ("sample", "turn", "keys", "key_values_json", "turn_sum", "gold_sum", "seen_previous",
                  "expected_update", "model_answer", "answer_status", "answer_correct", "turn_correct", "history_answer",
                  "injected", "inherited", "tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
                  "latency_s", "retries", "raw_reply", "reasoning", "empty_retries", "provider_error")
COST_COLUMN = "cost_usd"   # computed from the price files; empty where the model has no price or no counts


def _price(db: Database, session_id: str) -> ModelPrice | None:
    row = db.execute("SELECT model FROM sessions WHERE id = ?", [session_id]).fetchone()
    return load_prices().for_model(row[0] if row else None)


def _with_cost(rows: list[dict], price: ModelPrice | None) -> list[dict]:
    for row in rows:   # a fork's inherited turns were paid for by its parent: no cost here
        row[COST_COLUMN] = None if price is None or row.get("inherited") else price.cost(row["tokens_in"], row["tokens_out"],
                                                                   row["tokens_cached"], row["tokens_cache_write"])
    return rows


def _is_probe(db: Database, session_id: str) -> bool:
    row = db.execute("SELECT kind FROM sessions WHERE id = ?", [session_id]).fetchone()
    return bool(row) and row[0] == "probe"


def _turn_rows(db: Database, session_id: str, *, probe_rate: bool = False, step_rule: str | None = None) -> list[dict]:
    """The session's turns, `turn_correct` under `step_rule` (None: the session's); `probe_rate`: with the
    history error rate of each turn's sample (probe sessions)."""
    stored = {new: old for old, new in RENAMED.items()}
    columns = ", ".join(f"t.{stored.get(c, c)} AS {c}" for c in EXPORT_COLUMNS)
    if probe_rate:
        rows = list(db.query(f"SELECT {columns}, s.probe_rate FROM turns t LEFT JOIN samples s "
                             "ON s.session_id = t.session_id AND s.sample = t.sample "
                             "WHERE t.session_id = ? ORDER BY t.sample, t.turn", [session_id]))
    else:
        rows = list(db.query(f"SELECT {columns} FROM turns t WHERE t.session_id = ? ORDER BY t.sample, t.turn",
                             [session_id]))
    rule = step_rule if step_rule is not None else session_step_rule(db, session_id)
    if rule != "own":
        flags = [flag for sample in flags_by_sample(db, session_id, step_rule=rule)[1] for flag in sample]
        for row, flag in zip(rows, flags):
            row["turn_correct"] = int(flag)
    return rows


def curve_columns() -> tuple[str, ...]:
    from lhe_tui.reports.api import CurvePoint

    return tuple(f.name for f in fields(CurvePoint))


def curve_rows(db: Database, session_id: str, step_rule: str | None = None) -> list[dict]:
    """The per-turn curves (lhe_tui.reports.api.curves): turn, steps (turn * K), n (samples the point counts: a failed
    sample counts as wrong past its failure), task, turn and answer accuracy with 95% bootstrap bounds."""
    from lhe_tui.reports.api import curves

    return [asdict(point) for point in curves(db, session_id, step_rule=step_rule)]


def summary_dict(db: Database, session_id: str, step_rule: str | None = None) -> dict:
    """The headline metrics, per turn and per step (key): docs/protocol.md. inf is written "inf"."""
    from lhe_tui.reports.api import finite_or_text, summary

    data = asdict(summary(db, session_id, step_rule=step_rule))
    del data["session_id"]
    data["first_errors"] = list(data["first_errors"])
    return {key: finite_or_text(value) if key.startswith("horizon_theory") else value for key, value in data.items()}


def prompt_dict(session: dict) -> dict:
    """The session's prompt template: its name and full text (as stored; older sessions: the named file's)."""
    config = session.get("config") or {}
    name, text = session.get("prompt"), config.get("prompt_text")
    if text is None and name:
        try:
            from lhe_tui.task.templates import load_template

            text = load_template(name).text
        except Exception:   # a template file gone since: the name is all there is
            text = None
    return {"name": name, "text": text}


def export_json(db: Database, session_id: str, step_rule: str | None = None) -> str:
    session = load_session(db, session_id)
    stored = session.get("status")
    session["status"] = live_status(db, session_id, stored)   # `crashed`, not `running`, once its writer is gone
    samples = [{k: v for k, v in s.items() if k != "session_id"} for s in load_samples(db, session_id)]
    if session["status"] != stored:
        for sample in samples:   # a crashed session's samples were cut short with it
            if sample.get("status") == "running":
                sample["status"] = session["status"]
    has_turns = db.execute("SELECT 1 FROM turns WHERE session_id = ? LIMIT 1", [session_id]).fetchone()
    if session["kind"] == "probe":   # a probe's own figures, no run metrics (they would mean nothing)
        from lhe_tui.reports.api import probe

        summary: dict = {"probe": [asdict(row) for row in probe(db, session_id)], "no_data": False}
    else:
        summary = summary_dict(db, session_id, step_rule)
    curves = (curve_rows(db, session_id, step_rule) if has_turns and session["kind"] != "probe"
              and not summary["no_data"] else [])
    events = [{k: v for k, v in e.items() if k != "session_id"} for e in load_events(db, session_id)]
    price = _price(db, session_id)
    summary.update(tokens_dict(db, session_id, price))
    config = session["config"]
    if config.get("base_url"):   # what an older lhe-tui stored as given
        config["base_url"] = redact_url(config["base_url"])
    return strict_json({"session": session, "config": config, "prompt": prompt_dict(session),
                        "summary": summary, "curves": curves, "samples": samples,
                        "turns": _with_cost(_turn_rows(db, session_id, probe_rate=session["kind"] == "probe",
                                                       step_rule=step_rule), price),
                        "events": events})


def strict_json(data: object) -> str:
    """JSON that any parser reads (RFC 8259): a NaN or an infinity, had one been stored, is written null."""
    try:
        return json.dumps(data, indent=1, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), indent=1, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(inner) for inner in value]
    return value


def tokens_dict(db: Database, session_id: str, price: ModelPrice | None) -> dict:
    """The session's token sums (null: not reported) and cost (null: no price for the model, or no counts),
    with the prices it was computed from."""
    totals = session_token_totals(db, session_id)
    prices = load_prices()
    return {"tokens": {"in": totals.tokens_in, "out": totals.tokens_out, "cached": totals.cached,
                       "cache_write": totals.cache_write, "reasoning": totals.reasoning,
                       "turns_not_reported": totals.unreported},
            "cost_usd": totals.cost(price),
            "prices": None if price is None else {"per_million_tokens": asdict(price), "as_of": prices.as_of,
                                                  "source": prices.source}}


def _csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export_curves_csv(db: Database, session_id: str, step_rule: str | None = None) -> str:
    """One row a turn: CurvePoint's columns. Floats are written in full (repr): read back, they are equal."""
    return _csv(curve_columns(), curve_rows(db, session_id, step_rule))


def export_curves_json(db: Database, session_id: str, step_rule: str | None = None) -> str:
    """The rows of `export_curves_csv` as a JSON list of objects."""
    return strict_json(curve_rows(db, session_id, step_rule))


def export_csv(db: Database, session_id: str, step_rule: str | None = None) -> str:
    """One row a turn, `session_id` first; a probe session's rows end with its sample's `probe_rate`."""
    probe = _is_probe(db, session_id)
    columns = ("session_id", *EXPORT_COLUMNS, COST_COLUMN, *(("probe_rate",) if probe else ()))
    rows = _with_cost(_turn_rows(db, session_id, probe_rate=probe, step_rule=step_rule), _price(db, session_id))
    return _csv(columns, [{"session_id": session_id, **row} for row in rows])


def export_group(db: Database, arms: list[tuple[str, str]], format: str, curves: bool,
                 step_rule: str | None = None) -> str:
    """A group's export: every arm's, named. JSON: {"group_id", "arms": [{"arm", ...the session's export}]};
    CSV: the arms' rows one after another, with an `arm` column first."""
    export = exporter(format, curves)
    if format == "json":
        group_id = db.execute("SELECT group_id FROM sessions WHERE id = ?", [arms[0][1]]).fetchone()[0]
        parts = [{"arm": name, **_as_object(json.loads(export(db, sid, step_rule)))} for name, sid in arms]
        return json.dumps({"group_id": group_id, "arms": parts}, indent=1)
    out = []
    for n, (name, sid) in enumerate(arms):
        lines = export(db, sid, step_rule).splitlines(keepends=True)
        out += (["arm," + lines[0]] if n == 0 else []) + [_csv_cell(name) + "," + line for line in lines[1:]]
    return "".join(out)


def _as_object(data: object) -> dict:
    """A session's JSON export as an object: the curves export (a list) under "curves"."""
    return data if isinstance(data, dict) else {"curves": data}


def _csv_cell(text: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()


EXPORTS = {("json", False): export_json, ("csv", False): export_csv,
           ("json", True): export_curves_json, ("csv", True): export_curves_csv}


def exporter(format: str, curves: bool):
    """The export function for `--format` and `--curves` (`--format curves` is `--curves --format csv`)."""
    if format == "curves":
        return export_curves_csv
    return EXPORTS[(format, curves)]


def export_sweep(db: Database, sweep_id: str, format: str, curves: bool, step_rule: str | None = None) -> str:
    """`export swp-…`: one row per run with the sweep's axes as columns (lhe_tui.sweep.results.RunResult.row),
    as JSON (a list of rows) or CSV."""
    from lhe_tui.common.errors import ConfigError
    from lhe_tui.sweep.results import sweep_results

    if curves or format == "curves":
        raise ConfigError("export swp-…: one row per run (--format json or csv); a run's curves: export its session")
    _, results = sweep_results(db, sweep_id, step_rule=step_rule)
    rows = [r.row() for r in results]
    if format == "csv":
        return _csv(tuple(rows[0]), rows)
    return json.dumps(rows, indent=1) + "\n"
