"""`lhe-tui plot`: each figure kind for sim sessions, byte-identical SVG, one-line errors (issue 16)."""

from __future__ import annotations

import builtins
import sqlite3
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")

from lhe_tui.cli.main import main  # noqa: E402
from lhe_tui.reports.figures import decay_curves  # noqa: E402
from lhe_tui.store.database import open_database  # noqa: E402

SIM = ["--provider", "sim", "--sim-delay", "0", "--sim-error", "0.02"]


def _ids(db, kind="run"):
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions WHERE kind = ? ORDER BY rowid", [kind])]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two runs (K=2 with a scripted injection; K=1), a probe and a session whose turns are gone."""
    db = tmp_path_factory.mktemp("figures") / "lhe.db"
    assert main(["run", "--headless", *SIM, "--samples", "6", "--turns", "40", "--k", "2", "--seed", "5",
                 "--inject-at", "12:7", "--db", str(db)]) == 0
    assert main(["run", "--headless", *SIM, "--samples", "4", "--turns", "30", "--seed", "6", "--db", str(db)]) == 0
    assert main(["run", "--headless", *SIM, "--samples", "2", "--turns", "5", "--seed", "7", "--db", str(db)]) == 0
    assert main(["probe", "--headless", *SIM, "--target-turn", "10", "--samples", "8", "--rates", "0,0.5,1",
                 "--db", str(db)]) == 0
    runs = _ids(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM turns WHERE session_id = ?", [runs[2]])
    return {"db": db, "k2": runs[0], "k1": runs[1], "empty": runs[2], "probe": _ids(db, "probe")[0]}


def plot(store, *args):
    return main(["plot", *args, "--db", str(store["db"])])


def assert_valid(path, fmt):
    data = path.read_bytes()
    if fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg")
    elif fmt == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert data.startswith(b"%PDF")


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
@pytest.mark.parametrize("kind", ["decay", "sum", "compare", "probe"])
def test_each_kind_writes_a_valid_file(store, tmp_path, capsys, kind, fmt):
    out = tmp_path / f"{kind}.{fmt}"
    ids = {"decay": [store["k2"]], "sum": [store["k2"]], "compare": [store["k2"], store["k1"]],
           "probe": [store["probe"]]}[kind]
    extra = ["--sample", "3"] if kind == "sum" else []
    assert plot(store, *ids, "--kind", kind, *extra, "--out", str(out)) == 0
    assert_valid(out, fmt)
    assert f"wrote {out}" in capsys.readouterr().err


def test_svg_is_byte_identical_across_renders(store, tmp_path):
    for kind, ids in (("decay", [store["k2"]]), ("compare", [store["k2"], store["k1"]]), ("sum", [store["k2"]])):
        a, b = tmp_path / f"a-{kind}.svg", tmp_path / f"b-{kind}.svg"
        assert plot(store, *ids, "--kind", kind, "--out", str(a)) == 0
        assert plot(store, *ids, "--kind", kind, "--out", str(b)) == 0
        assert a.read_bytes() == b.read_bytes(), kind
        assert b"<dc:date>" not in a.read_bytes()


def test_default_kind_follows_the_session(store, tmp_path):
    out = tmp_path / "p.svg"
    # A probe session draws the probe figure (its decay is refused: see the bad-input test).
    assert plot(store, store["probe"], "--out", str(out)) == 0 and out.stat().st_size > 0


def test_decay_uses_the_same_numbers_as_compare_and_steps_axis_for_k2(store, tmp_path):
    from lhe_tui.analysis.compare import session_curves

    db = open_database(store["db"], create=False, write=False)
    d, c = decay_curves(db, store["k2"], n_boot=50), session_curves(db, store["k2"])
    assert d.task == c.task_curve and d.turn == c.turn_curve and d.horizon == c.horizon_05 and d.k == 2
    assert all(lo <= t <= hi for lo, t, hi in zip(d.task_low, d.task, d.task_high))


def test_figures_restore_global_matplotlib_state(store, tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    assert plot(store, store["k1"], "--out", str(tmp_path / "x.svg")) == 0
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize("case, expect", [
    ("kind", "invalid choice"),
    ("ext", "unknown figure format"),
    ("folder", "does not exist"),
    ("unwritable", "cannot write"),
    ("empty", "no stored turns"),
    ("unknown", "no session"),
    ("probe_on_run", "not a target-turn probe"),
    ("decay_on_probe", "--kind probe"),
    ("sample", "no sample 99"),
])
def test_bad_input_is_one_line(store, tmp_path, capsys, case, expect):
    out = str(tmp_path / "f.svg")
    args = {"kind": [store["k1"], "--kind", "pie", "--out", out],
            "ext": [store["k1"], "--out", str(tmp_path / "f.jpg")],
            "folder": [store["k1"], "--out", str(tmp_path / "nope" / "f.svg")],
            "unwritable": [store["k1"], "--out", str(tmp_path / "taken.svg")],   # a folder of that name
            "empty": [store["empty"], "--out", out],
            "unknown": ["zzzz-nope", "--out", out],
            "probe_on_run": [store["k1"], "--kind", "probe", "--out", out],
            "decay_on_probe": [store["probe"], "--kind", "decay", "--out", out],
            "sample": [store["k1"], "--kind", "sum", "--sample", "99", "--out", out]}[case]
    (tmp_path / "taken.svg").mkdir()
    code = plot(store, *args)
    err = capsys.readouterr().err
    assert code != 0
    assert expect in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_extra_names_it_in_one_line(store, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code = plot(store, store["k1"], "--out", str(tmp_path / "f.svg"))
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip() == "lhe-tui: error: figures need matplotlib, the optional `figures` extra: pip install -c constraints.txt -e '.[figures]'"
    assert not (tmp_path / "f.svg").exists()
