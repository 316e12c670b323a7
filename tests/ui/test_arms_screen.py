"""Arms side by side (issue 15), the TUI: one live run per arm on the same keys, shown in one view (a table
aligned by turn, one chart with a curve per arm, a status line per arm), keys that act on the focused arm or
on all, and a stored group replayed side by side."""

from __future__ import annotations

import asyncio

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.common.errors import ConfigError, StoreError
from lhe_tui.store.database import open_database
from lhe_tui.store.queries import load_events, load_samples, load_session, load_turns
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.arms import load_group, parse_arms, start_arm_runs
from lhe_tui.ui.launch import group_quit_message
from lhe_tui.ui.screens.arms import ArmsScreen

from .conftest import ENDLESS
from .test_run_view import wait_until

# A sim that never slips: the injected arm's wrong answers come from its injected history alone.
CLEAN = dict(sim_delay=0.002, sim_base_error=0.0, sim_growth=0.0, sim_conditioning=0.0, sim_format_miss=0.0)
BASE = RunConfig(samples=4, turns=40, seed=7, **CLEAN)
ARMS = ["plain:", "inj:--inject-at=20:5"]


async def arms_screen(app, pilot) -> ArmsScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ArmsScreen))
    return app.screen


async def finished(app, pilot) -> ArmsScreen:
    screen = await arms_screen(app, pilot)
    await wait_until(pilot, lambda: all(p.live is not None and p.live.finished for p in screen.panes), timeout=60)
    await pilot.pause(0.3)
    screen.flush()
    screen.refresh_metrics()
    await pilot.pause()
    return screen


async def drive_arms(launch) -> None:
    """Run a launch's two arms to their end without a screen, as the CLI's headless arms would."""
    plain, inj = launch.arms
    await asyncio.gather(asyncio.to_thread(asyncio.run, plain.drive()),
                         asyncio.to_thread(asyncio.run, inj.drive(after=plain)))


async def stored_arms(db_path):
    """BASE's two ARMS run to their end and stored: the launch (its group id and arms' sessions)."""
    launch = start_arm_runs(BASE, parse_arms(BASE, ARMS), db_path)
    await drive_arms(launch)
    return launch


def stored_group(db_path, group_id: str) -> list[dict]:
    db = open_database(db_path)
    try:
        return list(db.query("SELECT id, arm, group_id, status FROM sessions WHERE group_id = ? ORDER BY rowid",
                             [group_id]))
    finally:
        db.conn.close()


def test_parse_arms_builds_each_arm_over_the_base_config():
    arms = parse_arms(BASE, ARMS)
    assert [name for name, _ in arms] == ["plain", "inj"]
    assert arms[0][1].inject_at == () and [(i.turn, i.offset) for i in arms[1][1].inject_at] == [(20, 5)]
    assert arms[1][1].samples == 4 and arms[1][1].seed == 7     # the task is the base run's


@pytest.mark.parametrize(("arms", "message"), [
    ([], "at least one --arm"),
    ([("a", BASE), ("a", BASE)], "'a' is given twice"),
    ([("a", BASE), ("b", RunConfig(samples=4, turns=40, seed=8, **CLEAN))], "arm b: arms share one task"),
])
def test_bad_arms_are_one_line(db_path, arms, message):
    with pytest.raises(ConfigError, match=message) as info:
        start_arm_runs(BASE, arms, db_path)
    assert "\n" not in str(info.value)
    assert not db_path.exists()                    # refused before the store is touched


def test_an_unknown_group_is_one_line(db_path, stored_session):
    with pytest.raises(StoreError, match="no group 'grp-nope'") as info:
        load_group(db_path, "grp-nope")
    assert "\n" not in str(info.value)


async def test_two_live_arms_run_side_by_side_on_the_same_keys(db_path):
    launch = start_arm_runs(BASE, parse_arms(BASE, ARMS), db_path)
    app = LheApp(db_path, arms=launch)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await finished(app, pilot)
        # both arms' tables, aligned by turn: the injected arm carries +5 from turn 21, the plain one does not
        header = screen.table.header_text()
        assert "plain" in header and "inj" in header and "answer" in header
        assert screen.table.rows == 40
        row20, row21, row19 = (screen.table.row_text(t) for t in (20, 21, 19))
        assert "⚡" in row20 and "≠" not in row20                # injected there; the answers still agree
        assert "≠" in row21 and "1st err" in row21                # the inj arm's first error, marked
        assert "≠" not in row19 and "1st err" not in row19
        inj = screen.panes[1].model.sample(0)
        assert inj.first_error == 21 and screen.panes[0].model.sample(0).first_error is None
        # one chart, a task curve per arm
        await wait_until(pilot, lambda: len([s for s in screen.plot.figure.series if s.label]) == 2)
        labels = [s.label for s in screen.plot.figure.series if s.label]
        assert labels == ["plain", "inj"]
        assert [m.x for m in screen.plot.figure.marks] == [20]
        status = str(screen.status.content)
        assert "plain finished" in status and "inj finished" in status and "1st err t21" in status
        # 160 wide: the chart beside the table, the table as wide as its columns (keys and words shown)
        table, plot = screen.table.region, screen.plot.region
        assert plot.x >= table.right and plot.y == table.y and plot.width >= 60
        assert "keys" in header and "result" in header
    members = stored_group(db_path, launch.group_id)
    assert [(m["arm"], m["status"]) for m in members] == [("plain", "finished"), ("inj", "finished")]
    assert {m["id"] for m in members} == {arm.live.session_id for arm in launch.arms}
    db = open_database(db_path)
    keys = [[s["keys"] for s in load_samples(db, m["id"])] for m in members]
    assert keys[0] == keys[1] and len(keys[0]) == 4               # the same task: the same keys
    assert load_session(db, members[0]["id"])["dictionary"] == load_session(db, members[1]["id"])["dictionary"]
    assert len(load_turns(db, members[0]["id"])) == len(load_turns(db, members[1]["id"])) == 160
    message = group_quit_message(launch, db_path)          # what the terminal says after the app
    assert f"group {launch.group_id}" in message and f"`lhe-tui replay {launch.group_id}`" in message
    assert f"plain {members[0]['id']} finished" in message and f"inj {members[1]['id']} finished" in message


