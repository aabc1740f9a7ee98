"""Helpers for read-path tests: a MongoDB client whose finds can be counted and slowed, and a
read held between its load and its fill."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.proxy import Proxy
from tests.support.streams import fail_point
from tests.support.waiting import wait_until
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


@dataclass
class HeldRead:
    """What a held read returned (``result``), once its ``read_held_after_load`` block ends."""

    result: Any = None


@asynccontextmanager
async def read_held_after_load(
    redis: Redis,
    mongo_url: str,
    database: str,
    app: str,
    collection: str,
    doc_id: Any,
    *,
    reads: ReadPolicy | None = None,
) -> AsyncIterator[HeldRead]:
    """Another process's ``get(doc_id)`` whose ``find`` has read MongoDB and whose reply a
    proxy holds back: the block runs between that read's load and its fill (a slow network
    or a paused process does the same). ``failCommand`` cannot do this: it delays a
    ``find`` before it reads. On leaving, the reply is released and the read finishes."""
    url = urlsplit(mongo_url)
    async with Proxy(url.hostname or "127.0.0.1", url.port or 27017) as proxy:
        proxied = f"mongodb://{proxy.host}:{proxy.port}/?directConnection=true"
        async with reader(redis, proxied, database, app, reads=reads) as (client, _):
            coll = client.collection(collection)
            assert await coll.get("warm-up") is None  # its connection is open
            held = HeldRead()

            async def read() -> None:
                held.result = await coll.get(doc_id)

            async def find_answered() -> bool:
                return proxy.held > 0

            proxy.hold_replies(b"\x02find\x00")
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await wait_until(find_answered, message=f"{app}'s find answered (and held)")
                yield held
                proxy.release_replies()
