"""Arms side by side (issue 15), the TUI's half: start one live run per arm over one shared task, and replay a
stored group's arms together. No Textual in this module (the arms screen, lhe_tui.ui.screens.arms, draws).

- `parse_arms(base, ["plain:", "inj:--inject-at=20:5"])` turns `--arm NAME:FLAGS` texts into
  (name, RunConfig) pairs over the run's own config (what the CLI will do with `--arm`).
- `start_arm_runs(base, arms, db_path)` checks them (one line on bad input, before the app starts) and
  returns an `ArmsLaunch`: a new group id and one `LiveRun` per arm, each its own run process and session,
  all on the same `Task` object (same dictionary and keys), each stored with `Lineage(group_id, arm)`.
- `load_group(db_path, given)` opens a stored group's sessions as replays, in the order the arms were given;
  `GroupPlayer` plays them together: one clock for all (each arm at its recorded pace since its own start,
  as they ran side by side), steps by one turn of the watched sample in every arm.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lhe_tui.core.config import RunConfig
from lhe_tui.core.events import Event, RunStarted
from lhe_tui.common.errors import ConfigError
from lhe_tui.store.replay import SessionReplay
from lhe_tui.store.replay_player import ReplayPlayer, SpeedLadder

if TYPE_CHECKING:
    from lhe_tui.task.model import Task
    from lhe_tui.ui.live import LiveRun

MAX_ARMS = 6
"""The side-by-side view's limit (one theme colour each, and what fits at 100 columns)."""

TASK_FIELDS = ("seed", "k", "samples", "turns", "dict_size", "min_value", "max_value", "dataset", "dataset_offset",
               "data")
"""RunConfig fields that define the task: every arm must have the base run's."""


START_WAIT_S = 10.0
"""How long an arm's start waits for the previous arm's session to be stored (see ArmRun.drive)."""


@dataclass
class ArmRun:
    name: str
    live: LiveRun
    started: threading.Event = field(default_factory=threading.Event)   # its session is stored

    def __post_init__(self) -> None:
        self.live.subscribe(self._seen)

    def _seen(self, event: Event) -> None:
        if type(event) is RunStarted:
            self.started.set()

    async def drive(self, after: ArmRun | None = None) -> str:
        """Run the arm (from a thread worker, as LiveRun.drive). `after`: the previous arm, whose session must
        be stored first (or its run over, or START_WAIT_S gone): the store lists a group's sessions in the
        order they were created, which is then the order the arms were given. The runs still go on side by
        side; each waits only for the one before it to start (~20 ms)."""
        if after is not None:
            deadline = time.monotonic() + START_WAIT_S
            while not (after.started.is_set() or after.live.finished) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        return await self.live.drive()


@dataclass
class ArmsLaunch:
    """What the arms screen runs: one live run per arm, linked by `group_id`. `resumed`: the arms continue
    stored sessions (a group resumed, or a group fork): the screen shows their stored turns first."""

    group_id: str
    arms: list[ArmRun]
    resumed: bool = False
    note: str = ""          # said once the view is up (e.g. the arms that had finished and are not shown)

    @property
    def runs(self) -> list[LiveRun]:
        return [arm.live for arm in self.arms]


def parse_arms(base: RunConfig, texts: Iterable[str]) -> list[tuple[str, RunConfig]]:
    """`--arm NAME:FLAGS` texts as (name, config) pairs: each arm's flags over the base run's config (the
    engine's rules, lhe_tui.runs.arms.arm_configs)."""
    from lhe_tui.runs.arms import arm_configs

    return arm_configs(base, list(texts))


def check_arms(base: RunConfig, arms: list[tuple[str, RunConfig]]) -> None:
    """ConfigError, one line: no arms, too many, a name given twice, or an arm whose task differs."""
    if not arms:
        raise ConfigError("arms: give at least one --arm NAME:FLAGS")
    if len(arms) > MAX_ARMS:
        raise ConfigError(f"arms: at most {MAX_ARMS} side by side, got {len(arms)}")
    seen: set[str] = set()
    for name, config in arms:
        if name in seen:
            raise ConfigError(f"arms: the name {name!r} is given twice")
        seen.add(name)
        changed = [field for field in TASK_FIELDS if getattr(config, field) != getattr(base, field)]
        if changed:
            raise ConfigError(f"arm {name}: arms share one task (dictionary and keys); "
                              f"{', '.join(changed)} cannot differ from the run's")


