"""Sweep results, figures and export (issue 24 §3)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from lhe_tui.cli.main import main
from lhe_tui.metrics.bootstrap import horizon_ci
from lhe_tui.store.database import open_database
from lhe_tui.sweep.results import sweep_results
from lhe_tui.reports.sweep_figures import horizon_series

pytest.importorskip("matplotlib")

SWEEP = """
name = "fig"
[base]
provider = "sim"
samples = 12
turns = 60
seed = 5
sim-delay = 0
sim-growth = 0
sim-conditioning = 0
[axes]
model = [
  { label = "mid", model = "sim-mid", sim-error = 0.02, size = 4 },
  { label = "weak", model = "sim-weak", sim-error = 0.06, size = 1 },
  { label = "strong", model = "sim-strong", sim-error = 0.0, size = 16 },
]
k = [1, 2]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fig")
    path = folder / "s.toml"
    path.write_text(SWEEP, encoding="utf-8")
    db = folder / "f.db"
    assert main(["sweep", str(path), "--headless", "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:
        sweep_id = conn.execute("SELECT id FROM sweeps").fetchone()[0]
    return db, sweep_id


def test_horizon_ci_by_hand():
    # every sample's first error at turn 3: H_0.5 = 3 in every resample
    assert horizon_ci([[True, True, False, False]] * 5) == (3, 3)
    # no sample ever wrong: every resample is censored, no bound
    assert horizon_ci([[True] * 6] * 5) == (None, None)
    # two of four samples fail at turn 2, the others never: the curve sits at 0.5 (not below) unless a
    # resample draws more failures; those that draw fewer are censored, so the upper bound is unbounded
    low, high = horizon_ci([[True, False, False], [True, False, False], [True, True, True], [True, True, True]],
                           n_boot=2000)
    assert low == 2 and high is None


def test_horizon_by_model_orders_the_sim_models_by_their_error_rate(swept, tmp_path, capsys):
    db, sweep_id = swept
    store = open_database(db, create=False, write=False)
    plan, results = sweep_results(store, sweep_id, n_boot=300)
    series, numeric = horizon_series(results, "model", plan.axes)
    assert numeric and [s.label for s in series] == ["k=1", "k=2"]
    for s in series:
        assert [p[0] for p in s.points] == [1.0, 4.0, 16.0]            # by size, not in the file's order
        weak, mid, strong = s.points
        assert weak[1] < mid[1] and not weak[4] and not mid[4]        # measured, the weaker one sooner
        assert strong[4] and strong[1] == 60                          # never wrong: a lower bound at 60 turns
        for _, y, low, high, _ in (weak, mid):
            assert low <= y and (high is None or y <= high)
        assert weak[3] is not None and weak[3] < 60                  # the weak model's CI is bounded
    by_run = {r.run: r for r in results}
    assert by_run["weak/2"].horizon_steps == 2 * by_run["weak/2"].horizon
    out = tmp_path / "h.svg"
    code = main(["plot", sweep_id, "--kind", "horizon", "--by", "model", "-o", str(out), "--db", str(db)])
    assert code == 0 and out.read_text().startswith("<?xml")
    again = tmp_path / "h2.svg"
    main(["plot", sweep_id, "--kind", "horizon", "--by", "model", "-o", str(again), "--db", str(db)])
    assert out.read_bytes() == again.read_bytes()                      # deterministic


@pytest.mark.parametrize("argv", [["--kind", "decay", "--by", "k"], ["--kind", "k"], ["--kind", "horizon", "--by", "k"]])
def test_other_sweep_figures_are_drawn(swept, tmp_path, argv):
    db, sweep_id = swept
    out = tmp_path / "f.png"
    assert main(["plot", sweep_id, *argv, "-o", str(out), "--db", str(db)]) == 0 and out.stat().st_size > 1000


def test_bad_sweep_figures_are_one_line(swept, tmp_path, capsys):
    db, sweep_id = swept
    for argv, says in ((["--kind", "horizon", "--by", "mode"], "not an axis"),
                       (["--kind", "probe"], "no [probe] block"),
                       (["--kind", "sum"], "a sweep draws")):
        code = main(["plot", sweep_id, *argv, "-o", str(tmp_path / "x.svg"), "--db", str(db)])
        err = capsys.readouterr().err
        assert code == 2 and says in err and "Traceback" not in err


def test_export_one_row_per_run_with_the_axes_as_columns(swept, capsys):
    db, sweep_id = swept
    assert main(["export", sweep_id, "--format", "csv", "--db", str(db)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in rows] == ["mid/1", "mid/2", "weak/1", "weak/2", "strong/1", "strong/2"]
    assert [r["model"] for r in rows] == ["mid", "mid", "weak", "weak", "strong", "strong"]
    assert [r["model_id"] for r in rows][:2] == ["sim-mid", "sim-mid"] and [r["k"] for r in rows][:2] == ["1", "2"]
    assert {r["lower_bound"] for r in rows if r["model"] == "strong"} == {"True"}
    assert main(["export", sweep_id, "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 6 and data[2]["horizon"] == int(rows[2]["horizon"])


def test_probe_sweep_plots_one_line_per_model(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text("""
[base]
samples = 4
sim-delay = 0
[axes]
model = [{ label = "a", model = "sim-a", sim-error = 0.01 }, { label = "b", model = "sim-b", sim-error = 0.2 }]
[probe]
target_turn = 8
rates = [0, 0.5, 1]
""", encoding="utf-8")
    db = tmp_path / "p.db"
    assert main(["sweep", str(path), "--headless", "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:
        sweep_id = conn.execute("SELECT id FROM sweeps").fetchone()[0]
        kinds = conn.execute("SELECT kind, COUNT(*) FROM turns t JOIN sessions s ON s.id = t.session_id "
                             "GROUP BY kind").fetchall()
    assert kinds == [("probe", 2 * 4 * 3)]
    out = tmp_path / "p.svg"
    assert main(["plot", sweep_id, "--kind", "probe", "--by", "model", "-o", str(out), "--db", str(db)]) == 0


def test_api_reads_a_sweep_as_export_does(swept, capsys):
    from lhe_tui.reports import api

    db, sweep_id = swept
    store = api.open_store(db)
    runs = api.sweep(store, sweep_id[:12], n_boot=1000)
    assert [r.run for r in runs] == ["mid/1", "mid/2", "weak/1", "weak/2", "strong/1", "strong/2"]
    main(["export", sweep_id, "--db", str(db)])
    exported = json.loads(capsys.readouterr().out)
    assert [r.row() for r in runs] == exported
    pandas = pytest.importorskip("pandas")
    frame = api.sweep_frame(store, sweep_id)
    table = frame.pivot(index="model", columns="k", values="horizon")
    assert table.loc["weak", 1] < table.loc["mid", 1] and isinstance(frame, pandas.DataFrame)
