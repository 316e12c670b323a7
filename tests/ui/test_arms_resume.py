"""A stored group in the arms view (issue 15): `lhe-tui resume grp-…` runs its unfinished arms live again with
their stored turns shown from the start; `F` in a group replay forks every arm at the cursor's turn into a new
group that runs live in the replay's place; `lhe-tui fork grp-… --turn T` without --headless opens that view."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from lhe_tui.runs.arms import plan_group, prepare_group
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import ForkEdit, Lineage
from lhe_tui.common.errors import StoreError
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_session, load_turns
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.arms import load_group, resume_arm_runs
from lhe_tui.ui.screens.arms import ArmsScreen
from lhe_tui.ui.screens.fork import GroupForkScreen

from .conftest import ENDLESS
from .test_run_view import wait_until

# Errs now and then (a first error to see), never misses the answer's format (every turn can be edited).
SIM = dict(sim_delay=0.0, sim_base_error=0.03, sim_growth=0.0, sim_conditioning=0.0, sim_format_miss=0.0)
BASE = RunConfig(samples=2, turns=30, seed=7, **SIM)


def stored_group(db_path: Path, arms: list[str]) -> tuple[str, dict[str, str]]:
    """Run the arms headless into the store: (group id, {arm: session id})."""
    db = open_database(db_path)
    try:
        plan = plan_group(BASE, arms)
        group = prepare_group(plan, db, stream_deltas=False)
        with ThreadPoolExecutor(1) as pool:       # its own event loop (an async test has one going)
            pool.submit(asyncio.run, group.run()).result()
        return plan.group_id, {arm.name: arm.session_id for arm in plan.arms}
    finally:
        db.conn.close()


def sessions(db_path: Path) -> list[dict]:
    db = open_database(db_path, create=False)
    try:
        return list(db.query("SELECT id, arm, group_id, status FROM sessions ORDER BY rowid"))
    finally:
        db.conn.close()


def turn_count(db_path: Path, session_id: str) -> int:
    db = open_database(db_path, create=False)
    try:
        return db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    finally:
        db.conn.close()


@pytest.fixture
def interrupted_group(db_path: Path) -> tuple[str, dict[str, str]]:
    """Arm a ran all 2 x 30 turns; arm b stopped part way at its token budget."""
    group_id, ids = stored_group(db_path, ["a:", "b:--max-tokens-total=20000"])
    assert 0 < turn_count(db_path, ids["b"]) < 60 and turn_count(db_path, ids["a"]) == 60
    return group_id, ids


async def test_a_resumed_group_shows_its_stored_turns_and_runs_to_the_end(db_path, interrupted_group):
    group_id, ids = interrupted_group
    stored = turn_count(db_path, ids["b"])
    launch = resume_arm_runs(db_path, group_id[:-2], {"max_tokens_total": 10**7})   # its start is enough
    assert launch.group_id == group_id and launch.resumed
    assert [(arm.name, arm.live.session_id, arm.live.kind) for arm in launch.arms] == [("b", ids["b"], "resume")]
    assert "a had finished" in launch.note
    app = LheApp(db_path, arms=launch)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ArmsScreen) and app.screen.is_mounted)
        screen = app.screen
        pane = screen.panes[0]
        # from the start: the stored turns are in the pane, turn 1 on, before the live ones
        assert sum(len(s.records) for s in pane.model.samples) >= stored
        assert [r.turn for r in pane.model.sample(0).records][:3] == [1, 2, 3]
        await wait_until(pilot, lambda: pane.live.finished, timeout=60)
        await pilot.pause(0.3)
        screen.flush()
        await pilot.pause()
        assert pane.model.status == "finished" and sum(len(s.records) for s in pane.model.samples) == 60
        assert [r.turn for r in pane.model.sample(0).records] == list(range(1, 31))
        assert screen.table.rows == 30
        assert "b finished" in str(screen.status.content)
        assert any("a had finished" in str(n.message) for n in app._notifications)
    assert turn_count(db_path, ids["b"]) == 60
    assert {s["arm"]: s["status"] for s in sessions(db_path)} == {"a": "finished", "b": "finished"}


def test_a_finished_group_cannot_be_resumed_in_one_line(db_path):
    group_id, _ids = stored_group(db_path, ["a:", "b:"])
    with pytest.raises(StoreError, match=f"group {group_id} is finished") as info:
        resume_arm_runs(db_path, group_id)
    assert "\n" not in str(info.value)


async def replayed_group(app: LheApp, pilot) -> ArmsScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ArmsScreen) and app.screen.player is not None)
    screen = app.screen
    await wait_until(pilot, lambda: screen.player.at_end)
    screen.flush()
    await pilot.pause()
    return screen


async def open_dialog(pilot, screen: ArmsScreen, turn: int) -> GroupForkScreen:
    assert screen.table.go_to_turn(turn)
    await pilot.pause()
    await pilot.press("F")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, GroupForkScreen))
    return pilot.app.screen


def error_line(dialog: GroupForkScreen) -> str:
    return str(dialog.query_one("#fork-error", Static).content)


async def test_F_in_a_group_replay_forks_every_arm_healed_and_the_new_group_runs_in_place(db_path):
    group_id, ids = stored_group(db_path, ["plain:", "inj:--inject-at=8:5"])
    app = LheApp(db_path, group=load_group(db_path, group_id), replay_speed=math.inf)
    async with app.run_test(size=(160, 45)) as pilot:
        replay = await replayed_group(app, pilot)
        dialog = await open_dialog(pilot, replay, 10)
        assert dialog.query_one("#fork-turn", Input).value == "10"
        assert "plain, inj" in str(dialog.query_one("#fork-about", Static).content)
        await pilot.press("a", "h")                 # all samples, healed; heal leaves the focus on the button
        await pilot.pause()
        assert dialog.edit == "heal"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ArmsScreen) and app.screen.is_live)
        live = app.screen
        assert live.group_id != group_id and [p.name for p in live.panes] == ["plain", "inj"]
        # the fork's inherited turns are in the panes from the start
        assert all(len(p.model.sample(0).records) >= 10 for p in live.panes)
        await wait_until(pilot, lambda: all(p.live.finished for p in live.panes), timeout=60)
        await pilot.pause(0.3)
        live.flush()
        live.refresh_metrics()
        await pilot.pause()
        assert [p.model.status for p in live.panes] == ["finished", "finished"]
        assert all(len(p.model.sample(s).records) == 30 for p in live.panes for s in (0, 1))
        assert str(live.status.content).count("fork @10") == 2
        # the inherited turns are dimmed in the arms table, the ones the fork played are not
        def dimmed(turn: int) -> bool:
            answers = [seg for seg in live.table._draw_row(turn - 1, cursor=False)
                       if seg.text.strip() and seg.text != "│"][3:]      # after turn, keys, gold
            return bool(answers) and all(seg.style is not None and seg.style.dim for seg in answers)
        assert dimmed(5) and dimmed(10) and not dimmed(11) and not dimmed(30)
        await wait_until(pilot, lambda: any(m.label == "fork @10" for m in live.plot.figure.marks))
        # the replay's view was replaced, not stacked under the live one
        assert not [s for s in app.screen_stack if isinstance(s, ArmsScreen) and s.player is not None]
        new_group = live.group_id
    forks = [s for s in sessions(db_path) if s["group_id"] == new_group]
    assert [f["arm"] for f in forks] == ["plain", "inj"] and new_group.startswith("grp-")
    db = open_database(db_path, create=False)
    for fork in forks:
        session = load_session(db, fork["id"])
        lineage = Lineage.from_row(session)
        assert (lineage.parent_id, lineage.fork_turn, lineage.edit) == (ids[fork["arm"]], 10, ForkEdit("heal"))
        assert (lineage.group_id, lineage.arm) == (new_group, fork["arm"]) and session["status"] == "finished"
        turns = load_turns(db, fork["id"])
        assert len(turns) == 60 and sum(t.inherited for t in turns) == 20
        at_fork = [t for t in turns if t.turn == 10]
        assert all(t.history_answer == t.gold_sum for t in at_fork)
    db.conn.close()


async def test_a_bad_group_fork_is_one_line_in_the_dialog_and_stores_nothing(db_path):
    group_id, ids = stored_group(db_path, ["a:", "b:"])
    db = open_database(db_path)
    with db.conn:   # arm b, s0 turn 5: a format miss (no answer in its history to edit)
        db.execute("UPDATE turns SET model_answer = NULL, history_answer = NULL, answer_status = 'format', "
                   "correct = 0 WHERE session_id = ? AND sample = 0 AND turn = 5", [ids["b"]])
    db.conn.close()
    before = sessions(db_path)
    app = LheApp(db_path, group=load_group(db_path, group_id), replay_speed=math.inf)
    async with app.run_test(size=(160, 45)) as pilot:
        replay = await replayed_group(app, pilot)
        dialog = await open_dialog(pilot, replay, 5)
        dialog.set_edit("offset")
        await pilot.pause()
        dialog.query_one("#fork-amount", Input).value = "5"
        await pilot.click("#fork-go")
        await wait_until(pilot, lambda: error_line(dialog) != "")
        text = error_line(dialog)
        assert text.startswith("arm b:") and "turn 5 has no valid answer" in text and "\n" not in text
        for turn, amount, reason in (("5", "x", "not a whole number"), ("99", "3", "within 1..30")):
            dialog.query_one("#fork-turn", Input).value = turn
            dialog.query_one("#fork-amount", Input).value = amount
            await pilot.pause(0.3)      # a Button ignores clicks during its press effect
            await pilot.click("#fork-go")
            await wait_until(pilot, lambda: reason in error_line(dialog), timeout=3)
            assert "\n" not in error_line(dialog) and app.screen is dialog
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is replay
    assert sessions(db_path) == before


async def test_F_while_the_arms_run_says_why_and_opens_nothing(db_path):
    from lhe_tui.ui.arms import parse_arms, start_arm_runs

    base = RunConfig(samples=2, turns=ENDLESS, seed=3, sim_delay=0.002)
    launch = start_arm_runs(base, parse_arms(base, ["a:", "b:"]), db_path)
    app = LheApp(db_path, arms=launch)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ArmsScreen))
        screen = app.screen
        await wait_until(pilot, lambda: all(p.model.samples and p.model.sample(0).last_turn >= 2
                                            for p in screen.panes))
        await pilot.press("F")
        await pilot.pause()
        assert app.screen is screen
        assert any("still running" in str(n.message) for n in app._notifications)
        await pilot.press("a", "x")
        await wait_until(pilot, lambda: all(p.live.finished for p in screen.panes), timeout=20)
    assert len(sessions(db_path)) == 2


# ---- the CLI into the TUI -------------------------------------------------------------------------------
@pytest.fixture
def launched(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    def fake_launch(args, **kwargs):
        calls.append(kwargs)
        return 0

    monkeypatch.setattr("lhe_tui.ui.launch.launch_tui", fake_launch)
    return calls


def test_resume_of_a_group_without_headless_opens_the_arms_view(db_path, interrupted_group, launched):
    from lhe_tui.cli.main import main

    group_id, _ids = interrupted_group
    assert main(["resume", group_id[:-2], "--max-tokens-total", "900000", "--db", str(db_path)]) == 0
    (call,) = launched
    assert call["resume_group"] == group_id
    assert call["resume_overrides"] == {"max_tokens_total": 900000}


def test_resume_of_a_finished_group_is_refused_before_the_app(db_path, launched, capsys):
    from lhe_tui.cli.main import main

    group_id, _ids = stored_group(db_path, ["a:", "b:"])
    assert main(["resume", group_id, "--db", str(db_path)]) != 0
    assert launched == []
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"group {group_id} is finished" in line


def test_fork_of_a_group_without_headless_stores_the_forks_and_opens_their_view(db_path, launched):
    from lhe_tui.cli.main import main

    group_id, ids = stored_group(db_path, ["a:", "b:"])
    assert main(["fork", group_id, "--turn", "12", "--heal", "--db", str(db_path)]) == 0
    (call,) = launched
    forks = [s for s in sessions(db_path) if s["group_id"] not in (None, group_id)]
    assert [f["arm"] for f in forks] == ["a", "b"] and {f["group_id"] for f in forks} == {call["resume_group"]}
    db = open_database(db_path, create=False)
    parents = [Lineage.from_row(load_session(db, f["id"])).parent_id for f in forks]
    db.conn.close()
    assert parents == [ids["a"], ids["b"]]
