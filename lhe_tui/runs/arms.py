"""Arms side by side (issue 15): several runs over the *same* task (one dictionary, the same keys), run
concurrently in one event loop, each its own session in the store, linked by a group id.

UI-free; the headless CLI (`lhe-tui run … --arm NAME:FLAGS --arm NAME:FLAGS --headless`) and the TUI use it
the same way:

    specs = parse_arms(["plain:", "inj:--inject-at=20:5"])        # ConfigError, one line, on bad input
    plan = plan_group(base_config, specs)                            # task built once, ids, lineages; no I/O
    group = prepare_group(plan, db)                                  # one PreparedRun per arm (store wired)
    statuses = asyncio.run(group.run())                              # {arm name: run status}

`plan_group` alone gives what a caller that runs each arm elsewhere (a run process per arm) needs: per arm
its name, RunConfig, session id and Lineage(group_id, arm), and the one Task they all share.
`prepare_group_resume(db, group_id)` continues a group's unfinished arms together.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lhe_tui.runs.overrides import apply_overrides, arm_overrides, split_arm
from lhe_tui.core.config import RunConfig
from lhe_tui.core.lineage import Lineage
from lhe_tui.common.errors import ConfigError, StoreError
from lhe_tui.runs.session import PreparedRun, build_task, new_session_id, prepare_resume, prepare_run
from lhe_tui.store.groups import group_members, new_group_id
from lhe_tui.task import Task

if TYPE_CHECKING:
    from sqlite_utils import Database

    from lhe_tui.providers.base import Provider
    from lhe_tui.providers.local_server import LocalModelServer
    from lhe_tui.runs.resume_state import ResumeState

ARM_EXAMPLE = "--arm plain: --arm inj:--inject-at=20:5"


@dataclass(frozen=True)
class ArmSpec:
    """One `--arm NAME:FLAGS`: its name, its flags as given, and the RunConfig fields they set."""

    name: str
    flags: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def text(self) -> str:
        """The arm as it could be given again: `inj:--inject-at=20:5`."""
        return f"{self.name}:{shlex.join(self.flags)}"


def parse_arms(texts: Sequence[str]) -> list[ArmSpec]:
    """The `--arm` values, in order. ConfigError (one line) for fewer than two arms, a repeated name, a task
    flag in an arm (--seed, --samples, --turns, …: the arms share one task) or a bad flag."""
    if len(texts) < 2:
        raise ConfigError(f"--arm: give at least two arms to run side by side (e.g. {ARM_EXAMPLE}), "
                          f"got {len(texts)}")
    specs: list[ArmSpec] = []
    for text in texts:
        name, tokens = split_arm(text)
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"--arm: two arms are named {name!r}; give each arm its own name")
        specs.append(ArmSpec(name=name, flags=tuple(tokens), overrides=arm_overrides(name, tokens)))
    return specs


def arm_configs(base: RunConfig, arms: Sequence[ArmSpec | str]) -> list[tuple[str, RunConfig]]:
    """(name, config) per arm: the arm's flags over the run's own `base` config, validated. `arms`: ArmSpecs
    or the `--arm` texts (checked as `parse_arms` checks them)."""
    specs = parse_arms([arm.text if isinstance(arm, ArmSpec) else arm for arm in arms])
    out = []
    for spec in specs:
        try:
            out.append((spec.name, apply_overrides(base, dict(spec.overrides))))
        except ConfigError as exc:
            raise ConfigError(f"--arm {spec.name}: {exc}") from None
    return out


@dataclass(frozen=True)
class ArmPlan:
    """What one arm runs: its config, the session id it is stored under and its lineage (group and arm)."""

    name: str
    config: RunConfig
    session_id: str
    lineage: Lineage


@dataclass(frozen=True)
class GroupPlan:
    """A group run before anything starts: the group id, the one task every arm runs, the arms in order."""

    group_id: str
    task: Task
    arms: tuple[ArmPlan, ...]

    @property
    def names(self) -> list[str]:
        return [arm.name for arm in self.arms]


def plan_group(base: RunConfig, arms: Sequence[ArmSpec | str], *, group_id: str | None = None,
               task: Task | None = None) -> GroupPlan:
    """Validate the arms over `base`, build the task once, and name the group and the arms' sessions.
    Nothing is stored or started. ConfigError (one line) on bad input."""
    base.validate()
    return plan_arms(base, arm_configs(base, arms), group_id=group_id, task=task)


def plan_arms(base: RunConfig, configs: Sequence[tuple[str, RunConfig]], *, group_id: str | None = None,
              task: Task | None = None) -> GroupPlan:
    """The group for arms whose configs are checked already: the task built once from `base`, a group id,
    and each arm's session id and lineage."""
    task = task or build_task(base)
    group_id = group_id or new_group_id()
    used: set[str] = set()
    plans = []
    for name, config in configs:
        session_id = new_session_id()
        while session_id in used:           # arms planned within one second share the time part
            session_id = new_session_id()
        used.add(session_id)
        plans.append(ArmPlan(name=name, config=config, session_id=session_id,
                             lineage=Lineage(group_id=group_id, arm=name)))
    return GroupPlan(group_id=group_id, task=task, arms=tuple(plans))


