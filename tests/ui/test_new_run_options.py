"""The new-run form's request options: the thinking switch and the extra body, read into the RunConfig
(and shown again from it), with the CLI's one-line errors."""

from textual.widgets import Input, Select, Static

from lhe_tui.core.config import RunConfig
from lhe_tui.ui.app import LheApp
from lhe_tui.ui.screens.new_run import NewRunScreen

SIZE = (100, 30)


async def test_form_reads_the_thinking_switch_and_extra_body(db_path):
    defaults = RunConfig(samples=1, turns=5, enable_thinking=False, extra_body={"top_k": 20})
    app = LheApp(db_path, new_run_defaults=defaults)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewRunScreen)
        assert form.query_one("#enable_thinking", Select).value == "off"
        assert form.query_one("#extra_body", Input).value == '{"top_k": 20}'
        assert (form.read_config().enable_thinking, form.read_config().extra_body) == (False, {"top_k": 20})

        form.query_one("#enable_thinking", Select).value = "on"
        form.query_one("#extra_body", Input).value = '{"min_p": 0.05, "chat_template_kwargs": {"a": 1}}'
        config = form.read_config()
        assert config.enable_thinking is True
        assert config.extra_body == {"min_p": 0.05, "chat_template_kwargs": {"a": 1}}

        form.query_one("#enable_thinking", Select).value = "default"
        form.query_one("#extra_body", Input).value = ""
        assert (form.read_config().enable_thinking, form.read_config().extra_body) == (None, {})

        for text, needle in (("[1]", "extra body must be a JSON object, got list [1]"),
                             ("{oops", "extra body must be a JSON object, got invalid JSON"),
                             ('{"stream": false}', "must not set 'stream'")):
            form.query_one("#extra_body", Input).value = text
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is form
            error = str(form.query_one("#error", Static).content)
            assert needle in error and "\n" not in error, error
