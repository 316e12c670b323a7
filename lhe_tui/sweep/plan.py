"""A sweep before it runs, and as the store keeps it: its id, its runs (each with the session id it is stored
under) and its options. `plan_sweep(spec)` names a new sweep; `load_plan(db, id)` reads a stored one back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import new_session_id
from lhe_tui.store.sweeps import load_sweep_row, new_sweep_id, save_sweep
from lhe_tui.sweep.spec import Probe, SweepSpec

if TYPE_CHECKING:
    from sqlite_utils import Database


@dataclass(frozen=True)
class PlannedRun:
    index: int
    name: str
    axes: dict[str, Any]
    config: RunConfig
    session_id: str
    size: float | None = None

    @property
    def total_turns(self) -> int:
        return self.config.samples * self.config.turns


@dataclass(frozen=True)
class SweepPlan:
    sweep_id: str
    name: str
    source: str
    axes: tuple[str, ...]
    runs: tuple[PlannedRun, ...]
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    probe: Probe | None = None
    parallel: int | None = None
    max_cost: float | None = None

    def run(self, name: str) -> PlannedRun:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"axes": list(self.axes), "limits": self.limits, "parallel": self.parallel, "max_cost": self.max_cost,
                "probe": None if self.probe is None else {"target_turn": self.probe.target_turn,
                                                          "rates": list(self.probe.rates)},
                "runs": [{"index": r.index, "name": r.name, "axes": r.axes, "size": r.size,
                          "session_id": r.session_id, "config": r.config.to_dict()} for r in self.runs]}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SweepPlan:
        data = row["plan"]
        probe = data.get("probe")
        return cls(sweep_id=row["id"], name=row["name"], source=row["source"], axes=tuple(data.get("axes", ())),
                   runs=tuple(PlannedRun(index=r["index"], name=r["name"], axes=r["axes"], size=r.get("size"),
                                         session_id=r["session_id"], config=RunConfig.from_dict(r["config"]))
                              for r in data.get("runs", ())),
                   limits=data.get("limits") or {}, parallel=data.get("parallel"), max_cost=data.get("max_cost"),
                   probe=None if probe is None else Probe(probe["target_turn"], tuple(probe["rates"])))


def plan_sweep(spec: SweepSpec, *, max_cost: float | None = None, parallel: int | None = None) -> SweepPlan:
    """Name the sweep and each run's session; nothing is stored. The command's --max-cost and --parallel win
    over the file's."""
    used: set[str] = set()
    runs = []
    for run in spec.runs:
        session_id = new_session_id()
        while session_id in used:
            session_id = new_session_id()
        used.add(session_id)
        runs.append(PlannedRun(index=run.index, name=run.name, axes=run.axes, config=run.config,
                               session_id=session_id, size=run.size))
    return SweepPlan(sweep_id=new_sweep_id(), name=spec.name, source=spec.source, axes=spec.axes, runs=tuple(runs),
                     limits=spec.limits, probe=spec.probe, parallel=parallel or spec.parallel,
                     max_cost=max_cost if max_cost is not None else spec.max_cost)


def store_plan(db: Database, plan: SweepPlan) -> None:
    save_sweep(db, plan.sweep_id, plan.name, plan.source, plan.to_dict())


def load_plan(db: Database, sweep_id: str) -> SweepPlan:
    return SweepPlan.from_row(load_sweep_row(db, sweep_id))
