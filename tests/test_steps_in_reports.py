"""Issue 13 items 5 and 6 in the CLI, export and status bar: per-step figures for K>1, n per curve point, and
a failed sample counted as wrong past its failure, on the scenarios' store (tests/step_scenarios.py)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from rich.text import Text

from lhe_tui.cli.main import main
from lhe_tui.metrics import summarize

FIXTURE = Path(__file__).parent / "data" / "store_before_issue13.db"


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "s.db"
    shutil.copy(FIXTURE, path)
    return str(path)


def test_show_gives_turns_and_steps_for_k2_and_counts_per_turn(store, capsys):
    assert main(["show", "steps-k2-induced", "--db", store]) == 0
    out = capsys.readouterr().out
    assert "per turn / per step (derived)" in out and "derived: p_turn^(1/2)" in out
    assert "turns / steps" in out and "steps" in out.split("per-turn accuracy")[1]
    assert main(["show", "steps-k1", "--db", store]) == 0
    out = capsys.readouterr().out
    assert "per step" not in out and "p before the first error" in out and "mean turn accuracy" in out


def test_export_curves_counts_the_failed_sample_as_wrong(store, capsys):
    assert main(["export", "steps-k1", "--format", "curves", "--db", store]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["n"] for r in rows] == ["5"] * 8           # sample 3 failed at turn 6: still counted, as wrong
    assert float(rows[7]["answer_accuracy"]) <= 0.8
    assert float(rows[7]["turn_accuracy"]) <= 0.8
    assert main(["export", "steps-k2-heal", "--format", "json", "--db", store]) == 0
    data = json.loads(capsys.readouterr().out)
    summary, curves = data["summary"], data["curves"]
    assert summary["k"] == 2 and summary["step_rule"] == "own"
    assert summary["mean_step_accuracy_derived"] == pytest.approx(summary["mean_turn_accuracy"] ** 0.5)
    assert summary["p_step_before_first_error_derived"] == pytest.approx(summary["p_before_first_error"] ** 0.5)
    assert curves[0]["steps"] == 2 and curves[-1]["steps"] == 16 and curves[-1]["n"] == 3
    if summary["horizon_measured_turns"] is not None:
        assert summary["horizon_measured_steps"] == 2 * summary["horizon_measured_turns"]


def test_compare_adds_step_columns_only_with_k_above_1(store, capsys):
    assert main(["compare", "steps-k1", "steps-k2-heal", "--db", store, "--at", "4"]) == 0
    out = capsys.readouterr().out
    assert "H_0.5 steps" in out and "p/step" in out and "@4 turn/task/n" in out
    # two K=1 sessions (the same one twice: the CLI refuses that, the table does not care): no step columns
    from lhe_tui.analysis.compare import compare_rows, session_curves
    from lhe_tui.store.database import open_database

    k1 = session_curves(open_database(store, create=False, write=False), "steps-k1")
    columns = list(compare_rows([k1, k1], [4])[0])
    assert "H_0.5 steps" not in columns and "p/step" not in columns and "@4 turn/task/n" in columns


def status_text(summary) -> str:
    from lhe_tui.ui.widgets.status_bar import StatusBar

    bar = StatusBar()
    bar._s = lambda name: ""   # no app, no theme: plain text is what is checked
    text = Text()
    bar._metrics(text, summary)
    return text.plain


def test_status_bar_shows_turns_only_for_k1_and_both_for_k_above_1():
    correct = [[True, True, False, False], [True, False, False, False]]
    step = [[True, True, False, True], [True, False, True, True]]
    # mean turn accuracy 6/8; p before the first error 1 - 2/5 (first errors at 3 and 2), theory ln .5 / ln .6 = 1.4
    assert status_text(summarize(correct, step)) == " · turn acc 0.750 · p<1st err 0.600 · H0.5 3 (th 1)"
    # per step: 0.6 ** (1/3) = 0.843, theory 3 * 1.357 = 4.07 steps
    assert status_text(summarize(correct, step, k=3)) == (" · turn acc 0.750 · p<1st err 0.600/t 0.843/st · "
                                                          "H0.5 3t=9st (th 1t=4st)")
