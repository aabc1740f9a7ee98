"""Capped exponential backoff with jitter, and the one retry loop built on it.

Every wait-and-try-again in writebehind (MongoDB and Redis outages in the
worker, re-applies in replay and re-drives, read-modify-write conflicts in
the SDK) takes its delays from ``Backoff``, so no two retry policies drift
apart. ``Backoff`` itself does no IO; ``retry`` sleeps between attempts.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

T = TypeVar("T")


@dataclass(slots=True)
class Backoff:
    """Delays for the n-th failure in a row: ``uniform(c / 2, c)``, ``c = min(cap, base * 2**n)``.

    In seconds. The jitter keeps a fleet of workers from retrying a recovering
    MongoDB in lockstep; the floor of ``c / 2`` keeps a retry storm from
    forming at 0. ``reset()`` after a success.
    """

    base: float = 0.05
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 62)))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[BaseException], bool],
    backoff: Backoff | None = None,
    give_up_after: float | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``await call()`` until it succeeds, sleeping ``backoff``'s delays between attempts.

    Only exceptions ``transient`` accepts are retried; any other is raised at
    once (a bug must not be retried for minutes). After ``give_up_after``
    seconds (``None``: never) the last transient exception is raised.
    ``on_retry(exc, delay_seconds)`` is called before each sleep (for logs).
    """
    backoff = backoff if backoff is not None else Backoff()
    deadline = None if give_up_after is None else anyio.current_time() + give_up_after
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc):
                raise
            if deadline is not None and anyio.current_time() > deadline:
                raise
            delay = backoff.next_delay()
            if on_retry is not None:
                on_retry(exc, delay)
        await anyio.sleep(delay)
