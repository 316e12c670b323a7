"""Theme files in themes/*.toml: loading, validation, search order and use in a Textual app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widgets import DataTable, Footer, Input, Static

import lhe_tui
from lhe_tui.ui.themes import (
    DEFAULT_THEME,
    ThemeFileError,
    load_theme_file,
    load_themes,
    register_themes,
    theme_search_dirs,
)

REPO_THEMES = Path(lhe_tui.__file__).resolve().parent.parent / "themes"
SHIPPED = ("lhe-dark", "lhe-light", "lhe-high-contrast")


def write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def contrast_on_black(color: Color) -> float:
    """WCAG 2 contrast ratio of `color` against pure black."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)
    return (luminance + 0.05) / 0.05


def same_colour(actual: Color, expected: str) -> bool:
    """Textual derives $error etc. through an HSL round trip, which can move a channel by 1."""
    want = Color.parse(expected)
    return max(abs(actual.r - want.r), abs(actual.g - want.g), abs(actual.b - want.b)) <= 1 and (
        actual.a == want.a
    )


# --- shipped files -------------------------------------------------------------------


def test_shipped_themes_load_without_problems_and_have_distinct_names():
    result = load_themes([REPO_THEMES])
    assert result.problems == []
    names = [t.name for t in result.themes]
    assert len(names) == len(set(names))
    assert set(SHIPPED) <= set(names)
    assert DEFAULT_THEME in names


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_name_matches_theme_name(name):
    assert load_theme_file(REPO_THEMES / f"{name}.toml").name == name


def test_high_contrast_is_black_white_and_saturated():
    theme = load_theme_file(REPO_THEMES / "lhe-high-contrast.toml")
    assert Color.parse(theme.background) == Color(0, 0, 0)
    assert Color.parse(theme.foreground) == Color(255, 255, 255)
    assert theme.dark is True
    for field in ("primary", "accent", "error", "success", "warning"):
        color = Color.parse(getattr(theme, field))
        assert color.hsl.s >= 0.95, f"{field} is not strongly saturated"
        # Readable on black: WCAG contrast ratio of at least 4.5:1.
        assert contrast_on_black(color) >= 4.5, f"{field} is too dark on a black background"


def test_light_theme_is_marked_light():
    assert load_theme_file(REPO_THEMES / "lhe-light.toml").dark is False
    assert load_theme_file(REPO_THEMES / "lhe-dark.toml").dark is True


# --- bad files -------------------------------------------------------------------------


GOOD = 'name = "good"\nprimary = "#112233"\n'
BAD_FILES = {
    "a_bad_toml.toml": ('name = "x"\nprimary = "#112233"\nbroken line\n', "line 3"),
    "b_unknown_field.toml": ('name = "x"\nprimary = "#112233"\nprimery = "#000000"\n', "'primery'"),
    "c_bad_colour.toml": ('name = "x"\nprimary = "#112233"\nerror = "#ff00zz"\n', "'#ff00zz'"),
    "d_missing_name.toml": ('primary = "#112233"\n', "'name'"),
}


def test_each_bad_file_gives_one_problem_naming_it_and_good_file_still_loads(tmp_path):
    folder = tmp_path / "themes"
    for filename, (text, _) in BAD_FILES.items():
        write(folder, filename, text)
    write(folder, "good.toml", GOOD)

    result = load_themes([folder])

    assert [t.name for t in result.themes] == ["good"]
    assert len(result.problems) == len(BAD_FILES)
    # Sorted by file name, one line each, "<path>: <reason>" with the reason naming the fault.
    for line, (filename, (_, expected)) in zip(result.problems, sorted(BAD_FILES.items())):
        assert "\n" not in line
        path_part, _, reason = line.partition(": ")
        assert path_part.endswith(filename)
        assert expected in reason, line


