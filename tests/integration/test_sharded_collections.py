"""Sharded collections: every filter the worker and replay send names the shard key.

SecantusDB is not sharded, so the tests watch the wire instead: a PyMongo
``CommandListener`` on the worker's and replay's client records each
``update``/``delete`` command's filters, and the documents must land as usual.
Refusals are checked to write nothing (no stream record, no cache entry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX, fast_settings
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.errors import DeadLettered, InvalidInput, MissingShardKey, ShardKeyChanged
from writebehind.sink.bulk import MongoSink
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)


class Filters(monitoring.CommandListener):
    """The filters of every ``update`` and ``delete`` command sent, by collection."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            for u in event.command["updates"]:
                self.sent.append(("update", event.command["update"], dict(u["q"])))
        elif event.command_name == "delete":
            for d in event.command["deletes"]:
                self.sent.append(("delete", event.command["delete"], dict(d["q"])))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def of(self, collection: str) -> list[dict[str, Any]]:
        return [q for _, name, q in self.sent if name == collection]


@pytest.fixture
async def watched(mongo_url: str, database_name: str, mongo_db: Any) -> AsyncIterator[Any]:
    """The test database through a client whose writes are recorded (``db.filters``)."""
    listener = Filters()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", event_listeners=[listener]
    )
    try:
        db = client[database_name]
        db.filters = listener
        yield db
    finally:
        await client.close()


@pytest.fixture
async def sharded(redis: Redis, mongo_db: Any) -> AsyncIterator[WriteBehind]:
    async with WriteBehind(
        redis=redis,
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=TEST_PARTITIONS,
        shard_keys={"orders": ("tenant",)},
    ) as client:
        yield client


@pytest.fixture
async def watched_worker(
    redis_server: RedisServer, watched: Any
) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:
    """Start an in-process worker writing through the watched client."""
    async with anyio.create_task_group() as tg:
        client = Redis.from_url(redis_server.url)
        workers: list[Worker] = []

        async def start() -> Worker:
            worker = Worker(client, watched, fast_settings())
            tg.start_soon(worker.run)
            with anyio.fail_after(30):
                await worker.started.wait()
            workers.append(worker)
            return worker

        yield start
        for worker in workers:
            worker.request_stop()
    await client.aclose()


async def stream_lengths(redis: Redis) -> int:
    return sum([await redis.xlen(KEYS.stream(p)) for p in range(TEST_PARTITIONS)])


async def records_of(redis: Redis) -> list[dict[bytes, bytes]]:
    found: list[dict[bytes, bytes]] = []
    for p in range(TEST_PARTITIONS):
        found += [fields for _, fields in await redis.xrange(KEYS.stream(p))]
    return found


async def test_worker_filters_carry_the_shard_key(
    sharded: WriteBehind, watched: Any, watched_worker: Any, mongo_db: Any
) -> None:
    orders = sharded.collection("orders")
    await watched_worker()
    v1 = await orders.set(1, {"tenant": "acme", "n": 1})
    v2 = await orders.patch(1, {"n": 2})
    await orders.set_many([(2, {"tenant": "beta", "n": 1}), (3, {"tenant": "beta", "n": 1})])
    v3 = await orders.delete(3)  # the shard key comes from the cache entry
    v4 = await orders.delete(4, shard_key={"tenant": "gamma"})  # never stored: given
    for v in (v1, v2, v3, v4):
        await orders.wait_persisted(v, timeout=10)

    stored = {d["_id"]: d async for d in mongo_db.orders.find({})}
    assert {k: {f: v for f, v in d.items() if f != "_wb"} for k, d in stored.items()} == {
        1: {"_id": 1, "tenant": "acme", "n": 2},
        2: {"_id": 2, "tenant": "beta", "n": 1},
        3: {"_id": 3, "tenant": "beta"},  # a tombstone keeps its shard key
        4: {"_id": 4, "tenant": "gamma"},
    }
    assert stored[3]["_wb"]["deleted"] and stored[4]["_wb"]["deleted"]
    tenants = {1: "acme", 2: "beta", 3: "beta", 4: "gamma"}
    filters = watched.filters.of("orders")
    assert filters, "the worker sent no update"
    for q in filters:
        assert q["tenant"] == tenants[q["_id"]], q
    assert all(fields[b"sk"] for fields in await records_of(sharded.redis))
    assert await orders.get(1) == {"_id": 1, "tenant": "acme", "n": 2}  # reads by _id alone


async def test_unsharded_and_old_records_still_filter_on_id_alone(
    wb: WriteBehind, watched: Any, watched_worker: Any
) -> None:
    """A record without ``sk`` (every record written before shard keys) applies as before."""
    users = wb.collection("users")
    await watched_worker()
    version = await users.set("u1", {"tenant": "acme"})
    await users.wait_persisted(version, timeout=10)
    assert all(b"sk" not in fields for fields in await records_of(wb.redis))
    assert watched.filters.of("users") == [{"_id": "u1"}]
    with pytest.raises(InvalidInput, match="no shard key"):
        await users.delete("u1", shard_key={"tenant": "acme"})


