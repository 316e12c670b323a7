"""Issue 23: a group id works wherever a session id does (show, export, plot, the API); probes show their own
figures; one session order; the small one-behaviour fixes. Each test fails without its change."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from lhe_tui.reports import api
from lhe_tui.cli.main import main
from lhe_tui.common.errors import LheError, install_hint
from tests.store_faults import cli

SMALL = ("--provider", "sim", "--samples", "4", "--turns", "30", "--seed", "3", "--sim-delay", "0")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A two-arm group (plain and an injection at turn 10), then a plain run and a probe, in that order."""
    db = tmp_path_factory.mktemp("groups") / "lhe.db"
    for argv in (("run", "--headless", *SMALL, "--arm", "plain:", "--arm", "inj:--inject-at=10:5"),
                 ("run", "--headless", *SMALL),
                 ("probe", "--headless", "--provider", "sim", "--samples", "2", "--target-turn", "12",
                  "--sim-delay", "0")):
        done = cli(*argv, "--db", str(db))
        assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, group_id, arm, kind FROM sessions ORDER BY created_at, rowid").fetchall()
    return db, rows


def ids(store):
    db, rows = store
    group = rows[0][1]
    plain, inj, run, probe = (r[0] for r in rows)
    return db, group, plain, inj, run, probe


def test_show_of_a_group_is_one_table_with_a_column_per_arm(store, capsys):
    db, group, plain, inj, *_ = ids(store)
    code, out, _ = run_cli(capsys, "show", group, "--db", str(db))
    assert code == 0
    header = next(line for line in out.splitlines() if "what" in line)
    assert header.index("plain") < header.index("inj")
    first_errors = next(line for line in out.splitlines() if "first error turn" in line)
    assert "s0:11" in first_errors.split("│")[3]          # the injected arm erred right after turn 10
    assert plain in out and inj in out                    # each arm's session id in its column


def test_export_of_a_group_names_every_arm(store, capsys):
    db, group, plain, inj, *_ = ids(store)
    code, out, _ = run_cli(capsys, "export", group, "--db", str(db))
    data = json.loads(out)
    assert code == 0 and data["group_id"] == group
    assert [(a["arm"], a["session"]["id"]) for a in data["arms"]] == [("plain", plain), ("inj", inj)]
    assert len(data["arms"][1]["turns"]) == 4 * 30
    code, out, _ = run_cli(capsys, "export", group, "--format", "csv", "--db", str(db))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 * 4 * 30 and list(rows[0])[:2] == ["arm", "session_id"]
    assert {(r["arm"], r["session_id"]) for r in rows} == {("plain", plain), ("inj", inj)}
    code, out, _ = run_cli(capsys, "export", group, "--curves", "--format", "csv", "--db", str(db))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 * 30 and rows[0]["arm"] == "plain" and rows[-1]["arm"] == "inj"
    assert rows[-1]["task_accuracy"] == "0.0"             # every sample of the injected arm erred


def test_export_into_a_missing_folder_is_refused_before_the_store_is_read(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", "latest", "--db", str(tmp_path / "none.db"),
                           "-o", str(tmp_path / "no" / "such" / "x.json"))
    assert code != 0 and "does not exist" in err and "no session store" not in err


def test_plot_of_a_group_overlays_its_arms_named_as_at_the_run(store, tmp_path):
    pytest.importorskip("matplotlib")
    from lhe_tui.reports.figures import _build
    from lhe_tui.store.database import open_database

    db, group, plain, inj, run, _ = ids(store)
    out = tmp_path / "g.svg"
    assert main(["plot", group, "--db", str(db), "-o", str(out)]) == 0 and out.stat().st_size > 0
    fig = _build(open_database(db, create=False, write=False), [plain, inj], "compare", 0, 50,
                 labels={plain: "plain", inj: "inj"})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("plain (") and legend[1].startswith("inj (")


def test_distinct_labels_keep_only_what_differs():
    from lhe_tui.reports.figures import distinct_labels

    labels = ["sim/sim-1 K=1 direct paper plain", "sim/sim-1 K=1 direct paper inject@20",
              "sim/sim-1 K=1 direct paper r=0.5"]
    assert distinct_labels(labels) == ["plain", "inject@20", "r=0.5"]
    assert distinct_labels(["a b", "a b"]) == ["a b", "a b"]          # nothing differs: the full labels
    assert distinct_labels(["only one"]) == ["only one"]


def test_plot_takes_a_title_and_labels(store, tmp_path):
    pytest.importorskip("matplotlib")
    from lhe_tui.reports.figures import _build
    from lhe_tui.store.database import open_database

    db, group, plain, inj, run, _ = ids(store)
    assert main(["plot", plain, run, "--db", str(db), "-o", str(tmp_path / "x.png"), "--title", "T",
                 "--label", f"{run}=Baseline"]) == 0
    assert main(["plot", plain, "--db", str(db), "-o", str(tmp_path / "y.png"), "--label", "nolabel"]) == 2
    fig = _build(open_database(db, create=False, write=False), [plain, run], "compare", 0, 50,
                 labels={run: "Baseline"})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[1].startswith("Baseline (")


