"""Calls to Redis with a deadline and a circuit breaker: a dead Redis costs nothing per call.

One per ``WriteBehind`` (one Redis). Reads ask ``call`` and fall back to
MongoDB on ``CacheUnavailable``; writes let it propagate. Only the signs of an
unreachable Redis count as failures (no answer in time, a refused, reset or
lost connection, Redis still loading): an error reply is an answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.errors import CacheUnavailable
from writebehind.core.redis_client import REFUSED, exhausted, pool_exhausted
from writebehind.core.shielded import ShieldedCalls
from writebehind.sdk.metrics import SDK_BREAKER_OPEN, SDK_READS
from writebehind.sdk.reading.breaker import CircuitBreaker, State

T = TypeVar("T")

PER_ITEM = 0.0002
"""Seconds a call's deadline grows per item after the first (200 µs: several times
what Redis takes to run one write script or read one entry)."""

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)
# A refused password is an answer, not an outage (core/redis_client.py), and a full pool
# is this process's own congestion: read around either, and a wrong password or a burst
# would silently serve MongoDB's older data and open the breaker.


class RedisGuard:
    """Deadline, circuit breaker and cancellation safety around every SDK call to Redis.

    The call itself runs through ``calls`` (``core/shielded.py``): a caller
    cancelled or timed out stops waiting at once, while the call ends on its
    own and hands its pooled connection back.

    Waiting for a free pooled connection is not waiting for Redis: a burst of
    calls first queues for one of ``slots`` (the pool's size) for up to
    ``slot_wait`` seconds, outside the deadline, then raises
    ``ConnectionPoolExhausted``. So a burst neither times out as if Redis were
    down nor opens the circuit.
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        prefix: str,
        calls: ShieldedCalls,
        slots: int = 2**31,
        slot_wait: float = float("inf"),
    ) -> None:
        self.breaker = breaker
        self._calls = calls
        self._slots = anyio.Semaphore(slots) if slots < 2**20 else None
        self._slot_wait = slot_wait
        self._gauge = SDK_BREAKER_OPEN.labels(prefix)
        self._open = False
        self._gauge.set(0)

    async def call(
        self, make: Callable[[], Awaitable[T]], limit: float, what: str, items: int = 1
    ) -> T:
        """Await ``make()`` within ``limit`` seconds; ``CacheUnavailable`` if Redis is not there.

        ``make`` is only called when the breaker lets the call through, so a
        refused call sends nothing (``CacheUnavailable.written`` is ``False``).
        A call of many ``items`` (a ``set_many``, a ``get_many``) gets
        ``PER_ITEM`` seconds more for each after the first: a big batch takes a
        healthy Redis longer than ``limit``, and must not read as an outage.
        """
        limit += max(0, items - 1) * PER_ITEM
        if not self.breaker.allow():
            raise CacheUnavailable(
                f"Redis is unavailable (circuit open after repeated failures); {what} was not sent",
                written=False,
            )
        if self._slots is not None:
            try:
                self._slots.acquire_nowait()  # the common case, without a coroutine
            except anyio.WouldBlock:
                await self._wait_for_slot()
        try:
            call = make() if self._slots is None else self._holding_slot(make)
            result = await self._calls.run(call, within=limit)
        except UNREACHABLE as exc:
            if isinstance(exc, REFUSED):
                raise  # an answer (a wrong password, a missing right): Redis is there
            if pool_exhausted(exc):  # no connection free: Redis was not asked
                raise exhausted() from exc
            self._record(self.breaker.failure())
            raise CacheUnavailable(
                f"Redis did not answer {what} within {limit:g} s ({type(exc).__name__})",
                written=None,
            ) from exc
        self._record(self.breaker.success())
        return result

    @property
    def breaker_open(self) -> bool:
        """Whether the circuit is open (calls refused without being sent)."""
        return self._open

    async def _wait_for_slot(self) -> None:
        assert self._slots is not None
        with anyio.move_on_after(self._slot_wait):
            await self._slots.acquire()
            return
        raise exhausted()

    async def _holding_slot(self, make: Callable[[], Awaitable[T]]) -> T:
        """``make()``, giving the slot back when the call itself ends (not its caller)."""
        assert self._slots is not None
        try:
            return await make()
        finally:
            self._slots.release()

    def _record(self, state: State) -> None:
        now_open = state == "open"
        if now_open != self._open:
            self._open = now_open
            self._gauge.set(1 if now_open else 0)
            SDK_READS.labels("", "breaker", "opened" if now_open else "closed").inc()
