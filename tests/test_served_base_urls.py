"""What an app `lhe-tui serve` started may run against (lhe_tui.providers.served, issue 22): only the base URLs
the server was started with. The served end to end (a page typing a listener's address into the form) is in
test_serve.py; here the rule itself, and that every way a run gets its provider goes through it."""

from __future__ import annotations

import json

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.common.errors import ConfigError
from lhe_tui.providers.factory import check_credentials, make_provider
from lhe_tui.providers.served import SERVED_BASE_URLS_ENV, check_served_base_url, served_base_urls, url_key

LISTENER = "http://127.0.0.1:9999/v1"


def served(*urls: str, **more: str) -> dict[str, str]:
    return {SERVED_BASE_URLS_ENV: json.dumps(list(urls)), **more}


def test_not_served_anything_goes():
    check_served_base_url(LISTENER, {})
    check_served_base_url(LISTENER, {"OPENAI_API_KEY": "k"})
    assert served_base_urls({}) is None


def test_served_refuses_an_unlisted_base_url_in_one_line():
    with pytest.raises(ConfigError) as caught:
        check_served_base_url(LISTENER, served())
    message = str(caught.value)
    assert "\n" not in message and "refused" in message and LISTENER in message
    assert "--base-url" in message and "--allow-any-base-url" in message


def test_served_allows_no_base_url_the_listed_ones_and_the_environments():
    env = served("http://127.0.0.1:8000/v1", OPENAI_BASE_URL="https://proxy.example/openai/v1",
                 ANTHROPIC_BASE_URL="https://claude.example")
    check_served_base_url(None, env)
    check_served_base_url("", env)
    # The same address written differently: case, default port, trailing slash.
    for url in ("http://127.0.0.1:8000/v1", "HTTP://127.0.0.1:8000/v1/", "https://PROXY.example:443/openai/v1",
                "https://claude.example/"):
        check_served_base_url(url, env)
    for url in (LISTENER, "http://127.0.0.1:8000/v2", "http://127.0.0.1:8001/v1", "https://127.0.0.1:8000/v1",
                "http://user:pw@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1?x=1", "not a url", "http://:80/v1"):
        with pytest.raises(ConfigError):
            check_served_base_url(url, env)


def test_allow_any_and_other_web_servers():
    check_served_base_url(LISTENER, {SERVED_BASE_URLS_ENV: "*"})
    # An app some other server draws to a browser (Textual's web driver) is held to its environment's URLs.
    web = {"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}
    check_served_base_url("http://127.0.0.1:8000/v1", web)
    with pytest.raises(ConfigError):
        check_served_base_url(LISTENER, web)
    # An unreadable list is the empty one, not "anything".
    with pytest.raises(ConfigError):
        check_served_base_url(LISTENER, {SERVED_BASE_URLS_ENV: "{not json"})


def test_refusal_shows_no_credentials_of_the_url():
    with pytest.raises(ConfigError) as caught:
        check_served_base_url("http://alice:s3cret@127.0.0.1:9/v1?api-key=K3Y", served())
    assert "s3cret" not in str(caught.value) and "K3Y" not in str(caught.value) and "alice" not in str(caught.value)


def test_url_key_rejects_what_is_not_an_http_url():
    assert url_key("ftp://host/v1") is None and url_key("http://host:99999/") is None and url_key("x") is None
    assert url_key("http://Host/v1/") == url_key("http://host:80/v1")


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4.1-mini"), ("anthropic", "claude-x"),
                                              ("local", "m")])
def test_every_provider_is_checked_where_runs_and_forks_check_credentials(monkeypatch, provider, model):
    """check_credentials guards the new-run form, start/resume in the TUI, forks before they are stored and
    arms; make_provider (in the run process) checks again, its override URL too."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv(SERVED_BASE_URLS_ENV, "[]")
    config = RunConfig(provider=provider, model=model, base_url=LISTENER)
    with pytest.raises(ConfigError, match="refused"):
        check_credentials(config)
    with pytest.raises(ConfigError, match="refused"):
        make_provider(config)
    with pytest.raises(ConfigError, match="refused"):
        make_provider(RunConfig(provider=provider, model=model), base_url=LISTENER)
    monkeypatch.setenv(SERVED_BASE_URLS_ENV, json.dumps([LISTENER]))
    check_credentials(config)
    make_provider(config)
    monkeypatch.delenv(SERVED_BASE_URLS_ENV)
    check_credentials(config)                        # not served: as before


def test_sim_is_never_refused(monkeypatch):
    monkeypatch.setenv(SERVED_BASE_URLS_ENV, "[]")
    config = RunConfig(provider="sim", base_url=LISTENER)
    check_credentials(config)
    make_provider(config)
