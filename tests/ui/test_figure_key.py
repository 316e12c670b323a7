"""`P` in the run view writes the watched session's figure beside the store and toasts the path (issue 16)."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from lhe_tui.store.database import open_database  # noqa: E402
from lhe_tui.store.replay import SessionReplay  # noqa: E402
from lhe_tui.ui.app import LheApp  # noqa: E402

from .test_run_view import SIZE, wait_until  # noqa: E402


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_P_writes_the_decay_figure_and_toasts_its_path(db_path, stored_session):
    app = LheApp(db_path, replay=SessionReplay(open_database(db_path), stored_session), replay_autoplay=False)
    expected = db_path.parent / "figures" / f"{stored_session}-decay.svg"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("P")
        await wait_until(pilot, lambda: any(m.startswith("wrote ") for m in toasts(app)), timeout=30)
        await app.workers.wait_for_complete()
    assert f"wrote {expected.resolve()}" in toasts(app)
    assert expected.read_bytes().lstrip().startswith(b"<?xml")


async def test_P_without_matplotlib_toasts_the_one_line_error(db_path, stored_session, monkeypatch):
    from lhe_tui.reports import figures

    def missing():
        raise figures.FiguresUnavailable(f"figures need matplotlib, the optional `figures` extra: {figures.EXTRA_HINT}")

    monkeypatch.setattr(figures, "_matplotlib", missing)
    app = LheApp(db_path, replay=SessionReplay(open_database(db_path), stored_session), replay_autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("P")
        await wait_until(pilot, lambda: any("pip install" in m for m in toasts(app)), timeout=30)
        await app.workers.wait_for_complete()
    assert not (db_path.parent / "figures").exists()
