"""Slots for batches in flight to MongoDB, as many as a (possibly moving) limit allows.

``anyio.Semaphore`` has a fixed value; the adaptive limit
(``worker/concurrency.py``) moves. Here a batch waits while the batches in
flight reach the limit, and each batch's start, size and outcome go back to
the limit when it ends. A batch cancelled (a forced stop) tells it nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import anyio


class Limit(Protocol):
    """What ``BatchSlots`` needs of a limit (``AdaptiveLimit``, ``FixedLimit``)."""

    @property
    def limit(self) -> int: ...

    def record(self, started: float, records: int, in_flight: int, *, ok: bool = True) -> int: ...


class BatchSlots:
    """``async with slots.slot(records):`` around one batch; ``limit`` decides how many at once.

    ``clock`` gives seconds and must be the limit's own clock (both default to
    ``time.monotonic``).
    """

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.in_flight = 0
        self._clock = clock
        self._freed = anyio.Event()

    @asynccontextmanager
    async def slot(self, records: int) -> AsyncIterator[None]:
        """Wait for a free slot, hold it for the block, then report the batch to the limit."""
        while self.in_flight >= self.limit.limit:
            await self._freed.wait()
        self.in_flight += 1
        started = self._clock()
        try:
            yield
        except Exception:
            self._release(started, records, ok=False)
            raise
        except BaseException:
            self._release(None, records, ok=False)
            raise
        self._release(started, records, ok=True)

    def _release(self, started: float | None, records: int, *, ok: bool) -> None:
        if started is not None:
            self.limit.record(started, records, self.in_flight, ok=ok)
        self.in_flight -= 1
        self._freed.set()
        self._freed = anyio.Event()
