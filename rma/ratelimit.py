"""Rate limits of the portal's order lookup (DESIGN.md section 10, contract):

- 10 lookups per minute per client IP (`REMOTE_ADDR`, or with
  `TRUSTED_PROXY_COUNT=N` the Nth `X-Forwarded-For` entry from the right,
  the address the outermost trusted proxy saw);
- 5 lookups per order number (per tenant, normalized) per 15 minutes.

A sliding-window counter on Django's cache: two fixed windows (current and
previous), the previous one weighted by how much of it still overlaps the
sliding window, so a burst across a window boundary cannot double the rate.
The counter is incremented with `cache.add` + `cache.incr` (atomic on Redis);
a refused request is taken back out, so a client that keeps knocking only
waits as long as `Retry-After` says. Every key has a TTL (two windows).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window_seconds: int


LOOKUP_PER_IP = Limit("lookup-ip", 10, 60)
LOOKUP_PER_ORDER = Limit("lookup-order", 5, 15 * 60)


def client_ip(request: HttpRequest) -> str:
    """The client's address: `REMOTE_ADDR`, or the `TRUSTED_PROXY_COUNT`-th
    `X-Forwarded-For` entry from the right when proxies are trusted (entries
    further left are whatever the client chose to send). With fewer entries
    than trusted proxies the header is not trusted."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [part.strip() for part in header.split(",") if part.strip()]
    if len(entries) < count:
        return remote
    return entries[-count]


def _key(limit: Limit, ident: str, window: int) -> str:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"rl:{limit.name}:{digest}:{window}"


def _incr(key: str, ttl: int) -> int:
    cache.add(key, 0, timeout=ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=ttl)
        return 1


def hit(limit: Limit, ident: str, *, now: float) -> int | None:
    """Count one request of `ident` against `limit` at `now` (epoch seconds).

    Returns None when allowed, else the seconds to wait (`Retry-After`, >= 1).
    """
    window = int(now // limit.window_seconds)
    elapsed = now - window * limit.window_seconds
    ttl = 2 * limit.window_seconds + 1
    current_key = _key(limit, ident, window)
    current = _incr(current_key, ttl)
    previous = int(cache.get(_key(limit, ident, window - 1)) or 0)
    weight = 1 - elapsed / limit.window_seconds
    estimate = previous * weight + current
    if estimate <= limit.limit:
        return None
    with contextlib.suppress(ValueError):
        cache.decr(current_key)
    current -= 1
    return max(1, math.ceil(_wait(previous, current, elapsed, limit)))


def _wait(previous: int, current: int, elapsed: float, limit: Limit) -> float:
    """Seconds until one more request fits, if none is made meanwhile.

    Within this window the estimate is `previous * (1 - (elapsed + t) / w) + current`;
    in the next one it is `current * (1 - e' / w)`. Solve for the first `t`
    that leaves room for one request.
    """
    w = limit.window_seconds
    room = limit.limit - 1
    if current <= room and previous > 0:
        t = w * (1 - (room - current) / previous) - elapsed
        if t <= w - elapsed:
            return max(t, 0.0)
    later = w * (1 - room / current) if current > 0 else 0.0
    return (w - elapsed) + max(0.0, later)