@dataclass
class PreparedGroup:
    """The arms ready to run: one PreparedRun each (its own bus, provider, store writer), in arm order."""

    group_id: str
    names: list[str]
    runs: list[PreparedRun]
    task: Task | None = None

    def arm(self, name: str) -> PreparedRun:
        try:
            return self.runs[self.names.index(name)]
        except ValueError:
            raise ConfigError(f"no arm {name!r} in group {self.group_id} (arms: {', '.join(self.names)})") from None

    def stop(self) -> None:
        """Stop every arm: each ends `interrupted`, every finished turn kept (each resumes like any session)."""
        for run in self.runs:
            run.runner.stop()

    def fail(self, message: str) -> None:
        """The shared provider cannot go on (our local model server died): every arm ends failed."""
        for run in self.runs:
            run.runner.fail(message)

    async def run(self) -> dict[str, str]:
        """Run every arm concurrently in this event loop; {arm name: run status}. Providers are closed after.
        Cancelled (Ctrl+C through asyncio.run): every arm stops, keeping its turns."""
        try:
            statuses = await asyncio.gather(*(run.runner.run() for run in self.runs))
        finally:
            for run in self.runs:
                try:
                    await run.provider.aclose()
                except Exception:   # noqa: BLE001 - closing one must not keep the others open
                    pass
        return dict(zip(self.names, statuses))


def _release(runs: list[PreparedRun]) -> None:
    """Drop the writer locks of arms prepared before a later arm failed to prepare (nothing was stored)."""
    for run in runs:
        if run.writer is not None:
            run.writer._release(forget=True)


def prepare_group(plan: GroupPlan, db: Database, *, providers: Sequence[Provider | None] | None = None,
                  base_url: str | None = None, stream_deltas: bool = True) -> PreparedGroup:
    """Wire each planned arm to the store (`prepare_run` with the shared task and its lineage). `providers`:
    one per arm (None: made from the arm's config), e.g. from `shared_local_server`. A provider that cannot
    be made (a missing API key) is one line, and no arm is left holding its session's lock."""
    from lhe_tui.providers.factory import make_provider

    given = list(providers) if providers is not None else [None] * len(plan.arms)
    made = [p or make_provider(arm.config, base_url=base_url) for arm, p in zip(plan.arms, given)]
    runs: list[PreparedRun] = []
    try:
        for arm, provider in zip(plan.arms, made):
            runs.append(prepare_run(arm.config, db, provider=provider, session_id=arm.session_id,
                                    stream_deltas=stream_deltas, task=plan.task, lineage=arm.lineage))
    except BaseException:
        _release(runs)
        raise
    return PreparedGroup(group_id=plan.group_id, names=plan.names, runs=runs, task=plan.task)


# ---------------------------------------------------------------------------- --provider local


