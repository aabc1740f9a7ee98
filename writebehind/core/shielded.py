"""Redis calls that finish even when their caller is cancelled.

A task cancelled while redis-py holds a pooled connection (waiting for a
reply, loading scripts before a pipeline, or taking the pool's lock to give
the connection back) can leave that connection counted as in use for good:
with a pool of 8, eight such cancellations and every later call waits for a
connection that never comes. Here the call runs in its own task; a cancelled
caller stops waiting for it at once, and the call itself completes (or fails
on its socket timeout) and hands its connection back as usual. Its outcome is
unknown to the caller, as for any call whose reply was not received.

A connection redis-py closed under the call while it was in use (a failover)
is reported as the lost connection it is, a ``redis.exceptions.ConnectionError``
(``core/replies.is_torn_connection``), so every caller's outage handling sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio

from writebehind.core.replies import as_lost_connection

T = TypeVar("T")


class ShieldedCalls:
    """Runs coroutines to completion in their own tasks; ``drain`` waits for stragglers."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, call: Awaitable[T]) -> T:
        """The call's result; a cancelled caller leaves the call running to its end."""
        task: asyncio.Task[T] = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        try:
            return await asyncio.shield(task)
        except (AttributeError, TypeError) as exc:
            lost = as_lost_connection(exc)
            if lost is exc:
                raise
            raise lost from exc

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned call's error is not logged as lost

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float) -> None:
        """Wait up to ``within`` seconds for calls whose callers went away."""
        with anyio.move_on_after(within):
            while self._tasks:
                await asyncio.wait(set(self._tasks))
