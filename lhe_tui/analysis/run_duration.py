"""How long a run takes at least under its client-side rate limits (--rpm, --tpm), for `run --estimate`.

Pure arithmetic on the forecast's counts, mirroring lhe_tui.runner.rate_limit: each limit is a token bucket
holding one minute's allowance that starts full and refills at rate / 60 a second, so N requests under --rpm R
cannot all be sent sooner than (N - R) / R minutes (the first R go at once), and the input tokens under --tpm
likewise (a request above a whole minute's allowance takes a full bucket). The larger of the two binds.

It is a lower bound: the time the model takes to reply is not counted unless given (`latency_s` a request:
then N x latency / (the samples in flight at once: --concurrency, at most the samples), since a sample's
turns go one after another), and retries, which also draw on the buckets, are not counted either.
"""

from __future__ import annotations

from dataclasses import dataclass

LIMITS = ("rpm", "tpm", "latency")
NAMES = {"rpm": "--rpm", "tpm": "--tpm", "latency": "reply time"}


@dataclass(frozen=True)
class Duration:
    """The run's least duration in seconds and which bound gives it (None: no limit and no latency given)."""

    seconds: float
    binding: str | None
    bounds: dict[str, float]    # each given limit's own lower bound ("rpm", "tpm", "latency")


def bucket_seconds(amount: float, per_minute: int) -> float:
    """Seconds to take `amount` from a bucket of a minute's allowance that starts full."""
    return max(0.0, amount - per_minute) * 60.0 / per_minute


def run_duration(requests: int, limited_tokens: int, *, rpm: int | None, tpm: int | None,
                 latency_s: float | None = None, parallel: int = 1) -> Duration:
    """`limited_tokens`: the input tokens the --tpm bucket is charged over the run (each request's, capped at
    a minute's allowance); `parallel`: samples in flight at once."""
    bounds: dict[str, float] = {}
    if rpm:
        bounds["rpm"] = bucket_seconds(requests, rpm)
    if tpm:
        bounds["tpm"] = bucket_seconds(limited_tokens, tpm)
    if latency_s:
        bounds["latency"] = requests * latency_s / max(1, parallel)
    if not bounds:
        return Duration(0.0, None, bounds)
    binding = max(bounds, key=lambda name: (bounds[name], -LIMITS.index(name)))
    return Duration(bounds[binding], binding, bounds)


def fmt_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def duration_lines(duration: Duration, *, requests: int, limited_tokens: int, rpm: int | None, tpm: int | None,
                   latency_s: float | None, parallel: int) -> list[str]:
    """The forecast's duration line(s): the least duration, the binding limit named, what is not counted."""
    if duration.binding is None:
        return ["  duration       no client-side limit (--rpm, --tpm) and no reply time given "
                "(--estimate-latency SECONDS): no forecast of the time"]
    if duration.binding == "rpm":
        why = f"--rpm {rpm:,} binds: {requests:,} requests at {rpm:,} a minute, the first {rpm:,} at once"
    elif duration.binding == "tpm":
        why = f"--tpm {tpm:,} binds: {limited_tokens:,} input tokens at {tpm:,} a minute, the first {tpm:,} at once"
    else:
        why = f"reply time binds: {requests:,} requests x {latency_s:g} s, {parallel:,} samples at a time"
    out = [f"  duration       at least {fmt_duration(duration.seconds)} ({why})"]
    others = [f"{NAMES[name]} alone: {fmt_duration(seconds)}" for name, seconds in duration.bounds.items()
              if name != duration.binding]
    if others:
        out.append(f"                 ({'; '.join(others)})")
    if latency_s:
        out.append("                 a lower bound: retries not counted")
    else:
        out.append("                 a lower bound from the limits: reply time and retries not counted "
                   "(--estimate-latency SECONDS adds the reply time)")
    return out
