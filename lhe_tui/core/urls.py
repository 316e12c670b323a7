"""Credentials in a server URL (`--base-url`): found, refused, and redacted wherever a URL is stored or exported.

The rule (issue 22): a base URL may carry a query string (`?api-version=2024-06-01`), and both OpenAI clients send
it as given; it may not carry a credential, neither user info (`http://user:pass@host`) nor a key-like query
value (`?api-key=K`): a run's config is stored with the session and exported, and the key belongs in
OPENAI_API_KEY / ANTHROPIC_API_KEY. What an older lhe-tui stored is redacted when exported.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lhe_tui.common.errors import ConfigError

REDACTED = "[redacted]"
_KEY_LIKE = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session", re.IGNORECASE)


def _netloc_without_userinfo(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def key_like(name: str) -> bool:
    """Whether a query parameter's name says its value is a credential (api-key, access_token, sig, ...)."""
    return bool(_KEY_LIKE.search(name))


def url_credential(url: str) -> str | None:
    """What credential `url` carries, in a few words ("user info", "the query parameter 'api-key'"), or None."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "user info (user:password@)"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if key_like(name):
            return f"the query parameter {name!r}"
    return None


def redact_url(url: str | None) -> str | None:
    """`url` with its user info and key-like query values replaced by [redacted]; anything else as it was."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{_netloc_without_userinfo(netloc)}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key_like(name) for name, _ in pairs):
        query = urlencode([(name, REDACTED if key_like(name) else value) for name, value in pairs], safe="[]")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def split_query(url: str | None) -> tuple[str | None, dict[str, str] | None]:
    """(`url` without its query string, the query's parameters or None): what the SDKs take as base_url and
    default_query (an SDK joins a path onto a base URL's query string rather than after its path)."""
    if not url:
        return url, None
    parts = urlsplit(url)
    if not parts.query:
        return url, None
    return (urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            dict(parse_qsl(parts.query, keep_blank_values=True)))


def check_base_url(url: str | None) -> None:
    """ConfigError (one line) for a base URL that is not http(s) with a host, or that carries a credential."""
    if url is None:
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise ConfigError(f"--base-url is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url must be an http:// or https:// URL with a host, got {redact_url(url)!r}")
    credential = url_credential(url)
    if credential is not None:
        raise ConfigError(f"--base-url carries a credential ({credential}), which would be stored with the "
                          "session: give the key in OPENAI_API_KEY or ANTHROPIC_API_KEY instead")
    if parts.fragment:
        raise ConfigError(f"--base-url has a fragment (#{parts.fragment[:20]}), which no client sends: remove it")
