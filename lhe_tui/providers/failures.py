"""Turn SDK exceptions (openai, anthropic) into our ProviderError: transient (retry) or permanent."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from urllib.parse import urlsplit

from lhe_tui.errors import ProviderError

TRANSIENT_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 529}


def retry_after_seconds(headers: object) -> float | None:
    """Read Retry-After (seconds or an HTTP date) or retry-after-ms from response headers."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


def _short(message: str, limit: int = 200) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def status_error(provider: str, status: int, message: str, headers: object) -> ProviderError:
    """An HTTP error status as a ProviderError: transient for 408/409/425/429/5xx/529, with Retry-After."""
    hint = {401: "authentication failed (check the API key)", 403: "permission denied",
            404: "not found (check --model and --base-url)", 400: "bad request"}.get(status, "")
    text = f"{provider}: HTTP {status}" + (f" {hint}" if hint else "") + f": {_short(message)}"
    return ProviderError(text, transient=status in TRANSIENT_STATUSES or status >= 500,
                         retry_after=retry_after_seconds(headers), status=status)


def timed_out(provider: str) -> ProviderError:
    return ProviderError(f"{provider}: request timed out", transient=True)


def is_loopback(url: str | None) -> bool:
    """Whether `url`'s host is this machine (localhost or a loopback address; no name lookup)."""
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it was raised from or during, exception groups' members included."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend((current.__cause__, current.__context__))  # type: ignore[arg-type]
        stack.extend(getattr(current, "exceptions", ()) or ())


def refused(exc: BaseException) -> ConnectionRefusedError | None:
    """The ConnectionRefusedError behind `exc`, if a refused connection is what it is."""
    return next((e for e in _causes(exc) if isinstance(e, ConnectionRefusedError)), None)


def cannot_connect(provider: str, cause: BaseException, url: str | None = None) -> ProviderError:
    """A connection that could not be made: transient, except a refused one on this machine.

    Nothing listens on a loopback port that refuses: the server is not running (or died), and retrying
    for a minute would only hide that, so it fails at once. A refusal from another host may be a
    server restarting behind a load balancer: that one is retried."""
    refusal = refused(cause)
    if refusal is not None:
        where = urlsplit(url).netloc if url else ""
        local = is_loopback(url)
        text = (f"{provider}: cannot connect: connection refused{f' by {where}' if where else ''}"
                + (" (nothing listens there: is the server running?)" if local else ""))
        return ProviderError(text, transient=not local)
    return ProviderError(f"{provider}: cannot connect ({_short(str(cause))})", transient=True)


def broke_off(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(f"{provider}: stream broke off ({exc.__class__.__name__}: {_short(str(exc))})",
                         transient=True)


def connection_lost(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(f"{provider}: connection lost ({exc.__class__.__name__})", transient=True)


def from_sdk_error(provider: str, exc: BaseException, sdk: object, url: str | None = None) -> ProviderError:
    """Map an exception from the `openai` or `anthropic` module (`sdk`) to a ProviderError."""
    if isinstance(exc, getattr(sdk, "APIStatusError")):
        return status_error(provider, exc.status_code, getattr(exc, "message", "") or str(exc),
                            exc.response.headers)
    if isinstance(exc, getattr(sdk, "APITimeoutError")):
        return timed_out(provider)
    if isinstance(exc, getattr(sdk, "APIConnectionError")):
        return cannot_connect(provider, exc.__cause__ or exc, url)
    return broke_off(provider, exc)


@contextmanager
def translated_errors(provider: str, sdk: ModuleType, sdk_base_error: type[BaseException],
                      url: str | None = None) -> Iterator[None]:
    """Around a request and its stream: SDK errors and dropped connections become ProviderErrors.
    `url`: the server's (a refused connection on this machine is not retried)."""
    import httpx2  # the SDKs' transport; imported with them, so this costs nothing more

    try:
        yield
    except sdk_base_error as exc:
        raise from_sdk_error(provider, exc, sdk, url) from exc
    except (OSError, asyncio.TimeoutError, httpx2.TransportError) as exc:
        raise connection_lost(provider, exc) from exc
