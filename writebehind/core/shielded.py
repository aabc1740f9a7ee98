"""Redis calls that finish even when their caller is cancelled, with a deadline.

A task cancelled while redis-py holds a pooled connection (waiting for a
reply, loading scripts before a pipeline, or taking the pool's lock to give
the connection back) can leave that connection counted as in use for good:
with a pool of 8, eight such cancellations and every later call waits for a
connection that never comes. Here the call runs in its own task; a cancelled
caller stops waiting for it at once, and the call itself completes (or fails
on its socket timeout) and hands its connection back as usual. Its outcome is
unknown to the caller, as for any call whose reply was not received.

The deadline (``within``) works the same way: when it passes, the caller gets
``TimeoutError`` and the call runs on to its end. It is a timer on the loop
that fails the caller's future, not a cancel scope around the caller: nothing
is cancelled, so no cancellation has to be told apart from the caller's own
(docs/benchmarks.md, "Round 2": entering and leaving ``anyio.fail_after`` was a
third of the SDK's own time per call).

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

    async def run(self, call: Awaitable[T], within: float | None = None) -> T:
        """The call's result; a cancelled caller leaves the call running to its end.

        ``within``: seconds the caller waits at most (``None``: no limit); then
        ``TimeoutError`` is raised to the caller while the call runs on.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        task = loop.create_task(_into(call, waiter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        timer = None if within is None else loop.call_at(loop.time() + within, _expire, waiter)
        try:
            return await waiter
        except (AttributeError, TypeError) as exc:
            lost = as_lost_connection(exc)
            if lost is exc:
                raise
            raise lost from exc
        finally:
            if timer is not None:
                timer.cancel()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float) -> None:
        """Wait up to ``within`` seconds for calls whose callers went away."""
        with anyio.move_on_after(within):
            while self._tasks:
                await asyncio.wait(set(self._tasks))


async def _into(call: Awaitable[T], waiter: asyncio.Future[T]) -> None:
    """Await ``call`` and hand its outcome to ``waiter``, unless the caller stopped waiting.

    Handed over from inside the task, not by a done-callback: one pass of the
    event loop less per call than ``asyncio.shield``. An error is handed over,
    not raised, so an abandoned call's error is not logged as never retrieved.
    """
    try:
        result = await call
    except asyncio.CancelledError:  # the loop is shutting down: the caller is told so
        if not waiter.done():
            waiter.cancel()
        raise
    except BaseException as exc:
        if not waiter.done():
            waiter.set_exception(exc)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: not ours to swallow
    else:
        if not waiter.done():
            waiter.set_result(result)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