def shared_local_server(configs: Sequence[RunConfig]
                        ) -> tuple[LocalModelServer | None, list[RunConfig], list[Provider | None]]:
    """`--provider local` arms (without --base-url) share one local model server: (the server, resolved but
    not started; the configs as stored; one provider per arm, None where the usual one is made). The arms'
    providers share one request slot, as the server computes one reply at a time. Arms that would need
    different servers (another --model-path or --model) are refused in one line."""
    from lhe_tui.providers.local_provider import local_config, make_local_provider, server_for

    own = [i for i, c in enumerate(configs) if c.provider == "local" and not c.base_url]
    if not own:
        return None, list(configs), [None] * len(configs)
    served = {(configs[i].model_path, configs[i].model) for i in own}
    if len(served) > 1:
        raise ConfigError("--arm: arms with --provider local share one local model server: give them the same "
                          "--model-path and --model (or a --base-url each)")
    server = server_for(configs[own[0]]).resolve()
    out_configs = list(configs)
    providers: list[Provider | None] = [None] * len(configs)
    slot = None
    for i in own:
        out_configs[i] = local_config(configs[i], server)
        provider = make_local_provider(out_configs[i], server.base_url, server)
        if slot is None:
            slot = provider.slot
        provider.slot = slot
        providers[i] = provider
    return server, out_configs, providers


def with_configs(plan: GroupPlan, configs: Sequence[RunConfig]) -> GroupPlan:
    """The plan with each arm's config replaced (e.g. the configs `shared_local_server` returns)."""
    from dataclasses import replace

    return replace(plan, arms=tuple(replace(arm, config=config) for arm, config in zip(plan.arms, configs)))


# ---------------------------------------------------------------------------- resume


@dataclass(frozen=True)
class ArmResume:
    """A stored arm to continue: its session, name and the state `load_resume_state` read."""

    name: str
    session_id: str
    state: ResumeState


def unfinished_arms(db: Database, group_id: str) -> list[ArmResume]:
    """The group's arms that have turns left, in arm order; StoreError (one line) when none has, or when one
    is being run by another process."""
    from lhe_tui.runs.resume_state import load_resume_state
    from lhe_tui.store.locks import SessionBusy, holder_label, writer_alive
    from lhe_tui.store.queries import load_session, nothing_to_resume

    out = []
    members = group_members(db, group_id)
    for member in members:
        session_id = member["id"]
        if nothing_to_resume(db, load_session(db, session_id)) is not None:
            continue     # (an arm killed after its last turn is resumed: its end is written)
        if writer_alive(db.path, session_id):
            raise SessionBusy(f"arm {member.get('arm')} ({session_id}) of group {group_id} is being run by another "
                              f"process ({holder_label(db.path, session_id)}); stop it there first")
        out.append(ArmResume(name=member.get("arm") or session_id, session_id=session_id,
                             state=load_resume_state(db, session_id)))
    if not out:
        raise StoreError(f"group {group_id} is finished: every arm ({', '.join(str(m.get('arm')) for m in members)}) "
                         f"ran all its turns; nothing to resume (`lhe-tui compare {group_id}` reports it)")
    return out


def prepare_group_resume(db: Database, group_id: str, arms: Sequence[ArmResume] | None = None, *,
                         providers: Sequence[Provider | None] | None = None, base_url: str | None = None,
                         stream_deltas: bool = True) -> PreparedGroup:
    """Continue the group's unfinished arms together (each as `lhe-tui resume SESSION` would)."""
    arms = list(arms) if arms is not None else unfinished_arms(db, group_id)
    given = list(providers) if providers is not None else [None] * len(arms)
    runs: list[PreparedRun] = []
    try:
        for arm, provider in zip(arms, given):
            runs.append(prepare_resume(db, arm.session_id, provider=provider, base_url=base_url,
                                       stream_deltas=stream_deltas, state=arm.state))
    except BaseException:
        _release(runs)
        raise
    return PreparedGroup(group_id=group_id, names=[arm.name for arm in arms], runs=runs)


def remaining_turns(group: PreparedGroup) -> list[int]:
    """Per arm, the turns it has left to play (its progress bar's length)."""
    out = []
    for run in group.runs:
        config = run.runner.config
        out.append(config.samples * config.turns - sum(len(h) for h in run.runner.history.values()))
    return out


__all__ = ["ArmPlan", "ArmResume", "ArmSpec", "GroupPlan", "PreparedGroup", "arm_configs", "parse_arms",
           "plan_group", "prepare_group", "prepare_group_resume", "remaining_turns", "shared_local_server",
           "unfinished_arms", "with_configs"]