async def test_delete_reads_the_shard_key_from_mongodb_when_not_cached(
    sharded: WriteBehind, watched: Any, watched_worker: Any, mongo_db: Any
) -> None:
    orders = sharded.collection("orders")
    await watched_worker()
    await orders.wait_persisted(await orders.set(9, {"tenant": "acme"}), timeout=10)
    partition = KEYS.partition_of("orders", 9)
    await sharded.redis.delete(KEYS.cache(partition, "orders", 9))  # as if it expired
    await orders.wait_persisted(await orders.delete(9), timeout=10)
    assert watched.filters.of("orders")[-1] == {"_id": 9, "tenant": "acme"}
    stored = await mongo_db.orders.find_one({"_id": 9})
    assert stored["tenant"] == "acme" and stored["_wb"]["deleted"]


async def test_refusals_write_nothing(sharded: WriteBehind, mongo_db: Any) -> None:
    orders = sharded.collection("orders")
    with pytest.raises(MissingShardKey) as missing:
        await orders.set(1, {"n": 1})
    assert missing.value.path == "tenant"
    with pytest.raises(MissingShardKey):
        await orders.set_many([(2, {"tenant": "a"}), (3, {"n": 1})])
    with pytest.raises(MissingShardKey, match="shard_key="):
        await orders.delete(4)  # stored nowhere: its shard key is unknown
    with pytest.raises(MissingShardKey):
        await orders.patch(5, {"n": 1})  # would create a document without the key
    assert await stream_lengths(sharded.redis) == 0

    await orders.set(6, {"tenant": "a", "n": 1})
    with pytest.raises(ShardKeyChanged):
        await orders.patch(6, {"tenant": "b"})
    with pytest.raises(ShardKeyChanged):
        await orders.modify(6, lambda doc: {"n": 2})  # drops the key
    with pytest.raises(InvalidInput, match="outside"):
        await orders.delete(6, shard_key={"tenant": "a", "other": 1})
    assert await stream_lengths(sharded.redis) == 1
    assert await orders.get(6) == {"_id": 6, "tenant": "a", "n": 1}
    # A modify that keeps the key, and one that deletes (the key from the stored document).
    await orders.modify(6, lambda doc: {**(doc or {}), "n": 3})
    await orders.modify(6, lambda doc: None)
    records = await records_of(sharded.redis)
    assert len(records) == 3 and all(r[b"sk"] == records[0][b"sk"] for r in records)


async def test_replay_sends_the_recorded_shard_key(
    sharded: WriteBehind, watched: Any, watched_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    orders = sharded.collection("orders")
    await watched_worker()
    last = None
    for i in range(10):
        last = await orders.set(i, {"tenant": f"t{i % 3}", "n": i})
    await orders.delete(0)
    assert last is not None
    await orders.wait_persisted(last, timeout=10)
    await orders.wait_persisted(await orders.delete(1), timeout=10)
    before = {d["_id"]: d async for d in mongo_db.orders.find({})}
    await mongo_db.orders.drop()
    watched.filters.sent.clear()

    result = await replay(
        redis,
        MongoSink(watched, prefix=KEYS.prefix),
        KEYS,
        ReplayOptions(ReplayRange.parse("0", None)),
    )
    assert result.malformed == 0
    after = {d["_id"]: d async for d in mongo_db.orders.find({})}
    for doc in (*before.values(), *after.values()):
        doc["_wb"].pop("purge_at", None)
    assert after == before
    filters = watched.filters.of("orders")
    assert len(filters) == 10
    for q in filters:
        assert q["tenant"] == f"t{q['_id'] % 3}", q


async def test_write_through_filters_carry_the_shard_key(
    redis: Redis, watched: Any, mongo_db: Any
) -> None:
    async with WriteBehind(
        redis=redis, mongo=watched, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as client:
        orders = client.collection("orders", mode="write_through", shard_key="tenant")
        await orders.set(1, {"tenant": "acme", "n": 1})
        await orders.delete(1)
        with pytest.raises(MissingShardKey):
            await orders.set(2, {"n": 1})
    assert watched.filters.of("orders") == [{"_id": 1, "tenant": "acme"}] * 2
    stored = await mongo_db.orders.find_one({"_id": 1})
    assert stored["tenant"] == "acme" and stored["_wb"]["deleted"]


async def test_a_set_that_changes_the_shard_key_is_dead_lettered_not_retried(
    sharded: WriteBehind, watched_worker: Any, mongo_db: Any
) -> None:
    """``set`` does not read the stored document, so it cannot refuse a new shard key value.

    The worker's upsert then matches nothing and its insert collides on ``_id``:
    retrying could never cure that, so the record is dead-lettered, the stored
    document is kept, and the partition goes on.
    """
    orders = sharded.collection("orders")
    await watched_worker()
    await orders.wait_persisted(await orders.set(1, {"tenant": "a", "n": 1}), timeout=10)
    moved = await orders.set(1, {"tenant": "b", "n": 2})
    with pytest.raises(DeadLettered, match="shard key value cannot change"):
        await orders.wait_persisted(moved, timeout=10)
    stored = await mongo_db.orders.find_one({"_id": 1})
    assert (stored["tenant"], stored["n"]) == ("a", 1)
    same_partition = next(
        i for i in range(2, 100) if KEYS.partition_of("orders", i) == KEYS.partition_of("orders", 1)
    )
    await orders.wait_persisted(await orders.set(same_partition, {"tenant": "a"}), timeout=10)
