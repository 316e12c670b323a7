"""What an app `lhe-tui serve` started may send its keys to (issue 22): only the base URLs the server was
started with, unless it was started with --allow-any-base-url.

A served app runs with the server's environment, API keys included, and anyone who reaches its page can
type a base URL into the new-run form: running there would hand the key to that address as a Bearer
header. So in a served app every base URL a run is given (new run, resume, fork, arms: all go through
`providers.factory.check_credentials`) must be one of:

- none (the provider's own endpoint, or $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL, which the server's
  environment configured);
- $OPENAI_BASE_URL or $ANTHROPIC_BASE_URL written out;
- one `lhe-tui serve --base-url URL` named (handed to the app in $LHE_TUI_SERVED_BASE_URLS).

An app knows it is served by $LHE_TUI_SERVED_BASE_URLS (set by `lhe-tui serve` in each app's environment:
a JSON list of URLs, or `*` for --allow-any-base-url), or by Textual's web driver in $TEXTUAL_DRIVER (an
app some other server started: only the environment's base URLs then). URLs are compared with scheme and
host in lower case, the default port written out and the path's trailing slash dropped. No Textual here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from lhe_tui.common.errors import ConfigError

SERVED_BASE_URLS_ENV = "LHE_TUI_SERVED_BASE_URLS"
ANY_BASE_URL = "*"
ENV_BASE_URLS = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")
WEB_DRIVER = "web_driver"
"""In $TEXTUAL_DRIVER when Textual draws to a browser (textual-serve, textual-web)."""
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_key(url: str) -> str | None:
    """A base URL as compared: lower-case scheme and host, explicit port, no trailing slash; None when it
    is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    userinfo = parts.netloc.rpartition("@")[0]
    query = f"?{parts.query}" if parts.query else ""
    return (f"{scheme}://{userinfo + '@' if userinfo else ''}{parts.hostname.lower()}:"
            f"{port or DEFAULT_PORTS[scheme]}{parts.path.rstrip('/')}{query}")


def shown(url: str) -> str:
    """A base URL as an error message may show it: no user, password or query (they may hold a key)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(not a URL)"


def served_base_urls(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The base URLs this app may run against: None when it is not served (or serve allows any)."""
    env = os.environ if environ is None else environ
    listed = env.get(SERVED_BASE_URLS_ENV)
    if listed is None and WEB_DRIVER not in env.get("TEXTUAL_DRIVER", ""):
        return None
    if listed is not None and listed.strip() == ANY_BASE_URL:
        return None
    urls: list[str] = []
    if listed:
        try:
            parsed = json.loads(listed)
        except ValueError:
            parsed = []          # unreadable: only the environment's, the safe side
        urls += [url for url in parsed if isinstance(url, str)] if isinstance(parsed, list) else []
    urls += [env[name] for name in ENV_BASE_URLS if env.get(name)]
    return urls


def check_served_base_url(url: str | None, environ: Mapping[str, str] | None = None) -> None:
    """Refuse, in one line, a base URL a served app may not send its keys to; anything goes elsewhere."""
    if not url:
        return
    allowed = served_base_urls(environ)
    if allowed is None:
        return
    key = url_key(url)
    if key is not None and key in {url_key(a) for a in allowed}:
        return
    endpoints = "the providers' own endpoints"
    if allowed:
        endpoints += " and " + ", ".join(shown(a) for a in allowed)
    raise ConfigError(f"base URL {shown(url)} refused: an app served by `lhe-tui serve` runs only against "
                      f"{endpoints} (start serve with --base-url {shown(url)} to allow it, or --allow-any-base-url)")
