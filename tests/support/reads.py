"""Helpers for read-path tests: a MongoDB client whose finds can be counted and slowed."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.streams import fail_point
from writebehind import ReadPolicy, WriteBehind


class FindCounter(monitoring.CommandListener):
    """Counts the ``find`` commands a client sends, per collection (a MongoDB command listener)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finds: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            with self._lock:
                name = str(event.command["find"])
                self.finds[name] = self.finds.get(name, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def count(self, collection: str) -> int:
        with self._lock:
            return self.finds.get(collection, 0)


def slow_finds(mongo_client: Any, app: str, block_ms: int, mode: Any = "alwaysOn") -> Any:
    """``failCommand``: every ``find`` from clients named ``app`` waits ``block_ms`` first."""
    data = {"failCommands": ["find"], "blockConnection": True, "blockTimeMS": block_ms}
    return fail_point(mongo_client, mode, {**data, "appName": app})


@asynccontextmanager
async def reader(
    redis: Redis,
    mongo_url: str,
    database: str,
    app: str,
    *,
    reads: ReadPolicy | None = None,
    **options: Any,
) -> AsyncIterator[tuple[WriteBehind, FindCounter]]:
    """Another application process's client: its own MongoDB connection (named ``app``,
    for fail points) with its finds counted; same Redis, prefix and partitions as ``wb``."""
    counter = FindCounter()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", appname=app, event_listeners=[counter]
    )
    try:
        async with WriteBehind(
            redis=redis, mongo=client[database], prefix="t", partitions=4, reads=reads, **options
        ) as wb:
            yield wb, counter
    finally:
        await client.close()
