"""Colour themes loaded from TOML files at start.

Colours live only in `themes/*.toml`; the app's CSS refers to them through Textual's
theme variables (`$primary`, `$error`, `$success`, `$warning`, ...). Each file maps onto
`textual.theme.Theme`; see `themes/README.md` for the format and the search folders.
A new file dropped into any search folder is picked up at the next start.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from textual.app import App
from textual.color import Color, ColorParseError
from textual.theme import Theme

import lhe_tui
from lhe_tui.common.errors import LheError
from lhe_tui.common.files import THEME_LIMIT, UnreadableFile, read_bounded

__all__ = [
    "DEFAULT_THEME",
    "ENV_THEMES_DIR",
    "ThemeFileError",
    "ThemeLoadResult",
    "load_theme_file",
    "load_themes",
    "register_themes",
    "theme_search_dirs",
]

DEFAULT_THEME = "lhe-dark"
ENV_THEMES_DIR = "LHE_TUI_THEMES_DIR"

COLOR_FIELDS = (
    "primary", "secondary", "accent", "foreground", "background", "surface", "panel",
    "boost", "warning", "error", "success",
)
BOOL_FIELDS = ("dark", "ansi")
FRACTION_FIELDS = ("luminosity_spread", "text_alpha")
KNOWN_FIELDS = frozenset(("name", "variables", *COLOR_FIELDS, *BOOL_FIELDS, *FRACTION_FIELDS))

_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class ThemeFileError(LheError, ValueError):
    """A theme file that cannot be used; the message is one line naming what is wrong."""


@dataclass(frozen=True)
class ThemeLoadResult:
    themes: list[Theme]
    """Loaded themes, one per name (a later folder's file replaces an earlier one's)."""
    problems: list[str]
    """One line per unusable file: `<file>: <what is wrong>`."""


def theme_search_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for `*.toml` themes, lowest priority first, keeping those that exist.

    Order: the repository's `themes/`, `./themes`, `$XDG_CONFIG_HOME/lhe-tui/themes`
    (default `~/.config/lhe-tui/themes`), the folders in `$LHE_TUI_THEMES_DIR`
    (os.pathsep-separated), then `extra`. Later folders override earlier ones.
    """
    candidates: list[Path] = [
        Path(lhe_tui.__file__).resolve().parent.parent / "themes",
        Path.cwd() / "themes",
        _user_config_dir() / "lhe-tui" / "themes",
    ]
    env = os.environ.get(ENV_THEMES_DIR, "")
    candidates += [Path(part).expanduser() for part in env.split(os.pathsep) if part.strip()]
    candidates += [Path(p).expanduser() for p in extra]

    dirs: list[Path] = []
    seen: set[Path] = set()
    for candidate in candidates:
        if not candidate.is_dir():
            continue
        resolved = candidate.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        dirs.append(resolved)
    return dirs


def _user_config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative (or empty) value.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return Path.home() / ".config"


def load_theme_file(path: Path) -> Theme:
    """Parse and validate one theme file; raises ThemeFileError with a one-line reason."""
    try:
        text = read_bounded(path, THEME_LIMIT).decode("utf-8")
    except UnreadableFile as exc:
        raise ThemeFileError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ThemeFileError(f"not UTF-8 text (byte {exc.start})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message already carries "(at line N, column M)".
        raise ThemeFileError(f"invalid TOML: {_one_line(str(exc))}") from exc
    return _theme_from_dict(data)


def _theme_from_dict(data: dict[str, Any]) -> Theme:
    unknown = sorted(set(data) - KNOWN_FIELDS)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ThemeFileError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {names} "
            f"(allowed: {', '.join(sorted(KNOWN_FIELDS))})"
        )

    for required in ("name", "primary"):
        if required not in data:
            raise ThemeFileError(f"missing required field {required!r}")

    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError("'name' must be a non-empty string")
    if name != name.strip() or "," in name:
        # App.get_theme splits on commas, so a comma would make the theme unreachable.
        raise ThemeFileError(f"'name' {name!r} must not contain commas or surrounding spaces")

    kwargs: dict[str, Any] = {"name": name}
    for key in COLOR_FIELDS:
        if key in data:
            kwargs[key] = _check_color(key, data[key])
    for key in BOOL_FIELDS:
        if key in data:
            if not isinstance(data[key], bool):
                raise ThemeFileError(f"{key!r} must be true or false, got {data[key]!r}")
            kwargs[key] = data[key]
    for key in FRACTION_FIELDS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ThemeFileError(f"{key!r} must be a number from 0 to 1, got {value!r}")
            kwargs[key] = float(value)
    if "variables" in data:
        kwargs["variables"] = _check_variables(data["variables"])

    theme = Theme(**kwargs)
    try:
        # Builds every derived shade: catches anything the checks above let through.
        theme.to_color_system().generate()
    except Exception as exc:  # noqa: BLE001 - reported as a one-line problem
        raise ThemeFileError(f"Textual rejected the theme: {_one_line(str(exc))}") from exc
    return theme


def _check_color(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{key!r} must be a colour string such as \"#1e90ff\", got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise ThemeFileError(f"{key!r} is not a colour: {value!r}") from exc
    return value


def _check_variables(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ThemeFileError("'variables' must be a table of CSS variable names to strings")
    variables: dict[str, str] = {}
    for var, raw in value.items():
        if not _VARIABLE_NAME.match(var):
            raise ThemeFileError(f"variable {var!r} is not a valid name (lower-case, digits, '-')")
        if not isinstance(raw, str) or not raw.strip():
            raise ThemeFileError(f"variable {var!r} must be a non-empty string, got {raw!r}")
        head = raw.split()[0]
        if head.startswith("#"):
            # e.g. "#81a1c1" or "#81a1c1 35%": check the colour part.
            try:
                Color.parse(head)
            except ColorParseError as exc:
                raise ThemeFileError(f"variable {var!r} is not a colour: {raw!r}") from exc
        variables[var] = raw
    return variables


def load_themes(dirs: Sequence[Path]) -> ThemeLoadResult:
    """Load every `*.toml` in `dirs` (sorted by file name within a folder); never raises.

    A later folder's theme replaces an earlier one of the same name. Two files in the same
    folder with one name is reported as a problem and the second (by file name) is skipped.
    """
    by_name: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in dirs:
        folder = Path(folder)
        try:
            files = sorted(p for p in folder.glob("*.toml") if p.is_file())
        except OSError as exc:
            problems.append(f"{_display(folder)}: cannot list folder: {exc.strerror or exc}")
            continue
        seen_here: dict[str, Path] = {}
        for path in files:
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                problems.append(f"{_display(path)}: {exc}")
                continue
            if theme.name in seen_here:
                problems.append(
                    f"{_display(path)}: theme name {theme.name!r} is already used by "
                    f"{seen_here[theme.name].name} in the same folder; file skipped"
                )
                continue
            seen_here[theme.name] = path
            by_name[theme.name] = theme
    return ThemeLoadResult(themes=list(by_name.values()), problems=problems)


def register_themes(app: App, result: ThemeLoadResult) -> None:
    """Register each loaded theme with `app` (replacing any theme of the same name)."""
    for theme in result.themes:
        app.register_theme(theme)


def _display(path: Path) -> str:
    """A short path for messages: relative to the current folder when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _one_line(text: str) -> str:
    return " ".join(text.split())