async def test_keys_act_on_the_focused_arm_only(db_path):
    base = RunConfig(samples=2, turns=ENDLESS, seed=3, **CLEAN)
    launch = start_arm_runs(base, parse_arms(base, ["a:", "b:"]), db_path)
    app = LheApp(db_path, arms=launch)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await arms_screen(app, pilot)
        await wait_until(pilot, lambda: all(p.model.samples and p.model.sample(0).last_turn >= 3
                                            for p in screen.panes))
        assert screen.focused_arm == 0 and not screen.all_arms
        # 100 wide: the chart under the table, both full width
        table, plot = screen.table.region, screen.plot.region
        assert plot.y >= table.bottom and plot.width == table.width == 100 and plot.height >= 10
        await pilot.press("tab")
        assert screen.focused_arm == 1
        assert "▶ b" in screen.table.header_text() and "▶ a" not in screen.table.header_text()
        await pilot.press("space")                                 # pauses b alone
        await wait_until(pilot, lambda: screen.panes[1].model.status == "paused")
        assert screen.panes[0].model.status == "running"
        await pilot.press("i")                                     # injects into b's watched sample alone
        await wait_until(pilot, lambda: screen.panes[1].model.sample(0).injections)
        (turn,) = screen.panes[1].model.sample(0).injections
        await pilot.press("a")                                     # every arm: x stops both
        assert screen.all_arms
        await pilot.press("x")
        await wait_until(pilot, lambda: all(p.live.finished for p in screen.panes), timeout=20)
    db = open_database(db_path)
    a, b = (arm.live.session_id for arm in launch.arms)
    assert load_events(db, a, ("injected",)) == []
    (event,) = load_events(db, b, ("injected",))
    assert (event["sample"], event["turn"]) == (0, turn)
    assert [load_session(db, sid)["status"] for sid in (a, b)] == ["interrupted", "interrupted"]


async def test_group_replay_shows_both_arms_in_step(db_path):
    launch = await stored_arms(db_path)      # run without a screen, then the stored group replayed
    group = load_group(db_path, launch.group_id[:-2])   # its start is enough
    assert [name for name, _ in group.arms] == ["plain", "inj"]
    app = LheApp(db_path, group=group, replay_speed=float("inf"))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await arms_screen(app, pilot)
        await wait_until(pilot, lambda: screen.player.at_end)
        screen.flush()
        screen.refresh_metrics()
        await pilot.pause()
        assert [p.model.session_id for p in screen.panes] == [a.live.session_id for a in launch.arms]
        assert screen.table.rows == 40 and "≠" in screen.table.row_text(21)
        await wait_until(pilot, lambda: len([s for s in screen.plot.figure.series if s.label]) == 2)
        assert "REPLAY" in str(screen.status.content)
        # stepping goes one turn of the watched sample back in every arm
        await pilot.press("comma")
        assert [p.model.sample(0).last_turn for p in screen.panes] == [39, 39]
        assert not screen.player.playing
        await pilot.press("full_stop")
        assert [p.model.sample(0).last_turn for p in screen.panes] == [40, 40]
        # the speed ladder and home act on every arm's player (shared with the run view: ReplayKeys, SpeedLadder)
        await pilot.press("minus")
        assert [p.speed for p in screen.player.players] == [50.0, 50.0]
        rebuilt = []
        rebuild = screen._rebuild
        screen._rebuild = lambda per_arm: (rebuilt.append(len(per_arm)), rebuild(per_arm))[1]
        await pilot.press("home")
        assert rebuilt == [2]                 # (at 50x the short stored run may be over already)
        await wait_until(pilot, lambda: screen.player.at_end)
        screen.flush()
        assert [p.model.sample(0).last_turn for p in screen.panes] == [40, 40]
        db = open_database(db_path)
        sessions = [arm.live.session_id for arm in launch.arms]

        def injections() -> tuple:   # as stored, and as the panes hold them
            return ([load_events(db, sid, ("injected",)) for sid in sessions],
                    [dict(p.model.sample(s).injections) for p in screen.panes for s in range(len(p.model.samples))])

        before = injections()
        assert before[0][0] == [] and len(before[0][1]) >= 1     # inj has its scripted injection, plain none
        await pilot.press("i")                                     # a replay cannot inject: nothing happens
        await pilot.pause()
        assert injections() == before
        db.conn.close()


