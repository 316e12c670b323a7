"""Run flags given over another config: `lhe-tui fork ID --turn T --model X` over the parent's stored config,
and `lhe-tui run … --arm NAME:FLAGS` over the run's own flags (issue 15).

A flag given replaces the value under it, repeatable ones (--inject-at) included; flags not given leave it
alone. The task (dictionary, keys) never changes: a fork keeps its parent's, arms share one.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from lhe_tui.core.config import RunConfig, base_url_fields, parse_extra_body
from lhe_tui.core.paper import rechoose
from lhe_tui.common.errors import ConfigError

# RunConfig fields that define the task: a fork keeps its parent's, the arms of a group share them.
TASK_FLAGS = {"seed": "--seed", "k": "--k", "samples": "--samples", "dict_size": "--dict-size",
              "min_value": "--min-value", "max_value": "--max-value", "dataset": "--dataset",
              "dataset_offset": "--dataset-offset", "data": "--data"}
# argparse dests of the run options whose RunConfig field has another name
_FIELD_OF = {"retries": "max_retries", "sim_error": "sim_base_error"}
_NOT_FIELDS = {"paper", "paper_settings"}


def run_option_dests() -> set[str]:
    """The dests `add_run_options` defines (what an override may name)."""
    from lhe_tui.runs.run_flags import OneLineParser, add_run_options

    parser = OneLineParser(add_help=False)
    add_run_options(parser)
    return {action.dest for action in parser._actions if action.option_strings}


def suppress_defaults(parser: argparse.ArgumentParser, dests: set[str]) -> None:
    """Options in `dests` leave the namespace untouched unless given: an override is told from a default."""
    for action in parser._actions:
        if action.dest in dests:
            action.default = argparse.SUPPRESS


def overrides_from_namespace(namespace: argparse.Namespace, dests: set[str], *, what: str,
                             allow_turns: bool) -> dict[str, Any]:
    """RunConfig fields from the run options given in `namespace` (parsed with `suppress_defaults`).
    ConfigError, one line, for a task flag; --turns too unless `allow_turns`."""
    given = {dest: value for dest, value in vars(namespace).items() if dest in dests}
    task = [flag for name, flag in TASK_FLAGS.items() if name in given]
    if "turns" in given and not allow_turns:
        task.append("--turns")
    if task:
        raise ConfigError(f"{what} keeps the task (dictionary and keys): {', '.join(task)} cannot change")
    fields: dict[str, Any] = {}
    for dest, value in given.items():
        if dest in _NOT_FIELDS:
            continue
        if dest == "extra_body":
            try:
                value = parse_extra_body(value) if value is not None else {}
            except ConfigError as exc:
                raise ConfigError(f"{what}: {exc}") from None
        elif dest == "inject_at":
            value = tuple(value)
        elif dest == "base_url":      # the first URL, and all of them when there are several
            fields.update(base_url_fields(value))
            continue
        fields[_FIELD_OF.get(dest, dest)] = value
    if given.get("paper") or given.get("paper_settings"):
        # the paper's settings under any explicit flag, made by apply_overrides for the result's provider and
        # mode; the task (data, samples, seed) stays
        fields["paper"] = "paper" if given.get("paper") else "settings"
    return fields


def apply_overrides(config: RunConfig, fields: dict[str, Any]) -> RunConfig:
    """`config` with `fields` replaced, validated (a bad combination is one ConfigError line). The settings
    --paper or --paper-settings chose are chosen again for the result's provider and mode."""
    if fields.get("provider") not in (None, config.provider) and "model" not in fields:
        fields = {**fields, "model": ""}          # another provider does not inherit a model name
    if "prompt" in fields:
        fields = {**fields, "prompt_text": None}  # a new template is read from its file
    return rechoose(config, fields).validate()


def split_arm(text: str) -> tuple[str, list[str]]:
    """`NAME:FLAGS` -> (NAME, FLAGS split as a shell would). ConfigError for a bad name or quoting."""
    name, sep, flags = text.partition(":")
    name = name.strip()
    if not sep:
        raise ConfigError(f"--arm expects NAME:FLAGS (e.g. plain: or inj:--inject-at=20:5), got {text!r}")
    if not name or len(name) > 16 or not all(c.isalnum() or c in "_.-" for c in name):
        raise ConfigError(f"--arm name {name!r} must be 1-16 letters, digits, '_', '.' or '-'")
    try:
        return name, shlex.split(flags)
    except ValueError as exc:
        raise ConfigError(f"--arm {name}: cannot split its flags ({exc})") from None


def arm_overrides(name: str, tokens: list[str]) -> dict[str, Any]:
    """The RunConfig fields an arm's flags set over the run's own."""
    from lhe_tui.runs.run_flags import OneLineParser, add_run_options

    # allow_abbrev=False: inside an arm, `--sample 1` is not taken for --samples (nor any prefix for a flag)
    parser = OneLineParser(prog=f"--arm {name}", add_help=False, allow_abbrev=False)
    add_run_options(parser)
    dests = {action.dest for action in parser._actions if action.option_strings}
    suppress_defaults(parser, dests)
    try:
        namespace = parser.parse_args(tokens)
    except ConfigError as exc:
        raise ConfigError(f"--arm {name}: {exc}") from None
    return overrides_from_namespace(namespace, dests, what=f"--arm {name}", allow_turns=False)


def _run_parser(prog: str) -> argparse.ArgumentParser:
    from lhe_tui.runs.run_flags import OneLineParser, add_run_options

    parser = OneLineParser(prog=prog, add_help=False)
    add_run_options(parser)
    return parser


def is_switch(flag: str) -> bool:
    """Whether the run flag takes no value (`--heal`, `--no-cache`)."""
    for action in _run_parser("lhe-tui run")._actions:
        if flag in action.option_strings:
            return action.nargs == 0
    return False


def config_from_flags(tokens: list[str], *, what: str) -> Any:
    """A whole RunConfig from run flags as `lhe-tui run` reads them (defaults for flags not given), e.g. a
    sweep run's flags. ConfigError (one line, starting with `what`) for a bad flag or combination."""
    from lhe_tui.runs.run_flags import config_from_args

    try:
        return config_from_args(_run_parser(what).parse_args(tokens))
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
