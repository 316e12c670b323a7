"""Prompt templates: what the model is sent, from a TOML file (`--prompt NAME|PATH`).

A template has a `system` string (the first, system message) and a `turn` string (each user turn), both
required; optional tables override them: `[direct]`, `[cot]`, `[thinking]` per mode, `[k1]` for one key
a turn, and `[direct.k1]`, `[cot.k1]`, `[thinking.k1]` for both. For mode M and K keys a turn, each
string comes from the first of `[M.k1]` (K = 1 only), `[M]`, `[k1]` (K = 1 only), the top level that has
it. Whitespace is kept exactly (TOML's multi-line strings drop only the newline right after the opening
quotes). Placeholders:

    {dictionary}       the dictionary as a Python dict repr in the dataset's order: {'apple': 5, 'banana': 0}
    {dictionary_json}  the same as JSON: {"apple": 5, "banana": 0}
    {keys}             the turn's keys joined by ", "
    {k}                keys per turn

`{{` and `}}` stand for literal braces; any other brace, or an unknown name, is an error.

Two optional top-level strings say what the history shows instead of a reply (paper protocol): `no_answer`
for a reply with no answer tag, `empty_reply` for an empty reply (or none: the provider failed; under the
lenient protocol, the only one it uses). They are taken as they are (no placeholders, braces kept); unset,
the protocol's own words are used (lhe_tui.task.protocol). A bad
template is a ConfigError of one line naming the file and the problem, raised when the run's config is
validated (before anything starts). prompts/README.md has the details.

Named templates are `*.toml` files in these folders, later ones winning: the shipped `prompts/` (the
repository's top-level folder, or the copy packaged inside an installed lhe_tui), `./prompts`,
`$XDG_CONFIG_HOME/lhe-tui/prompts` (default `~/.config/lhe-tui/prompts`), and each folder in
`$LHE_TUI_PROMPTS_DIR` (os.pathsep-separated). A value with a `/` (or `\\`) or ending in `.toml` is a path.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import lhe_tui
from lhe_tui.common.files import TEMPLATE_LIMIT, UnreadableFile, read_bounded
from lhe_tui.common.errors import ConfigError
from lhe_tui.task.protocol import NO_PLACEHOLDERS, Placeholders

DEFAULT_PROMPT = "default"
LEGACY_PROMPT = "lhe-v1"
"""The prompt a stored session without a `prompt` in its config was sent (lhe-tui's first, hard-coded one)."""
ENV_PROMPTS_DIR = "LHE_TUI_PROMPTS_DIR"

MODES = ("direct", "cot", "thinking")
STRINGS = ("system", "turn")
PLACEHOLDERS = ("dictionary", "dictionary_json", "keys", "k")
HISTORY_PLACEHOLDERS = ("no_answer", "empty_reply")
_TOP_KEYS = frozenset((*STRINGS, "description", *HISTORY_PLACEHOLDERS, *MODES, "k1"))
_TABLE_KEYS = frozenset((*STRINGS, "k1"))
_BRACE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ConfigError):
    """A prompt template that cannot be used; one line, naming the file."""


Piece = tuple[str, str | None]   # (literal text, placeholder name or None)


def compile_text(text: str, where: str) -> tuple[Piece, ...]:
    """Split `text` into literal pieces and placeholders; ValueError names the problem."""
    pieces: list[Piece] = []
    literal: list[str] = []
    at = 0
    for match in _BRACE.finditer(text):
        literal.append(text[at:match.start()])
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is not None:
            name = match.group(1)
            if name not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{name}}} in {where} (known: "
                                 f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}; write {{{{ and }}}} for "
                                 "literal braces)")
            pieces.append(("".join(literal), name))
            literal = []
        else:
            raise ValueError(f"unmatched {token!r} in {where} (write {token * 2} for a literal brace)")
    literal.append(text[at:])
    pieces.append(("".join(literal), None))
    return tuple(pieces)


def _render(pieces: tuple[Piece, ...], values: dict[str, str]) -> str:
    if len(pieces) == 1:
        return pieces[0][0]
    return "".join(text + (values[name] if name else "") for text, name in pieces)


@dataclass(frozen=True)
class PromptTemplate:
    name: str                         # as chosen: a name (`default`) or the path given
    text: str                         # the file's full text, stored with the session
    source: str = ""                  # where it was read from, for messages
    placeholders: Placeholders = NO_PLACEHOLDERS   # its no_answer / empty_reply history strings, if set
    _strings: dict[tuple[str, str, bool], tuple[Piece, ...]] = field(default_factory=dict, repr=False,
                                                                     compare=False)

    @classmethod
    def parse(cls, name: str, text: str, source: str = "") -> "PromptTemplate":
        """Parse and check a template's TOML text; TemplateError (one line, naming `source`) if unusable."""
        where = source or name
        if len(text) > TEMPLATE_LIMIT:   # a stored one, or text handed over whole
            raise TemplateError(f"prompt template {where}: {len(text):,} characters, more than the "
                                f"{TEMPLATE_LIMIT:,} a template may have (it is sent with every request)")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"prompt template {where}: invalid TOML: {' '.join(str(exc).split())}") from None
        try:
            strings = _resolve(data)
            placeholders = _placeholders(data)
        except ValueError as exc:
            raise TemplateError(f"prompt template {where}: {exc}") from None
        return cls(name=name, text=text, source=where, placeholders=placeholders, _strings=strings)

    def system(self, dictionary: dict[str, int], k: int, mode: str) -> str:
        return _render(self._strings[("system", mode, k == 1)], _values(dictionary, (), k))

    def turn_renderer(self, dictionary: dict[str, int], k: int, mode: str):
        """A function keys -> the user message of a turn (the per-turn path: no lookups, no dict repr)."""
        pieces = self._strings[("turn", mode, k == 1)]
        if pieces == ((("", "keys"), ("", None))):
            return ", ".join
        fixed = {"k": str(k)}
        if any(name in ("dictionary", "dictionary_json") for _, name in pieces):
            fixed.update(_values(dictionary, (), k))

        def render(keys) -> str:
            return _render(pieces, {**fixed, "keys": ", ".join(keys)})

        return render

    def turn(self, keys, dictionary: dict[str, int], k: int, mode: str) -> str:
        return self.turn_renderer(dictionary, k, mode)(keys)


