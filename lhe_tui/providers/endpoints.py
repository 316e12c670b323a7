"""One model on several servers (--base-url repeated): each sample pinned to one, moved when it fails.

Pinning keeps all of a sample's requests on one server, so that server's prefix cache holds the sample's
history and each request prefills only its new turn. Samples are spread so that no server holds more than
its share (the running samples over the servers up, rounded up); --endpoint-concurrency caps the requests
in flight per server.

A server that fails (could not connect, connection lost, stream cut, timed out, or DOWN_AFTER server
errors in a row) is marked down: the request that found out is sent again at once to another server, and
the server's other samples move at their next turn. Nothing is lost: the history is the runner's, and a
request is only a view of it. After a back-off (RETRY_S, doubling to RETRY_CAP_S) one sample tries the
server again; if it answers, it is up, and samples move to it at their next turns until it holds its share.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lhe_tui.core.events import EndpointsChanged, EndpointStatus, SampleFinished
from lhe_tui.common.errors import ProviderError
from lhe_tui.providers.base import Message, OnDelta, Provider, Reply, RequestMeta

if TYPE_CHECKING:
    from lhe_tui.core.events import Event, EventBus
    from lhe_tui.task.model import Task

DOWN_AFTER = 3        # server errors (5xx, a broken stream) in a row that mark a server down
RETRY_S = 5.0         # a server down is tried again after this, doubling each time it is still down,
RETRY_CAP_S = 120.0   # up to this


@dataclass(eq=False)
class Endpoint:
    url: str
    provider: Provider
    slots: asyncio.Semaphore | None        # --endpoint-concurrency
    down_until: float | None = None        # None: up; else when it may be tried again (monotonic)
    downs: int = 0                         # times marked down in a row (the back-off doubles)
    strikes: int = 0                       # server errors in a row
    trier: int | None = None               # down, and this sample's request is trying it again
    filling: bool = False                  # back up: samples move to it until it holds its share
    why: ProviderError | None = None       # what marked it down
    samples: set[int] = field(default_factory=set)

    @property
    def up(self) -> bool:
        return self.down_until is None

    @property
    def trying(self) -> bool:
        return self.trier is not None

    def status(self) -> EndpointStatus:
        state = "up" if self.up else "trying" if self.trying else "down"
        return EndpointStatus(url=self.url, state=state, load=len(self.samples))


def is_server_fault(error: ProviderError) -> bool:
    """Whether `error` says the server failed (rather than the request, or a rate limit): a strike."""
    if error.unreachable:
        return True
    if error.status is None:
        return error.transient          # a malformed or incomplete stream
    return error.status >= 500


class EndpointRouter(Provider):
    """A provider over one provider per server: routes each sample's requests to its server."""

    def __init__(self, servers: list[tuple[str, Provider]], *, concurrency: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if len(servers) < 2:
            raise ValueError("an EndpointRouter needs two servers or more")
        first = servers[0][1]
        super().__init__(first.model, first.settings)
        self.name, self.api_key = first.name, first.api_key   # the label and the secrets of one model
        self.endpoints = [Endpoint(url, provider, asyncio.Semaphore(concurrency) if concurrency else None)
                          for url, provider in servers]
        self.pins: dict[int, Endpoint] = {}
        self.clock = clock
        self._emit: Callable[[Event], None] | None = None
        self._told: tuple[EndpointStatus, ...] = ()
        self._telling = False

    # ---- the Provider interface ----------------------------------------------------------------
    def bind_task(self, task: Task) -> None:
        for endpoint in self.endpoints:
            endpoint.provider.bind_task(task)

    def attach(self, bus: EventBus) -> None:
        self._emit = bus.emit
        bus.subscribe(self._on_event)

    async def complete(self, messages: list[Message], meta: RequestMeta, on_delta: OnDelta | None = None) -> Reply:
        sample = meta.sample_index
        while True:   # each pass marks a server down or returns: at most one pass per server and back-off
            endpoint = self.route(sample)
            try:
                if endpoint.slots is None:
                    reply = await endpoint.provider.complete(messages, meta, on_delta)
                else:
                    async with endpoint.slots:
                        if not endpoint.up and endpoint.trier != sample:
                            continue   # it went down while this request waited for a slot: not sent
                        reply = await endpoint.provider.complete(messages, meta, on_delta)
            except ProviderError as error:
                if not self.failed(endpoint, error, sample):
                    raise
                continue   # its server is down: the same request goes to another one now
            except BaseException:
                if endpoint.trier == sample:   # cancelled while trying it: the next request tries instead
                    endpoint.trier = None
                raise
            self.answered(endpoint)
            return reply

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.provider.aclose()

    # ---- routing -------------------------------------------------------------------------------
    def share(self) -> int:
        """The most samples a server up should hold: the running samples over the servers up, rounded up."""
        up = sum(e.up for e in self.endpoints)
        return math.ceil(len(self.pins) / up) if up else len(self.pins)

    def route(self, sample: int) -> Endpoint:
        """The server for `sample`'s next request: its own while that is up and no recovered server is
        short of its share; else the least loaded server up (or a server due to be tried again). A
        transient ProviderError when every server is down."""
        current = self.pins.get(sample)
        now = self.clock()
        due = next((e for e in self.endpoints if not e.up and not e.trying and e.down_until <= now), None)
        if due is not None:       # its back-off is over: this sample tries it
            due.trier = sample
            return self._pin(sample, due)
        up = [e for e in self.endpoints if e.up]
        if not up:
            wait = max(0.0, min(e.down_until for e in self.endpoints if e.down_until is not None) - now)
            # every one refused (nothing listens): on the run's first request the runner ends the run at once
            refused = all(e.why is not None and e.why.refused for e in self.endpoints)
            last = max(self.endpoints, key=lambda e: e.down_until or 0.0).why
            raise ProviderError(f"all {len(self.endpoints)} servers are down (the next is tried in {wait:.0f} s)"
                                + (f"; the last: {last}" if last is not None else ""),
                                transient=True, retry_after=wait or None, refused=refused)
        if current is not None and current.up:
            if len(current.samples) <= self.share():
                return current
            short = [e for e in up if e.filling and len(e.samples) < self.share()]
            if not short:
                return current
            up = short
        return self._pin(sample, min(up, key=lambda e: len(e.samples)))

    def _pin(self, sample: int, endpoint: Endpoint) -> Endpoint:
        current = self.pins.get(sample)
        if current is not endpoint:
            if current is not None:
                current.samples.discard(sample)
            endpoint.samples.add(sample)
            self.pins[sample] = endpoint
            if endpoint.filling and len(endpoint.samples) >= self.share():
                endpoint.filling = False
            self._changed()
        return endpoint

    # ---- what the servers did ------------------------------------------------------------------
    def failed(self, endpoint: Endpoint, error: ProviderError, sample: int) -> bool:
        """Note `error` from `endpoint` to `sample`'s request; whether its server is down now (then the
        request goes elsewhere)."""
        fault = is_server_fault(error)
        if not endpoint.up:
            if endpoint.trier != sample:
                return True       # it went down while this request was in flight
            if fault:             # tried again and still failing: a longer back-off
                self._down(endpoint, error)
                return True
            self.answered(endpoint)   # it answered (a 4xx, a 429): it is up; the error is the request's
            return False
        if not fault:
            return False
        endpoint.strikes += 1
        if error.unreachable or endpoint.strikes >= DOWN_AFTER:
            self._down(endpoint, error)
            return True
        return False              # one server error: the runner retries it there, after its back-off

    def answered(self, endpoint: Endpoint) -> None:
        endpoint.strikes = 0
        if not endpoint.up:
            endpoint.down_until, endpoint.downs, endpoint.trier = None, 0, None
            endpoint.filling = True
            self._changed()

    def _down(self, endpoint: Endpoint, why: ProviderError) -> None:
        endpoint.why = why
        endpoint.downs += 1
        endpoint.down_until = self.clock() + min(RETRY_CAP_S, RETRY_S * 2 ** (endpoint.downs - 1))
        endpoint.trier, endpoint.filling = None, False
        endpoint.strikes = 0
        self._changed()

    # ---- telling the views ---------------------------------------------------------------------
    def statuses(self) -> tuple[EndpointStatus, ...]:
        return tuple(e.status() for e in self.endpoints)

    def _on_event(self, event: Event) -> None:
        if type(event) is SampleFinished:
            endpoint = self.pins.pop(event.sample, None)
            if endpoint is not None:
                endpoint.samples.discard(event.sample)
                self._changed()

    def _changed(self) -> None:
        """Tell the views once per loop pass (a run's first requests pin every sample in one burst)."""
        if self._emit is None or self._telling:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._tell()
            return
        self._telling = True
        loop.call_soon(self._tell)

    def _tell(self) -> None:
        self._telling = False
        statuses = self.statuses()
        if statuses != self._told and self._emit is not None:
            self._told = statuses
            self._emit(EndpointsChanged(statuses))
