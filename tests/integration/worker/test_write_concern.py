"""The worker's writes wait for a journaled majority by default; SecantusDB acknowledges them.

SecantusDB is a one-node replica set ("secantus"), so the majority is that node.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.config import fast_settings
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio


class UpdateConcerns(monitoring.CommandListener):
    """The ``writeConcern`` of every ``update`` command a client sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[Any] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            with self._lock:
                self.seen.append(event.command.get("writeConcern"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_worker_writes_with_a_journaled_majority(
    wb: WriteBehind, redis_server: RedisServer, mongo_url: str, database_name: str
) -> None:
    listener = UpdateConcerns()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[listener])
    redis = Redis.from_url(redis_server.url)
    settings = fast_settings()
    assert settings.w == "majority"
    worker = Worker(redis, client[database_name], settings)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            version = await wb.collection("users").set("a", {"n": 1})
            await wb.collection("users").wait_persisted(version, timeout=20)
            worker.request_stop()
        assert listener.seen
        assert all(dict(c) == {"w": "majority", "j": True} for c in listener.seen), listener.seen
    finally:
        await redis.aclose()
        await client.close()