def test_problem_path_is_relative_to_current_folder(tmp_path, monkeypatch):
    write(tmp_path / "themes", "foo.toml", 'name = "foo"\n')
    monkeypatch.chdir(tmp_path)
    result = load_themes([Path("themes")])
    assert result.problems == [f"themes{os.sep}foo.toml: missing required field 'primary'"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('name = "x"\nprimary = 12\n', "'primary' must be a colour"),
        ('name = "x"\nprimary = "#112233"\ndark = "yes"\n', "'dark' must be true or false"),
        ('name = "x"\nprimary = "#112233"\ntext_alpha = 2\n', "'text_alpha' must be a number from 0 to 1"),
        ('name = ""\nprimary = "#112233"\n', "'name' must be a non-empty string"),
        ('name = "a,b"\nprimary = "#112233"\n', "must not contain commas"),
        ('name = "x"\nprimary = "#112233"\nvariables = 3\n', "'variables' must be a table"),
        ('name = "x"\nprimary = "#112233"\n[variables]\nborder = "#12345g"\n', "variable 'border' is not a colour"),
        ('name = "x"\nprimary = "#112233"\n[variables]\nborder = 5\n', "variable 'border' must be a non-empty string"),
    ],
)
def test_load_theme_file_rejects_with_a_one_line_reason(tmp_path, text, expected):
    path = write(tmp_path, "t.toml", text)
    with pytest.raises(ThemeFileError) as info:
        load_theme_file(path)
    assert isinstance(info.value, ValueError)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_load_theme_file_reads_every_field(tmp_path):
    path = write(tmp_path, "full.toml", """
name = "full"
primary = "#010203"
secondary = "rgb(4, 5, 6)"
accent = "red"
foreground = "#ffffff"
background = "#000000"
surface = "#111111"
panel = "#222222"
boost = "#ffffff0a"
warning = "#ffff00"
error = "#ff0000"
success = "#00ff00"
dark = false
luminosity_spread = 0.2
text_alpha = 1
ansi = false
[variables]
footer-key-foreground = "#abcdef"
input-selection-background = "#abcdef 35%"
block-cursor-text-style = "bold"
""")
    theme = load_theme_file(path)
    assert (theme.name, theme.primary, theme.secondary, theme.accent) == ("full", "#010203", "rgb(4, 5, 6)", "red")
    assert (theme.boost, theme.panel, theme.dark, theme.luminosity_spread, theme.text_alpha) == (
        "#ffffff0a", "#222222", False, 0.2, 1.0)
    assert theme.variables == {
        "footer-key-foreground": "#abcdef",
        "input-selection-background": "#abcdef 35%",
        "block-cursor-text-style": "bold",
    }


def test_load_themes_skips_missing_folders_and_never_raises(tmp_path):
    write(tmp_path / "t", "bin.toml", "").write_bytes(b"\xff\xfe name")
    result = load_themes([tmp_path / "nope", tmp_path / "t"])
    assert result.themes == []
    assert len(result.problems) == 1 and "not UTF-8" in result.problems[0]


def test_same_name_twice_in_one_folder_is_a_problem(tmp_path):
    write(tmp_path, "a.toml", 'name = "dup"\nprimary = "#111111"\n')
    write(tmp_path, "b.toml", 'name = "dup"\nprimary = "#222222"\n')
    result = load_themes([tmp_path])
    assert [(t.name, t.primary) for t in result.themes] == [("dup", "#111111")]
    assert len(result.problems) == 1 and result.problems[0].split(": ")[0].endswith("b.toml")


# --- search folders and overriding -----------------------------------------------------


def test_later_folders_override_earlier_ones(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "mine.toml", 'name = "mine"\nprimary = "#ff0000"\n')
    write(first, "only-first.toml", 'name = "only-first"\nprimary = "#000001"\n')
    write(second, "other-file-name.toml", 'name = "mine"\nprimary = "#0000ff"\n')

    forward = {t.name: t.primary for t in load_themes([first, second]).themes}
    backward = {t.name: t.primary for t in load_themes([second, first]).themes}

    assert forward == {"mine": "#0000ff", "only-first": "#000001"}
    assert backward["mine"] == "#ff0000"