def start_arm_runs(base: RunConfig, arms: list[tuple[str, RunConfig]], db_path: Path, *,
                   group_id: str | None = None, task: Task | None = None) -> ArmsLaunch:
    """Check every arm here (bad input fails before the app starts, as `start_live_run`) and return the live
    runs, not started: the arms screen starts each in a process of its own."""
    from lhe_tui.runs.arms import plan_arms
    from lhe_tui.providers.factory import check_credentials
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.runs.run_process import RunJob
    from lhe_tui.store.database import open_database
    from lhe_tui.ui.live import LiveRun

    base.validate()
    check_arms(base, arms)
    prepared = []
    for name, config in arms:
        try:
            config.validate()
            check_credentials(config)
        except ConfigError as exc:
            raise ConfigError(f"arm {name}: {exc}") from None
        prepared.append((name, *prepare_own_server(config)[:2]))
    # once: every arm gets the same dictionary and keys; a session id and lineage each
    plan = plan_arms(base, [(name, config) for name, _server, config in prepared], group_id=group_id, task=task)
    open_database(db_path).conn.close()     # creates the store (a foreign or corrupt file fails here)
    runs = []
    for arm, (_name, server, _config) in zip(plan.arms, prepared):
        job = RunJob("run", str(db_path), arm.config, arm.session_id, task=plan.task, stream_deltas=False,
                     lineage=arm.lineage)
        runs.append(ArmRun(arm.name, LiveRun(job, server=server)))
    return ArmsLaunch(plan.group_id, runs)


def resume_arm_runs(db_path: Path, group_id: str, overrides: dict | None = None) -> ArmsLaunch:
    """`lhe-tui resume grp-…` (and a group fork) in the TUI: the group's unfinished arms, each continuing
    its session in a run process of its own (its lineage comes with its ResumeState). Checked here, one line
    on bad input (an unknown or finished group, an arm another process runs, a missing API key), before
    anything starts. `overrides`: RunConfig fields given again (a new --max-cost, --rpm, ...), every arm."""
    from dataclasses import replace

    from lhe_tui.runs.arms import unfinished_arms
    from lhe_tui.providers.factory import check_credentials
    from lhe_tui.providers.local_provider import prepare_own_server
    from lhe_tui.runs.run_process import RunJob
    from lhe_tui.runner.budget import budget_for
    from lhe_tui.store.database import open_database
    from lhe_tui.store.groups import group_members, resolve_group_id
    from lhe_tui.ui.live import LiveRun

    db = open_database(db_path, create=False)
    try:
        group_id = resolve_group_id(db, group_id)
        members = group_members(db, group_id)
        arms = unfinished_arms(db, group_id)
    finally:
        db.conn.close()
    if len(arms) > MAX_ARMS:
        raise ConfigError(f"group {group_id}: {len(arms)} arms to resume, the view shows at most {MAX_ARMS}")
    runs = []
    for arm in arms:
        state = arm.state
        try:
            if overrides:
                state.config = replace(state.config, **overrides).validate()
                budget_for(state.config)
            check_credentials(state.config)
        except ConfigError as exc:
            raise ConfigError(f"arm {arm.name}: {exc}") from None
        server, config, _ = prepare_own_server(state.config)
        job = RunJob("resume", str(db_path), config, arm.session_id, resume_state=state, stream_deltas=False)
        runs.append(ArmRun(arm.name, LiveRun(job, server=server, resumed=True)))
    resuming = {arm.session_id for arm in arms}
    done = [str(m.get("arm") or m["id"]) for m in members if m["id"] not in resuming]
    note = (f"{', '.join(done)} had finished: only the unfinished arms run here (`lhe-tui replay {group_id}` "
            "shows them all)") if done else ""
    return ArmsLaunch(group_id, runs, resumed=True, note=note)