async def test_inject_dialog_acts_on_the_focused_arm(db_path):
    from lhe_tui.ui.screens.inject import InjectScreen

    base = RunConfig(samples=2, turns=ENDLESS, seed=5, **CLEAN)
    launch = start_arm_runs(base, parse_arms(base, ["a:", "b:"]), db_path)
    app = LheApp(db_path, arms=launch)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await arms_screen(app, pilot)
        await wait_until(pilot, lambda: all(p.model.samples and p.model.sample(0).last_turn >= 3
                                            for p in screen.panes))
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, InjectScreen))
        assert "Into a:" in str(app.screen.query_one("#inject-about").content)
        await pilot.press("plus", "7", "enter")
        await wait_until(pilot, lambda: screen.panes[0].model.sample(0).injections)
        (event,) = screen.panes[0].model.sample(0).injections.values()
        assert event.injected == event.original + 7
        await pilot.press("a", "x")
        await wait_until(pilot, lambda: all(p.live.finished for p in screen.panes), timeout=20)
        screen.flush()
        assert screen.panes[1].model.sample(0).injections == {}
    db = open_database(db_path)
    assert len(load_events(db, launch.arms[0].live.session_id, ("injected",))) == 1
    assert load_events(db, launch.arms[1].live.session_id, ("injected",)) == []


async def test_g_on_an_arm_in_the_sessions_screen_replays_its_group(db_path):
    from textual.widgets import DataTable

    from lhe_tui.ui.screens.sessions import SessionsScreen

    launch = await stored_arms(db_path)
    plain, inj = launch.arms
    app = LheApp(db_path, replay_speed=float("inf"))
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and
                         app.screen.query_one(DataTable).row_count == 3)
        table = app.screen.query_one(DataTable)
        # The group's line first, its arms under it in the order given, each named before its model.
        assert str(table.get_row_at(0)[0]) == launch.group_id
        assert str(table.get_row_at(0)[4]) == "group of 2 arms: plain, inj"
        models = [str(table.get_row_at(i)[4]) for i in (1, 2)]
        assert models[0].startswith("arm plain: sim/") and models[1].startswith("arm inj: sim/")
        await pilot.press("down", "g")       # g on an arm: its group
        screen = await arms_screen(app, pilot)
        assert [p.model.session_id for p in screen.panes] == [plain.live.session_id, inj.live.session_id]
        assert "REPLAY" in str(screen.status.content) and launch.group_id in str(screen.status.content)


async def test_enter_on_a_groups_line_replays_its_arms_side_by_side(db_path):
    from textual.widgets import DataTable

    from lhe_tui.ui.screens.sessions import SessionsScreen

    launch = await stored_arms(db_path)
    plain, inj = launch.arms
    app = LheApp(db_path, replay_speed=float("inf"))
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and
                         app.screen.query_one(DataTable).row_count == 3)
        assert app.screen.selected_id() == launch.group_id
        await pilot.press("enter")
        screen = await arms_screen(app, pilot)
        assert [p.model.session_id for p in screen.panes] == [plain.live.session_id, inj.live.session_id]


async def test_g_on_a_plain_session_says_it_is_not_an_arm(db_path, stored_session):
    from textual.widgets import DataTable

    from lhe_tui.ui.screens.sessions import SessionsScreen

    app = LheApp(db_path)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and
                         app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        assert any("not an arm of a group" in str(n.message) for n in app._notifications)


def footer_keys(screen) -> dict[str, int]:
    """The footer's keys shown, each with the column its label ends at."""
    return {key.key: key.region.right for key in screen.query("FooterKey") if key.region.width}


@pytest.mark.parametrize("live", [True, False], ids=["live", "replay"])
async def test_the_arms_footer_keeps_quit_at_100_columns(db_path, live):
    launch = start_arm_runs(BASE, parse_arms(BASE, ARMS), db_path)
    if live:
        app = LheApp(db_path, arms=launch)
    else:
        await drive_arms(launch)
        app = LheApp(db_path, group=load_group(db_path, launch.group_id), replay_speed=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await arms_screen(app, pilot)
        await pilot.pause(0.3)
        keys = footer_keys(screen)
        assert "q" in keys and keys["q"] <= 100
        if not live:
            await wait_until(pilot, lambda: screen.player.at_end)
            await pilot.press("comma")                # one turn back: paused short of the end
            await wait_until(pilot, lambda: not screen.player.at_end)
            screen.flush()
            await pilot.pause()
            assert "REPLAY paused ‖" in str(screen.status.content)
        else:
            screen.action_stop()
            await app.workers.wait_for_complete()
