"""A sweep file (TOML): a base configuration and axes whose product, minus `exclude`, is the sweep's runs.

    name = "sim-offline"
    parallel = 4                       # optional: runs at once (the command's --parallel wins)
    max_cost = 5.0                     # optional: one budget for the whole sweep, USD (--max-cost wins)

    [base]                             # any run flag, by its long name (`sim-delay` or `sim_delay`)
    samples = 8
    turns = 40

    [axes]
    mode = ["direct", "cot"]
    k = [1, 2]
    model = [
      { label = "sim-good", provider = "sim", model = "sim-good", sim-error = 0.002, size = 1 },
      { label = "gpt-5-mini", provider = "openai", model = "gpt-5-mini", base_url = ["URL1", "URL2"] },
    ]

    exclude = [{ model = "sim-good", mode = "cot" }]

    [limits.openai]                    # per provider account, shared by every run of the sweep that uses it
    rpm = 500
    tpm = 200000

    [probe]                            # optional: every run is a target-turn probe instead
    target_turn = 20
    rates = [0, 0.25, 0.5, 0.75, 1]

A value becomes run flags the way a user would type them (`k = 2` is `--k 2`, `heal = true` is `--heal`,
`enable-thinking = true` is `--enable-thinking on`, a list is the flag repeated, a table is JSON for
`--extra-body`), and the flags are read by the run command's own parser (lhe_tui.runs.overrides
`config_from_flags`): whatever `lhe-tui run` accepts, a sweep accepts. A model entry's `label` names it
(default: its model name), `size` places it on a plot's axis; its other keys are run flags. Runs that share
(K, samples, turns, seed, dictionary, dataset) share one task, so every model sees the same keys.
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhe_tui.runs.overrides import TASK_FLAGS, config_from_flags
from lhe_tui.core.config import RunConfig
from lhe_tui.common.errors import ConfigError

MODEL_KEYS = {"label", "size"}
"""Keys of a model entry that are not run flags."""
TOP_KEYS = {"name", "base", "axes", "exclude", "limits", "probe", "parallel", "max_cost"}
LIMIT_KEYS = {"rpm", "tpm"}


@dataclass(frozen=True)
class ModelEntry:
    label: str
    size: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class SweepRun:
    """One cell of the product: its index, name (the axes' values joined by /), axes and config."""

    index: int
    name: str
    axes: dict[str, Any]
    flags: tuple[str, ...]
    config: RunConfig
    size: float | None = None

    @property
    def task_key(self) -> tuple:
        c = self.config
        return tuple(getattr(c, name) for name in TASK_FLAGS) + (c.turns,)


@dataclass(frozen=True)
class Probe:
    target_turn: int
    rates: tuple[float, ...]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    source: str
    axes: tuple[str, ...]
    runs: tuple[SweepRun, ...]
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    probe: Probe | None = None
    parallel: int | None = None
    max_cost: float | None = None


def flag_tokens(key: str, value: Any, *, where: str) -> list[str]:
    """The run flags a TOML key = value stands for (see the module doc)."""
    flag = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        from lhe_tui.runs.overrides import is_switch

        if is_switch(flag):
            return [flag] if value else []
        return [flag, "on" if value else "off"]
    if isinstance(value, (int, float, str)):
        return [flag, str(value)]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out += flag_tokens(key, item, where=where)
        return out
    if isinstance(value, dict):
        return [flag, json.dumps(value)]
    raise ConfigError(f"{where}: {key} = {value!r} is not a value a run flag takes")


def table_tokens(table: dict[str, Any], *, where: str, skip: set[str] = frozenset()) -> list[str]:
    out: list[str] = []
    for key, value in table.items():
        if key not in skip:
            out += flag_tokens(key, value, where=where)
    return out


def _model_entry(value: Any, i: int) -> ModelEntry:
    where = f"axes.model[{i}]"
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: a model entry is a table ({{ provider = ..., model = ... }}) or a name")
    size = value.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
        raise ConfigError(f"{where}: size must be a number (e.g. billions of parameters), got {size!r}")
    label = str(value.get("label") or value.get("model") or value.get("provider") or f"model{i}")
    return ModelEntry(label=label, size=float(size) if size is not None else None,
                      flags=tuple(table_tokens(value, where=where, skip=MODEL_KEYS)))


def _axis_text(value: Any) -> str:
    """How an axis value is named (in run names, tables, plots): a model by its label, a switch on / off."""
    if isinstance(value, ModelEntry):
        return value.label
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _excluded(axes: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    return any(all(axes.get(key.replace("-", "_")) == _axis_text(want) for key, want in rule.items())
               for rule in rules)


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep file; every run's flags parsed now (a bad one is one line naming the run)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    return parse_spec(data, source=str(path), default_name=Path(path).stem)


def parse_spec(data: dict[str, Any], *, source: str = "<sweep>", default_name: str = "sweep") -> SweepSpec:
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(f"sweep file: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(TOP_KEYS))}; "
                          "run flags go under [base] or [axes])")
    base = data.get("base", {})
    axes_table = data.get("axes", {})
    if not isinstance(base, dict) or not isinstance(axes_table, dict):
        raise ConfigError("sweep file: [base] and [axes] are tables")
    base_tokens = table_tokens(base, where="base")
    axes: dict[str, list[Any]] = {}
    for key, values in axes_table.items():
        name = key.replace("-", "_")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"axes.{key}: give a non-empty list of values")
        axes[name] = [_model_entry(v, i) for i, v in enumerate(values)] if name == "model" else list(values)
        labels = [_axis_text(v) for v in axes[name]]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"axes.{key}: two values are the same ({', '.join(labels)}); give models a label each")
    rules = data.get("exclude", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError("exclude: a list of tables, e.g. exclude = [{ model = \"a\", mode = \"cot\" }]")
    for rule in rules:
        bad = [k for k in rule if k.replace("-", "_") not in axes]
        if bad:
            raise ConfigError(f"exclude: {', '.join(bad)} is not an axis (axes: {', '.join(axes) or 'none'})")
    names = list(axes)
    runs: list[SweepRun] = []
    for values in itertools.product(*(axes[n] for n in names)):
        shown = {n: _axis_text(v) for n, v in zip(names, values)}
        if _excluded(shown, rules):
            continue
        tokens = list(base_tokens)
        size = None
        for n, v in zip(names, values):
            if isinstance(v, ModelEntry):
                tokens += v.flags
                size = v.size
            else:
                tokens += flag_tokens(n, v, where=f"axes.{n}")
        run_name = "/".join(shown.values()) or "run"
        config = config_from_flags(tokens, what=f"sweep run {run_name}")
        runs.append(SweepRun(index=len(runs), name=run_name, axes=shown, flags=tuple(tokens), config=config,
                             size=size))
    if not runs:
        raise ConfigError("sweep file: every combination is excluded: nothing to run")
    return SweepSpec(name=str(data.get("name") or default_name), source=source, axes=tuple(names), runs=tuple(runs),
                     limits=_limits(data.get("limits", {})), probe=_probe(data.get("probe")),
                     parallel=_positive(data.get("parallel"), "parallel", int),
                     max_cost=_positive(data.get("max_cost"), "max_cost", float))


def _positive(value: Any, key: str, kind: type) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ConfigError(f"sweep file: {key} must be a positive number, got {value!r}")
    if kind is int and value != int(value):
        raise ConfigError(f"sweep file: {key} must be a whole number, got {value!r}")
    return kind(value)


def _limits(table: Any) -> dict[str, dict[str, int]]:
    if not isinstance(table, dict):
        raise ConfigError("[limits]: one table per provider account, e.g. [limits.openai] rpm = 500")
    out: dict[str, dict[str, int]] = {}
    for account, limits in table.items():
        if not isinstance(limits, dict) or set(limits) - LIMIT_KEYS:
            raise ConfigError(f"[limits.{account}]: only rpm and tpm (per minute), e.g. rpm = 500")
        out[account] = {k: _positive(v, f"limits.{account}.{k}", int) for k, v in limits.items()}
    return out


def _probe(table: Any) -> Probe | None:
    if table is None:
        return None
    from lhe_tui.runs.probe import parse_rates

    if not isinstance(table, dict) or "target_turn" not in table:
        raise ConfigError("[probe]: give target_turn (and rates, default 0,0.25,0.5,0.75,1)")
    turn = _positive(table["target_turn"], "probe.target_turn", int)
    rates = table.get("rates", [0, 0.25, 0.5, 0.75, 1])
    if isinstance(rates, list):
        rates = ",".join(str(r) for r in rates)
    return Probe(target_turn=turn, rates=tuple(parse_rates(str(rates))))


def account_of(config: RunConfig) -> str:
    """The provider account a run's requests count against ([limits.NAME]): its provider's name."""
    return config.provider