def test_search_dirs_order(tmp_path, monkeypatch):
    cwd_themes = tmp_path / "work" / "themes"
    xdg_themes = tmp_path / "xdg" / "lhe-tui" / "themes"
    env_a, env_b, extra = tmp_path / "env_a", tmp_path / "env_b", tmp_path / "extra"
    for folder in (cwd_themes, xdg_themes, env_a, env_b, extra):
        folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(
        "LHE_TUI_THEMES_DIR", os.pathsep.join([str(env_a), str(tmp_path / "missing"), "", str(env_b)])
    )

    dirs = theme_search_dirs([extra, tmp_path / "missing-extra"])

    assert dirs == [REPO_THEMES, cwd_themes, xdg_themes, env_a, env_b, extra]


def test_search_dirs_default_user_folder_and_no_duplicate_repo_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("LHE_TUI_THEMES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".config" / "lhe-tui" / "themes").mkdir(parents=True)
    monkeypatch.chdir(REPO_THEMES.parent)  # ./themes is the repository folder itself

    assert theme_search_dirs() == [REPO_THEMES, tmp_path / ".config" / "lhe-tui" / "themes"]


def test_new_file_in_user_folder_is_picked_up_without_code_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("LHE_TUI_THEMES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "lhe-tui" / "themes", "solar.toml", 'name = "solar"\nprimary = "#268bd2"\n')
    write(tmp_path / "lhe-tui" / "themes", "lhe-dark.toml", 'name = "lhe-dark"\nprimary = "#123456"\n')

    result = load_themes(theme_search_dirs())

    themes = {t.name: t for t in result.themes}
    assert result.problems == []
    assert "solar" in themes and "lhe-high-contrast" in themes
    assert themes["lhe-dark"].primary == "#123456"  # the user folder overrides the shipped file


# --- in a Textual app ------------------------------------------------------------------


class ThemedApp(App):
    CSS = """
    #err { color: $error; }
    #ok { color: $success; }
    """

    def compose(self) -> ComposeResult:
        yield Static("error", id="err")
        yield Static("ok", id="ok")
        table = DataTable()
        table.add_columns("a", "b")
        table.add_row("1", "2")
        yield table
        yield Input("text")
        yield Footer()

    def on_mount(self) -> None:
        register_themes(self, load_themes([REPO_THEMES]))


async def test_high_contrast_theme_applies_in_app():
    expected = load_theme_file(REPO_THEMES / "lhe-high-contrast.toml")
    app = ThemedApp()
    async with app.run_test() as pilot:
        assert app.theme != "lhe-high-contrast"
        app.theme = "lhe-high-contrast"
        await pilot.pause()
        assert app.current_theme.background == expected.background
        assert app.screen.styles.background == Color.parse(expected.background)
        assert same_colour(app.query_one("#err").styles.color, expected.error)
        assert same_colour(app.query_one("#ok").styles.color, expected.success)


@pytest.mark.parametrize("name", SHIPPED)
async def test_every_shipped_theme_applies_with_common_widgets(name):
    expected = load_theme_file(REPO_THEMES / f"{name}.toml")
    app = ThemedApp()
    async with app.run_test() as pilot:
        app.theme = name
        await pilot.pause()
        assert app.theme == name
        assert app.screen.styles.background == Color.parse(expected.background)
        assert same_colour(app.query_one("#err").styles.color, expected.error)


@pytest.mark.parametrize("fault", ["/dev/zero", "fifo", "too large"])
def test_a_theme_file_that_is_not_a_sane_regular_file_is_one_line_at_once(tmp_path, fault):
    """Issue 22 §4: a theme is read as templates and price files are (lhe_tui.common.files.read_bounded)."""
    import threading

    from lhe_tui.common.files import THEME_LIMIT

    path = Path("/dev/zero") if fault == "/dev/zero" else tmp_path / "t.toml"
    if fault == "fifo":
        os.mkfifo(path)
    elif fault == "too large":
        with open(path, "wb") as f:
            f.truncate(THEME_LIMIT + 1)
    caught: list[BaseException] = []
    reader = threading.Thread(target=lambda: caught.append(pytest.raises(ThemeFileError, load_theme_file, path).value),
                              daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "reading the theme hangs"
    assert caught and "\n" not in str(caught[0])
    assert {"/dev/zero": "character device", "fifo": "FIFO", "too large": "allowed"}[fault] in str(caught[0])
