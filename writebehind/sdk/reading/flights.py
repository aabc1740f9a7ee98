"""In-process stampede control: one load per cache key at a time, shielded from its callers.

Concurrent misses of one key in one process share one load. The load runs in
a task of its own, so a caller that is cancelled stops waiting and nothing
else: the load and the other callers carry on (cashews cancels every waiter
when one is). An exception from the load reaches every caller of that load and
is not kept: the next miss loads again.

``close()`` (the client's ``aclose()``) cancels the loads in flight; their
callers get ``ClientClosed``, never a bare ``CancelledError`` they did not ask for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from writebehind.core.errors import ClientClosed

Load = Callable[[list[str]], Awaitable[Mapping[str, Any]]]
"""Loads the given keys; a value that is an exception is raised to that key's callers."""


class Flights:
    """The loads in flight (per cache key) and the read side's background tasks."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refreshing: set[str] = set()
        """Keys with an early refresh in flight in this process (one at a time per key)."""
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Keys with a load in flight."""
        return len(self._running)

    def start(self, keys: Sequence[str], load: Load) -> dict[str, asyncio.Future[Any]]:
        """A future per key: a load already in flight for it, or one started now for the rest.

        Raises ``ClientClosed`` after ``close()``.
        """
        if self._closed:
            raise _closed()
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Any]] = {}
        owned: dict[str, asyncio.Future[Any]] = {}
        for key in keys:
            future = self._running.get(key)
            if future is None:
                future = loop.create_future()
                self._running[key] = future
                future.add_done_callback(self._forget(key))
                owned[key] = future
            futures[key] = future
        if owned:
            self.spawn(self._run(owned, load))
        return futures

    def refresh_once(self, key: str, refresh: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``refresh()`` in the background unless one for ``key`` is in flight here."""
        if key in self.refreshing:
            return
        self.refreshing.add(key)

        async def run() -> None:
            try:
                await refresh()
            finally:
                self.refreshing.discard(key)

        self.spawn(run())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; ``close()`` cancels it (after it: not run)."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, owned: dict[str, asyncio.Future[Any]], load: Load) -> None:
        try:
            results = await load(list(owned))
        except asyncio.CancelledError:
            for future in owned.values():
                if self._closed and not future.done():
                    future.set_exception(_closed())
                else:
                    future.cancel()
            raise
        except Exception as exc:
            for future in owned.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in owned.items():
            if future.done():
                continue
            result = results[key]
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _forget(self, key: str) -> Callable[[asyncio.Future[Any]], None]:
        def forget(future: asyncio.Future[Any]) -> None:
            if self._running.get(key) is future:
                del self._running[key]
            if not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning with no caller left

        return forget

    async def close(self) -> None:
        """Cancel every load and refresh still running (the client is closing): their
        callers get ``ClientClosed``."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _closed() -> ClientClosed:
    return ClientClosed(
        "this WriteBehind was closed (aclose()) while the call waited for a load or "
        "computation: it was cancelled, nothing was stored"
    )


async def wait_shielded(future: asyncio.Future[Any]) -> Any:
    """The future's result; cancelling the caller cancels only this wait, not the load."""
    return await asyncio.shield(future)
