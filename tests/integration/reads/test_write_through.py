"""Write-through: a write returns once MongoDB holds it, in order with write-behind writes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer
from tests.support.streams import create_groups, fail_point, running_worker, stored_version
from writebehind import WriteBehind
from writebehind.core.errors import ConfigurationError, PersistTimeout

pytestmark = pytest.mark.anyio


async def test_writes_return_once_mongodb_holds_them(wb: WriteBehind, mongo_db: Any) -> None:
    orders = wb.collection("orders", mode="write_through")
    v1 = await orders.set("o1", {"total": 10})
    assert await stored_version(mongo_db["orders"], "o1") == v1  # no worker runs
    v2 = await orders.patch("o1", {"paid": True})
    stored = await mongo_db["orders"].find_one({"_id": "o1"})
    assert stored == {"_id": "o1", "total": 10, "paid": True, "_wb": {"v": v2.as_pair()}}
    v3 = await orders.delete("o1")
    stored = await mongo_db["orders"].find_one({"_id": "o1"})
    assert stored["_wb"]["deleted"] is True and stored["_wb"]["v"] == v3.as_pair()
    versions = await orders.set_many([("o2", {"n": 2}), ("o3", {"n": 3})])
    for doc_id, version in zip(("o2", "o3"), versions, strict=True):
        assert await stored_version(mongo_db["orders"], doc_id) == version
    assert await orders.get("o2") == {"_id": "o2", "n": 2}


async def test_write_through_and_write_behind_never_apply_out_of_order(
    wb: WriteBehind, redis: Redis, redis_server: RedisServer, mongo_db: Any
) -> None:
    behind = wb.collection("orders")
    through = wb.collection("orders", mode="write_through")
    await create_groups(redis, wb.keys)
    older = await behind.set("o", {"by": "behind"})  # queued; no worker yet
    newer = await through.set("o", {"by": "through"})
    assert await stored_version(mongo_db["orders"], "o") == newer
    async with running_worker(redis_server.url, mongo_db):
        await through.wait_persisted(newer)
        latest = await behind.set("o", {"by": "behind again"})
        await behind.wait_persisted(latest)
    stored = await mongo_db["orders"].find_one({"_id": "o"})
    assert stored["by"] == "behind again" and older < newer < latest


async def test_persist_timeout_leaves_the_write_queued(
    redis: Redis, redis_server: RedisServer, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    blocked: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", appname="through-blocked"
    )
    slow = {"failCommands": ["update"], "blockConnection": True, "blockTimeMS": 3000}
    try:
        async with WriteBehind(
            redis=redis,
            mongo=blocked[mongo_db.name],
            prefix=TEST_PREFIX,
            partitions=TEST_PARTITIONS,
        ) as wb:
            orders = wb.collection("orders", mode="write_through", write_through_timeout=0.3)
            await create_groups(redis, wb.keys)
            async with fail_point(mongo_client, "alwaysOn", {**slow, "appName": "through-blocked"}):
                with pytest.raises(PersistTimeout, match="stays queued"):
                    await orders.set("late", {"n": 1})
            assert await orders.get("late") == {"_id": "late", "n": 1}  # made in Redis all the same
            async with running_worker(redis_server.url, mongo_db):
                await wait_for_document(mongo_db, "late")
    finally:
        await blocked.close()


async def wait_for_document(mongo_db: Any, doc_id: str) -> None:
    from tests.support.waiting import wait_until

    async def there() -> bool:
        return await mongo_db["orders"].find_one({"_id": doc_id}) is not None

    await wait_until(there, message=f"{doc_id} in MongoDB")


async def test_bad_timeout(wb: WriteBehind) -> None:
    with pytest.raises(ConfigurationError):
        wb.collection("orders", mode="write_through", write_through_timeout=0)


@asynccontextmanager
async def _through(
    redis: Redis, mongo_url: str, mongo_db: Any, app: str, timeout: float
) -> AsyncIterator[Any]:
    """A write-through ``orders`` on a MongoDB client named ``app`` (for fail points)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", appname=app
    )
    try:
        async with WriteBehind(
            redis=redis, mongo=client[mongo_db.name], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            yield wb.collection("orders", mode="write_through", write_through_timeout=timeout)
    finally:
        await client.close()


async def test_a_transient_failure_is_retried_until_the_timeout(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    """A write conflict (112), twice: the write is retried, not given up at once."""
    flaky = {"failCommands": ["update"], "errorCode": 112, "appName": "through-flaky"}
    async with _through(redis, mongo_url, mongo_db, "through-flaky", 30.0) as orders:
        async with fail_point(mongo_client, {"times": 2}, flaky):
            version = await orders.set("o", {"n": 1})
        assert await stored_version(mongo_db["orders"], "o") == version


async def test_a_refused_write_raises_at_once_and_stays_queued(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    """A refusal (BadValue, 2) is no outage: waiting the timeout out would not help."""
    refused = {"failCommands": ["update"], "errorCode": 2, "appName": "through-refused"}
    async with _through(redis, mongo_url, mongo_db, "through-refused", 30.0) as orders:
        async with fail_point(mongo_client, "alwaysOn", refused):
            began = time.monotonic()
            with pytest.raises(PersistTimeout, match=r"refused.*stays queued"):
                await orders.set("bad", {"n": 1})
            assert time.monotonic() - began < 10
        assert await orders.get("bad") == {"_id": "bad", "n": 1}  # made in Redis


async def test_writes_are_journaled(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    """Acknowledged means durable: every write-through write asks for ``j: true``."""
    seen = WriteConcerns()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", event_listeners=[seen]
    )
    try:
        async with WriteBehind(
            redis=redis, mongo=client[mongo_db.name], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            orders = wb.collection("orders", mode="write_through")
            await orders.set("j1", {"n": 1})
            await orders.delete("j1")
    finally:
        await client.close()
    updates = [c for name, c in seen.commands if name == "update"]
    assert len(updates) >= 2 and all(c.get("j") is True for c in updates), seen.commands


class WriteConcerns(monitoring.CommandListener):
    """The write concern of each command a client sends."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, dict(event.command.get("writeConcern", {}))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