def test_the_sum_figure_shows_answer_minus_gold(store):
    pytest.importorskip("matplotlib")
    from lhe_tui.reports.figures import _build
    from lhe_tui.store.database import open_database

    db, group, plain, inj, *_ = ids(store)
    fig = _build(open_database(db, create=False, write=False), [inj], "sum", 0, 50)
    diff = fig.axes[1]
    assert diff.get_ylabel() == "answer − gold"
    y = list(diff.get_lines()[1].get_ydata())     # [0] is the zero line
    assert y[:10] == [0] * 10 and y[10] == 5       # the injection at turn 10 carried on: 5 off from turn 11


def test_the_api_reads_groups_lineage_and_probes(store):
    db, group, plain, inj, run, probe = ids(store)
    st = api.open_store(db)
    infos = api.sessions(st)
    assert [i.id for i in infos] == [probe, run, inj, plain]       # newest first
    by_id = {i.id: i for i in infos}
    assert (by_id[inj].group_id, by_id[inj].arm) == (group, "inj") and by_id[run].group_id is None
    assert by_id[probe].final_task_accuracy is None and by_id[probe].horizon_05 is None
    assert api.arms(st, group) == [("plain", plain), ("inj", inj)]
    points = api.curves(st, group)
    assert [p.session_id for p in points] == [plain] * 30 + [inj] * 30
    assert [s.session_id for s in api.summary(st, group)] == [plain, inj]
    with pytest.raises(LheError, match="probe"):
        api.summary(st, probe)
    rates = [row.rate for row in api.probe(st, probe)]
    assert rates == [0.0, 0.25, 0.5, 0.75, 1.0]
    pytest.importorskip("pandas")
    frame = api.sessions_frame(st)
    assert {"group_id", "arm", "parent_id", "fork_turn"} <= set(frame.columns)


def test_probes_in_the_list_show_their_own_figures(store, capsys):
    db, *_ , probe = ids(store)
    code, out, _ = run_cli(capsys, "sessions", "--db", str(db))
    line = next(line for line in out.splitlines() if probe in line)
    assert "probe @12:" in line and "at r=0" in line and "at r=1" in line
    assert line.split("│")[3].strip() == "-"                  # no task accuracy for a probe
    code, _, err = run_cli(capsys, "probe", "--headless", "--target-turn", "1", "--db", str(db))
    assert code == 2 and "at least 2" in err


def test_sessions_are_listed_newest_first(store, capsys):
    db, group, plain, inj, run, probe = ids(store)
    code, out, _ = run_cli(capsys, "sessions", "--db", str(db))
    order = [out.index(x) for x in (probe, run, group, plain, inj)]
    assert order == sorted(order)                 # a group's arms under it, in the order they were given


def test_compare_of_a_session_with_itself_is_refused(store, capsys):
    db, group, plain, *_ = ids(store)
    code, out, err = run_cli(capsys, "compare", plain, plain, "--db", str(db))
    assert code == 2 and "given twice" in err and out == ""


def test_a_fork_compared_with_its_parent_is_worded_as_a_fork(store, capsys, tmp_path):
    import shutil

    db = tmp_path / "f.db"
    shutil.copy(store[0], db)
    plain = ids(store)[2]
    assert cli("fork", plain, "--turn", "20", "--offset", "3", "--headless", "--db", str(db)).returncode == 0
    code, out, _ = run_cli(capsys, "compare", plain, "latest", "--db", str(db))
    assert code == 0 and "first turn fork and parent differ" in out and "the arms differ" not in out


def test_a_new_store_is_said_once(tmp_path):
    db = tmp_path / "typo" / "lhe.db"
    first = cli("run", "--headless", "--samples", "1", "--turns", "2", "--sim-delay", "0", "--db", str(db))
    again = cli("run", "--headless", "--samples", "1", "--turns", "2", "--sim-delay", "0", "--db", str(db))
    assert f"new store created at {db}" in first.stderr
    assert "new store" not in again.stderr


def test_the_sim_says_which_settings_it_ignores(tmp_path):
    done = cli("run", "--headless", "--samples", "1", "--turns", "2", "--sim-delay", "0", "--temperature", "5",
               "--top-p", "0.5", "--db", str(tmp_path / "lhe.db"))
    assert done.returncode == 0
    assert done.stderr.count("ignores --temperature, --top-p") == 1
    plain = cli("run", "--headless", "--samples", "1", "--turns", "2", "--sim-delay", "0", "--db",
                str(tmp_path / "lhe.db"))
    assert "ignores" not in plain.stderr


def test_every_extra_hint_has_one_form():
    from lhe_tui.cli import web
    from lhe_tui.reports.figures import EXTRA_HINT
    from lhe_tui.providers.local_install import INSTALL_HINT

    assert install_hint("figures") == "pip install -c constraints.txt -e '.[figures]'"
    assert EXTRA_HINT == install_hint("figures") and INSTALL_HINT.endswith(install_hint("local"))
    with pytest.raises(LheError) as info:
        web.require_extra("no_such_module_xyz", "serve", "lhe-tui serve")
    assert install_hint("serve") in str(info.value)