# ---- group replay ------------------------------------------------------------------------------------------
@dataclass
class GroupReplayed:
    """A stored group opened for replay: (arm name, replay) in the order the arms were given."""

    group_id: str
    arms: list[tuple[str, SessionReplay]]


def load_group(db_path: Path, given: str) -> GroupReplayed:
    """Open a stored group's sessions as replays (a group id, or its start or end). StoreError, one line, for
    an unknown or ambiguous id. Each replay keeps its own connection (it reads turns as it plays)."""
    from lhe_tui.store.database import open_database
    from lhe_tui.store.groups import group_members, resolve_group_id

    db = open_database(db_path, create=False, write=False)
    try:
        group_id = resolve_group_id(db, given)
        members = group_members(db, group_id)
    finally:
        db.conn.close()
    arms: list[tuple[str, SessionReplay]] = []
    try:
        for member in members[:MAX_ARMS]:
            conn = open_database(db_path, create=False, write=False)
            try:
                arms.append((member.get("arm") or member["id"], SessionReplay(conn, member["id"])))
            except BaseException:
                conn.conn.close()
                raise
    except BaseException:
        for _, replay in arms:
            replay.db.conn.close()
        raise
    return GroupReplayed(group_id, arms)


class _Positions:
    """The group's cursor as ReplayControls reads a replay's: frames applied over frames in all arms."""

    def __init__(self, players: list[ReplayPlayer]) -> None:
        self._players = players

    @property
    def position(self) -> int:
        return sum(p.replay.position for p in self._players)

    def __len__(self) -> int:
        return sum(len(p.replay) for p in self._players)

    @property
    def at_end(self) -> bool:
        return all(p.replay.at_end for p in self._players)


class GroupPlayer(SpeedLadder):
    """Several ReplayPlayers advanced together. Playing: one clock, each arm's turns at their recorded times
    since its own start (the arms ran side by side, so they stay as they were). Stepping: one turn of the
    watched sample forward or back in every arm, so the tables stay aligned by turn. Speed, play/pause and
    restart act on all."""

    def __init__(self, replays: list[SessionReplay], *, speed: float = 1.0, playing: bool = True) -> None:
        self.players = [ReplayPlayer(replay, speed=speed, playing=playing) for replay in replays]
        self.replay = _Positions(self.players)

    @property
    def playing(self) -> bool:
        return any(p.playing for p in self.players)

    @property
    def speed(self) -> float:
        return self.players[0].speed if self.players else 1.0

    @property
    def at_end(self) -> bool:
        return self.replay.at_end

    def tick(self, now: float) -> list[list[Event]]:
        """Each arm's events due since the last tick (one list per arm)."""
        return [p.tick(now) for p in self.players]

    def toggle(self) -> bool:
        """Play every arm not at its end, or pause every one (as one player would)."""
        playing = not self.playing
        for p in self.players:
            if p.playing != (playing and not p.replay.at_end):
                p.toggle()
        return self.playing

    def set_speed(self, speed: float) -> None:
        for p in self.players:
            p.set_speed(speed)

    @property
    def instant(self) -> bool:
        return math.isinf(self.speed)

    def seek(self, position: int) -> list[list[Event]]:
        """Every arm to `position` (0: the start); each arm's rebuild list (see SessionReplay.seek)."""
        return [p.seek(position) for p in self.players]

    def step_turn(self, sample: int, direction: int) -> list[tuple[list[Event], bool]] | None:
        """One turn of `sample` forward (direction > 0) or back in every arm that has one that way; per arm
        (events, backward) as ReplayPlayer.goto gives them; None when no arm can move."""
        targets = [p.replay.sample_step(sample, direction) for p in self.players]
        if all(t is None for t in targets):
            return None
        return [p.goto(t) if t is not None else ([], False) for p, t in zip(self.players, targets)]

    def forward_to_turn(self, sample: int, turn: int) -> list[list[Event]]:
        """Every arm forward to just after `sample`'s `turn` (arms already past it, or without it, stay)."""
        out: list[list[Event]] = []
        for p in self.players:
            target = p.replay.position_of(sample, turn)
            out.append(p.goto(target)[0] if target is not None and target > p.position else [])
        return out

    def close(self) -> None:
        for p in self.players:
            p.replay.db.conn.close()