def _values(dictionary: dict[str, int], keys, k: int) -> dict[str, str]:
    return {"dictionary": repr(dict(dictionary)), "dictionary_json": json.dumps(dictionary),
            "keys": ", ".join(keys), "k": str(k)}


def _resolve(data: dict) -> dict[tuple[str, str, bool], tuple[Piece, ...]]:
    """Check the layout and compile every (string, mode, k==1) the template can be asked for."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if "description" in data and not isinstance(data["description"], str):
        raise ValueError("'description' must be a string")
    tables: dict[str, dict] = {"": data}
    for table in (*MODES, "k1"):
        if table in data:
            tables[table] = _table(data[table], table)
            if table != "k1" and "k1" in data[table]:
                tables[f"{table}.k1"] = _table(data[table]["k1"], f"{table}.k1")
    for name in STRINGS:
        if name not in data:
            raise ValueError(f"missing {name!r} (a template needs top-level 'system' and 'turn' strings)")
    compiled: dict[str, tuple[Piece, ...]] = {}
    for table, values in tables.items():
        for name in STRINGS:
            if name in values:
                if not isinstance(values[name], str):
                    raise ValueError(f"{_label(table, name)} must be a string")
                compiled[f"{table}:{name}"] = compile_text(values[name], _label(table, name))
    out: dict[tuple[str, str, bool], tuple[Piece, ...]] = {}
    for name in STRINGS:
        for mode in MODES:
            for one in (True, False):
                order = ([f"{mode}.k1"] if one else []) + [mode] + (["k1"] if one else []) + [""]
                out[(name, mode, one)] = next(compiled[f"{t}:{name}"] for t in order if f"{t}:{name}" in compiled)
    return out


def _placeholders(data: dict) -> Placeholders:
    values: dict[str, str] = {}
    for name in HISTORY_PLACEHOLDERS:
        if name in data:
            value = data[name]
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name!r} must be a non-empty string (what the history shows instead of the reply)")
            values[name] = value
    return Placeholders(**values) if values else NO_PLACEHOLDERS


def _table(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{name!r} must be a table ([{name}])")
    allowed = _TABLE_KEYS if "." not in name and name != "k1" else frozenset(STRINGS)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in [{name}] (allowed: {', '.join(sorted(allowed))})")
    return value


def _label(table: str, name: str) -> str:
    return f"{table}.{name}" if table else name


# ---- finding templates --------------------------------------------------------------------------------------

def prompt_search_dirs() -> list[Path]:
    """Folders searched for named templates, lowest priority first, keeping those that exist."""
    package = Path(lhe_tui.__file__).resolve().parent
    candidates = [package / "prompts", package.parent / "prompts", Path.cwd() / "prompts", _user_config_dir() /
                  "lhe-tui" / "prompts"]
    env = os.environ.get(ENV_PROMPTS_DIR, "")
    candidates += [Path(part).expanduser() for part in env.split(os.pathsep) if part.strip()]
    dirs: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in dirs:
            dirs.append(candidate.resolve())
    return dirs


def _user_config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"


def named_templates() -> dict[str, Path]:
    """Template name (file stem) -> file, a later folder's file replacing an earlier one's."""
    found: dict[str, Path] = {}
    for folder in prompt_search_dirs():
        for path in sorted(folder.glob("*.toml")):
            if path.is_file():
                found[path.stem] = path
    return found


def is_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.endswith(".toml")


def load_template(value: str) -> PromptTemplate:
    """The template `--prompt` names (a name or a path); TemplateError on anything unusable."""
    value = value.strip()
    if not value:
        raise TemplateError("--prompt is empty (give a template name or a .toml file)")
    if is_path(value):
        path = Path(value).expanduser()
        where = value
    else:
        named = named_templates()
        if value not in named:
            raise TemplateError(f"no prompt template named {value!r} (named: {', '.join(sorted(named)) or 'none'};"
                                " or give a path to a .toml file)")
        path, where = named[value], _display(named[value])
    try:
        text = read_bounded(path, TEMPLATE_LIMIT).decode("utf-8")
    except UnreadableFile as exc:
        raise TemplateError(f"prompt template {where}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(f"prompt template {where}: not UTF-8 text (byte {exc.start})") from None
    return PromptTemplate.parse(value, text, where)


def template_for(prompt: str, prompt_text: str | None) -> PromptTemplate:
    """A run's template: from the text stored with the session when there is one (a resume sends what the
    run sent, whatever the file says now), else from the name or path."""
    if prompt_text is not None:
        return PromptTemplate.parse(prompt, prompt_text, f"{prompt} (stored)")
    return load_template(prompt)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
