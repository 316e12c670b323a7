"""Turn SDK exceptions (openai, anthropic) into our ProviderError: transient (retry) or permanent."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from urllib.parse import urlsplit

from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import ReplyTooLarge

TRANSIENT_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 529}


def _seconds(text: object, scale: float = 1.0) -> float | None:
    """A finite, positive number of seconds, or None (garbage, nan, inf, 0 or negative: the usual backoff)."""
    try:
        value = float(str(text).strip()) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def retry_after_seconds(headers: object) -> float | None:
    """Read Retry-After (seconds or an HTTP date) or retry-after-ms from response headers.

    None for anything that is not a positive finite delay: a server's garbage never fails a turn, it
    only leaves the wait to the backoff (which also bounds it, runner.retry)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        millis, value = get("retry-after-ms"), get("retry-after")
    except Exception:  # headers of an odd kind: nothing to honour
        return None
    if millis:
        seconds = _seconds(millis, 0.001)
        if seconds is not None:
            return seconds
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None or str(value).strip().lstrip("+-").replace(".", "", 1).isdigit():
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
        return _seconds(parsed.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def _short(message: str, limit: int = 200) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def redirected(provider: str, status: int, headers: object) -> ProviderError:
    """A 3xx: named as such and not followed (following would re-send the prompt, and the key, elsewhere)."""
    get = getattr(headers, "get", None)
    location = (get("location") if get is not None else None) or "(no Location)"
    return ProviderError(f"{provider}: HTTP {status}: the server redirected to {_short(location, 120)}; lhe-tui "
                         f"does not follow redirects: fix --base-url", status=status)


def status_error(provider: str, status: int, message: str, headers: object) -> ProviderError:
    """An HTTP error status as a ProviderError: transient for 408/409/425/429/5xx/529, with Retry-After."""
    if 300 <= status < 400:
        return redirected(provider, status, headers)
    hint = {401: "authentication failed (check the API key)", 403: "permission denied",
            404: "not found (check --model and --base-url)", 400: "bad request"}.get(status, "")
    text = f"{provider}: HTTP {status}" + (f" {hint}" if hint else "") + f": {_short(message)}"
    return ProviderError(text, transient=status in TRANSIENT_STATUSES or status >= 500,
                         retry_after=retry_after_seconds(headers), status=status)


def timed_out(provider: str) -> ProviderError:
    return ProviderError(f"{provider}: request timed out (no data for --timeout seconds)", transient=True,
                         unreachable=True)


class RequestDeadline:
    """`async with RequestDeadline(provider, seconds):` the whole request, its stream included, ends
    within `seconds` or fails as a transient ProviderError (the idle timeout alone let a server that
    trickles a byte, or a `: ping`, now and then hold a request for ever)."""

    __slots__ = ("provider", "seconds", "_timeout")

    def __init__(self, provider: str, seconds: float) -> None:
        self.provider = provider
        self.seconds = seconds

    async def __aenter__(self) -> None:
        self._timeout = asyncio.timeout(self.seconds)
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> bool | None:
        try:
            return await self._timeout.__aexit__(kind, exc, tb)  # type: ignore[arg-type]
        except TimeoutError as error:
            if not self._timeout.expired():
                raise
            raise ProviderError(f"{self.provider}: no complete reply within the deadline of {self.seconds:g} s "
                                f"(--deadline)", transient=True, unreachable=True) from error


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


def describe(exc: BaseException) -> str:
    """What went wrong, in a few words: the OS's reason (strerror) where one is behind `exc`, else the
    first non-empty message along its causes, else its class name."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return _short(cause.strerror, 120)
    for cause in causes:
        text = str(cause).strip()
        if text:
            return _short(text if text.startswith(cause.__class__.__name__) else
                          f"{cause.__class__.__name__}: {text}", 160)
    return exc.__class__.__name__


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
        return ProviderError(text, transient=not local, refused=True, unreachable=True)
    return ProviderError(f"{provider}: cannot connect ({describe(cause)})", transient=True, unreachable=True)


def broke_off(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(f"{provider}: stream broke off ({exc.__class__.__name__}: {_short(str(exc))})",
                         transient=True, unreachable=True)


def connection_lost(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(f"{provider}: connection lost ({describe(exc)})", transient=True, unreachable=True)


def invalid_utf8(provider: str, exc: UnicodeDecodeError) -> ProviderError:
    """A stream event that is not UTF-8: malformed data from the server (transient, as other garbage)."""
    return ProviderError(f"{provider}: the server sent malformed data: a stream event is not UTF-8 "
                         f"(byte {exc.object[exc.start:exc.start + 1]!r} at {exc.start})", transient=True)


def from_sdk_error(provider: str, exc: BaseException, sdk: object, url: str | None = None) -> ProviderError:
    """Map an exception from the `openai` or `anthropic` module (`sdk`) to a ProviderError."""
    if isinstance(exc, getattr(sdk, "APIStatusError")):
        return status_error(provider, exc.status_code, getattr(exc, "message", "") or str(exc),
                            exc.response.headers)
    if isinstance(exc, getattr(sdk, "APITimeoutError")):
        return timed_out(provider)
    if isinstance(exc, getattr(sdk, "APIConnectionError")):
        cause = exc.__cause__ or exc
        if refused(cause) is None and cause.__class__.__name__ not in ("ConnectError", "ConnectTimeout"):
            return connection_lost(provider, cause)  # connected, then the exchange broke (as http1 says it)
        return cannot_connect(provider, cause, url)
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
        too_large = next((cause for cause in _causes(exc) if isinstance(cause, ReplyTooLarge)), None)
        if too_large is not None:   # the line cap ended the reading (the anthropic SDK wraps it): a cut-off reply
            raise too_large from None
        raise from_sdk_error(provider, exc, sdk, url) from exc
    except (OSError, asyncio.TimeoutError, httpx2.TransportError) as exc:
        raise connection_lost(provider, exc) from exc
    except UnicodeDecodeError as exc:  # the SDK's decoding of an event: the server sent bytes that are not UTF-8
        raise invalid_utf8(provider, exc) from exc
    except ValueError as exc:  # the SDK's json.loads of an event's data: the server sent garbage
        if not isinstance(exc, json.JSONDecodeError):
            raise
        raise ProviderError(f"{provider}: the stream sent malformed JSON: {_short(repr(exc.doc), 80)}",
                            transient=True) from exc
