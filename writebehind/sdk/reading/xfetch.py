"""XFetch: when a read of a clean entry should refresh it early (no IO).

Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede
Prevention", VLDB 2015: refresh when ``-delta * beta * ln(rand()) >= time
left``, with ``delta`` the time a recomputation takes and ``rand()`` uniform
on (0, 1]. The chance rises smoothly as expiry nears, so one of many readers
refreshes a hot entry shortly before it expires, and a cold one is left alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def refresh_due(
    *,
    beta: float,
    load_ms: int | None,
    fallback_delta: float,
    ttl_ms: int,
    rand: Callable[[], float],
) -> bool:
    """``should_refresh`` for a cache entry: ``delta`` is the entry's own load time
    (``load_ms``, ms) when it was recorded, else ``fallback_delta`` (seconds);
    ``ttl_ms`` is its PTTL in ms."""
    delta = load_ms / 1000 if load_ms else fallback_delta
    return should_refresh(delta=delta, beta=beta, time_left=ttl_ms / 1000, rand=rand)


def should_refresh(
    *, delta: float, beta: float, time_left: float, rand: Callable[[], float]
) -> bool:
    """Whether to refresh now. ``delta`` and ``time_left`` in seconds, ``beta`` >= 0.

    ``time_left`` <= 0 (expired) or ``beta`` == 0 (off) never refresh: an
    expired entry is a miss, not a refresh. ``rand()`` may return 0 (Python's
    ``random.random()`` does, rarely): ``-ln(0)`` is infinite, so that read
    refreshes, instead of raising from ``math.log(0)``.
    """
    if beta <= 0 or time_left <= 0 or delta <= 0:
        return False
    r = rand()
    if r <= 0:
        return True
    return -delta * beta * math.log(min(r, 1.0)) >= time_left
